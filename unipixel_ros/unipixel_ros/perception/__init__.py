"""Geometry core: depth -> object cloud -> filtering -> box -> grasps (numpy/scipy/open3d).

Free of ROS: inputs are numpy arrays and plain values, outputs are dataclasses in the camera
optical frame (x right, y down, z forward, metres). open3d is imported on first use.
"""
from .box import ObjectBox, estimate_object_box
from .cloud import (FilteredCloud, filter_object_cloud, fit_plane, set_geometry_threads,
                    voxelize)
from .depth import ACCEPTED_ENCODINGS, BackProjection, backproject, depth_to_metres
from .errors import GeometryError
from .grasp import GraspCandidate, GripperConfig, best_grasp, synthesize_grasps
from .intrinsics import CameraIntrinsics
from .mask_ops import (clean_mask, dilate_mask, erode_mask, reject_depth_discontinuities,
                       ring_mask)
from .pipeline import GeometryConfig, ObjectGeometry, estimate_object_geometry, warm_up
from .pointcloud2 import (XYZ_FIELDS, XYZ_POINT_STEP, XYZRGB_FIELDS, XYZRGB_POINT_STEP,
                          pack_xyz, pack_xyzrgb, unpack_xyzrgb)
from .transforms import matrix_from_quaternion, quaternion_from_matrix

__all__ = [
    'ACCEPTED_ENCODINGS', 'BackProjection', 'CameraIntrinsics', 'FilteredCloud',
    'GeometryConfig', 'GeometryError', 'GraspCandidate', 'GripperConfig', 'ObjectBox',
    'ObjectGeometry', 'XYZ_FIELDS', 'XYZ_POINT_STEP', 'XYZRGB_FIELDS', 'XYZRGB_POINT_STEP',
    'backproject', 'best_grasp', 'clean_mask', 'depth_to_metres', 'dilate_mask', 'erode_mask',
    'estimate_object_box', 'estimate_object_geometry', 'filter_object_cloud', 'fit_plane',
    'matrix_from_quaternion', 'pack_xyz', 'pack_xyzrgb', 'quaternion_from_matrix',
    'reject_depth_discontinuities', 'ring_mask', 'set_geometry_threads', 'synthesize_grasps',
    'unpack_xyzrgb', 'voxelize', 'warm_up',
]
