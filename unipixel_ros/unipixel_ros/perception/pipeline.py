"""Mask + depth -> object cloud, box and grasps: the per-frame geometry entry point."""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, fields
from typing import Dict, List, Optional

import numpy as np

from .box import ObjectBox, estimate_object_box
from .cloud import filter_object_cloud
from .depth import (backproject, check_depth_encoding, check_frame, depth_to_metres, smooth_depth,
                    valid_depth)
from .errors import GeometryError
from .grasp import GraspCandidate, GripperConfig, synthesize_grasps
from .intrinsics import CameraIntrinsics
from .mask_ops import clean_mask, mask_bbox, ring_mask


@dataclass(frozen=True)
class GeometryConfig:
    """Tunables of :func:`estimate_object_geometry` (lengths in metres, radii in pixels).

    Attributes:
        erode_px: mask erosion radius, px (trims segmentation bleed over object borders).
        max_depth_jump_m: drop mask pixels next to a depth step larger than this, m
            (<= 0 disables).
        depth_smooth_px: radius of the masked depth averaging window, px (0 disables); see
            :func:`~unipixel_ros.perception.depth.smooth_depth`.
        depth_smooth_tolerance_m: only neighbours this close in depth are averaged, m.
        min_depth, max_depth: accepted depth range, m.
        voxel_size: voxel edge for the neighbourhood filters and the output light cloud, m.
        outlier_method: 'radius' (open3d radius outlier removal: drop voxels with fewer than
            ``radius_min_neighbors`` others within ``radius_outlier_m``), 'statistical'
            (open3d statistical outlier removal with ``sor_neighbors``, ``sor_std_ratio``) or
            'none'. Radius is the default: on a voxel grid the spread of kNN distances is so
            small that statistical removal strips the object's boundary voxels, which shrank
            measured boxes by up to 5 mm on the analytic test scenes.
        sor_neighbors, sor_std_ratio: statistical outlier removal parameters.
        radius_outlier_m, radius_min_neighbors: radius outlier removal parameters.
        dbscan_eps, dbscan_min_points: DBSCAN on voxel centroids (eps in m); the largest
            cluster is the object.
        plane_distance: RANSAC inlier threshold, and points closer than this to the support
            plane (or below it) are removed as table, m.
        plane_ransac_iterations: RANSAC iterations.
        plane_min_points: fewest inliers / support samples for a plane.
        ring_inner_px, ring_outer_px: the support surface is sampled in the ring between the
            mask dilated by these radii, px.
        ring_stride: sample every n-th ring pixel in each direction (plane fit cost).
        support_max_gap: the object's lowest points must be within this of the plane for it
            to count as resting on it, m.
        object_plane_fallback: without a ring plane, look for a support plane in the object
            cloud itself (the mask bled onto the table).
        object_plane_min_fraction: such a plane must hold this fraction of the voxels...
        object_plane_above_fraction: ...and this fraction of the other voxels must be above it.
        object_plane_attempts: how many of the cloud's largest planes are tried.
        box_trim_percent: % of points ignored at each extreme when measuring the box.
        box_refine_span_deg: the footprint angle from the hull is refined within +- this,
            degrees (0 = off).
        gripper: :class:`GripperConfig` for grasp synthesis.
    """

    erode_px: int = 2
    max_depth_jump_m: float = 0.02
    depth_smooth_px: int = 1
    depth_smooth_tolerance_m: float = 0.01
    min_depth: float = 0.1
    max_depth: float = 10.0
    voxel_size: float = 0.0075
    outlier_method: str = 'radius'
    sor_neighbors: int = 16
    sor_std_ratio: float = 2.0
    radius_outlier_m: float = 0.015
    radius_min_neighbors: int = 3
    dbscan_eps: float = 0.01875
    dbscan_min_points: int = 6
    plane_distance: float = 0.006
    plane_ransac_iterations: int = 100
    plane_min_points: int = 50
    ring_inner_px: int = 5
    ring_outer_px: int = 15
    ring_stride: int = 2
    support_max_gap: float = 0.03
    object_plane_fallback: bool = True
    object_plane_min_fraction: float = 0.1
    object_plane_above_fraction: float = 0.9
    object_plane_attempts: int = 3
    box_trim_percent: float = 0.2
    box_refine_span_deg: float = 4.0
    gripper: GripperConfig = field(default_factory=GripperConfig)

    def __post_init__(self) -> None:
        positive = ('voxel_size', 'dbscan_eps', 'plane_distance', 'max_depth', 'sor_std_ratio',
                    'support_max_gap', 'depth_smooth_tolerance_m', 'radius_outlier_m')
        for name in positive:
            value = getattr(self, name)
            try:
                ok = math.isfinite(float(value)) and float(value) > 0
            except (TypeError, ValueError):
                ok = False
            if not ok:
                raise GeometryError(f'GeometryConfig.{name} must be > 0, got {value!r}')
        if not isinstance(self.gripper, GripperConfig):
            raise GeometryError(f'GeometryConfig.gripper must be a GripperConfig, got '
                                f'{type(self.gripper).__name__}')
        for name in ('erode_px', 'depth_smooth_px', 'sor_neighbors', 'dbscan_min_points',
                     'plane_ransac_iterations', 'plane_min_points', 'object_plane_attempts',
                     'ring_inner_px', 'ring_outer_px', 'ring_stride', 'radius_min_neighbors'):
            value = getattr(self, name)
            if int(value) != value or value < 0:
                raise GeometryError(f'GeometryConfig.{name} must be a non-negative integer, '
                                    f'got {value!r}')
        if not 0 <= self.min_depth < self.max_depth:
            raise GeometryError(
                f'GeometryConfig needs 0 <= min_depth < max_depth, got '
                f'[{self.min_depth}, {self.max_depth}]')
        if not 0 <= self.ring_inner_px < self.ring_outer_px:
            raise GeometryError('GeometryConfig needs 0 <= ring_inner_px < ring_outer_px')
        if self.outlier_method not in ('radius', 'statistical', 'none'):
            raise GeometryError(
                f"GeometryConfig.outlier_method must be 'radius', 'statistical' or 'none', "
                f'got {self.outlier_method!r}')
        if self.ring_stride < 1:
            raise GeometryError('GeometryConfig.ring_stride must be >= 1')
        if not 0 <= self.box_trim_percent < 50:
            raise GeometryError('GeometryConfig.box_trim_percent must be in [0, 50)')

    def as_dict(self) -> Dict[str, object]:
        """Plain dict (the gripper nested as a dict), e.g. for JSON reports."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != 'gripper'}
        out['gripper'] = {f.name: getattr(self.gripper, f.name) for f in fields(self.gripper)}
        return out


@dataclass
class ObjectGeometry:
    """Everything the geometry core derives for one object in one frame (camera optical frame,
    metres).

    Attributes:
        points: (M, 3) float32 filtered object cloud, full resolution.
        colors: (M, 3) uint8 or None.
        pixels: (M, 2) int64 ``(v, u)`` image pixel of each point.
        voxel_points: (K, 3) float32 voxel-down-sampled object cloud (light, for publishing).
        voxel_colors: (K, 3) uint8 or None.
        centroid: (3,) float64 object centre = box centre (not the mean of visible points).
        box: :class:`ObjectBox`.
        plane: (4,) support plane ``(a, b, c, d)``, unit normal towards the camera, or None.
        plane_source: 'ring', 'object' or None.
        grasps: ranked :class:`GraspCandidate` list (empty if nothing fits the gripper).
        best_grasp: ``grasps[0]`` or None.
        grasp_error: why ``grasps`` is empty, else None.
        timings: backproject_ms (decode + mask clean-up + back-projection), filter_ms (with
            plane_ms, voxel_ms, outlier_ms, dbscan_ms), box_ms, grasp_ms, total_ms (milliseconds),
            points_in (back-projected), points_out (kept), voxels_out.
    """

    points: np.ndarray
    colors: Optional[np.ndarray]
    pixels: np.ndarray
    voxel_points: np.ndarray
    voxel_colors: Optional[np.ndarray]
    centroid: np.ndarray
    box: ObjectBox
    plane: Optional[np.ndarray]
    plane_source: Optional[str]
    grasps: List[GraspCandidate]
    best_grasp: Optional[GraspCandidate]
    grasp_error: Optional[str]
    timings: Dict[str, float]


def warm_up(config: Optional[GeometryConfig] = None) -> float:
    """Import open3d and run the pipeline once on a small synthetic frame.

    The first call otherwise pays ~1 s of imports and thread-pool start-up; a node should call
    this while configuring, not on its first camera frame.

    Returns:
        Milliseconds the warm-up took.
    """
    from .intrinsics import CameraIntrinsics as _Intrinsics
    from .synthetic import SceneObject, SyntheticCamera, render_scene

    t0 = time.perf_counter()
    camera = SyntheticCamera(intrinsics=_Intrinsics(154.0, 154.0, 79.5, 59.5, 160, 120))
    scene = render_scene([SceneObject.box((0.0, 0.0), 0.06, 0.04, 0.08, yaw_deg=20.0)], camera,
                         mask_dilation_px=1)
    estimate_object_geometry(scene.masks[0], scene.depth_mm, '16UC1', scene.intrinsics,
                             scene.rgb, config or GeometryConfig())
    return (time.perf_counter() - t0) * 1e3


def _support_points(mask_crop, depth_crop, intr_crop, config) -> Optional[np.ndarray]:
    ring = ring_mask(mask_crop, config.ring_inner_px, config.ring_outer_px)
    if config.ring_stride > 1:
        lattice = np.zeros_like(ring)
        s = config.ring_stride
        lattice[::s, ::s] = ring[::s, ::s]
        ring = lattice
    v, u = np.nonzero(ring)
    z = depth_crop[v, u]
    ok = valid_depth(z, config.min_depth, config.max_depth)
    if np.count_nonzero(ok) < config.plane_min_points:
        return None
    v, u, z = v[ok], u[ok], z[ok]
    pts = np.empty((z.size, 3), dtype=np.float32)
    pts[:, 0] = (u - intr_crop.cx) * z / intr_crop.fx
    pts[:, 1] = (v - intr_crop.cy) * z / intr_crop.fy
    pts[:, 2] = z
    return pts


def estimate_object_geometry(mask: np.ndarray, depth: np.ndarray, depth_encoding: str,
                             intrinsics: CameraIntrinsics, rgb: Optional[np.ndarray] = None,
                             config: GeometryConfig = GeometryConfig()) -> ObjectGeometry:
    """Object cloud, box (centre = object centre) and ranked grasps from a mask and depth.

    Args:
        mask: (H, W) bool/integer object mask (non-zero = object), aligned with ``depth``.
        depth: (H, W) depth image as published: uint16 mm (``16UC1``/``mono16``) or float32 m
            (``32FC1``).
        depth_encoding: the image's encoding string.
        intrinsics: intrinsics of the (H, W) depth image.
        rgb: optional (H, W, 3) uint8 colour image aligned with the depth.
        config: tunables.
    Returns:
        :class:`ObjectGeometry` in the camera optical frame. If no grasp fits the gripper the
        geometry is still returned, with ``grasps == []`` and ``grasp_error`` set.
    Raises:
        GeometryError: unknown encoding or dtype mismatch, mask/depth/rgb/intrinsics shape
            mismatch, empty mask, no valid depth under the mask, or nothing left after
            filtering.
    """
    t_start = time.perf_counter()
    depth = np.asarray(depth)
    if depth.ndim == 3 and depth.shape[2] == 1:
        depth = depth[:, :, 0]
    check_depth_encoding(depth, depth_encoding)
    mask, rgb = check_frame(mask, depth, intrinsics, rgb)
    mask = mask if mask.dtype == bool else mask != 0

    # Everything below runs on the mask's bounding box plus the support ring.
    box_slices = mask_bbox(mask, margin=config.ring_outer_px + 1)
    if box_slices is None:
        raise GeometryError('mask is empty')
    rows, cols = box_slices
    mask_c = mask[box_slices]
    depth_c = depth_to_metres(depth[box_slices], depth_encoding)
    rgb_c = None if rgb is None else rgb[box_slices]
    intr_c = intrinsics.crop(cols.start, rows.start, mask_c.shape[1], mask_c.shape[0])

    clean = clean_mask(mask_c, depth_c, config.erode_px, config.max_depth_jump_m)
    depth_obj = depth_c
    if config.depth_smooth_px > 0:
        depth_obj = smooth_depth(depth_c, clean, config.depth_smooth_px,
                                 config.depth_smooth_tolerance_m)
    bp = backproject(clean, depth_obj, intr_c, rgb_c, config.min_depth, config.max_depth)
    support = _support_points(mask_c, depth_c, intr_c, config)
    t_bp = time.perf_counter()

    filtered = filter_object_cloud(bp.points, bp.colors, config, support)
    t_filter = time.perf_counter()

    box = estimate_object_box(filtered.points, filtered.plane, voxel_points=filtered.voxel_points,
                              voxel_counts=filtered.voxel_counts,
                              trim_percent=config.box_trim_percent,
                              refine_span_deg=config.box_refine_span_deg)
    t_box = time.perf_counter()

    grasp_error = None
    try:
        grasps = synthesize_grasps(box, filtered.plane, config.gripper)
    except GeometryError as exc:
        grasps, grasp_error = [], str(exc)
    t_end = time.perf_counter()

    pixels = bp.pixels[filtered.index] + np.array([rows.start, cols.start])
    timings = {
        'backproject_ms': (t_bp - t_start) * 1e3,
        'filter_ms': (t_filter - t_bp) * 1e3,
        **filtered.timings,
        'box_ms': (t_box - t_filter) * 1e3,
        'grasp_ms': (t_end - t_box) * 1e3,
        'total_ms': (t_end - t_start) * 1e3,
        'points_in': int(bp.points.shape[0]),
        'points_out': int(filtered.points.shape[0]),
        'voxels_out': int(filtered.voxel_points.shape[0]),
    }
    return ObjectGeometry(
        points=filtered.points, colors=filtered.colors, pixels=pixels,
        voxel_points=filtered.voxel_points, voxel_colors=filtered.voxel_colors,
        centroid=box.center.copy(), box=box, plane=filtered.plane,
        plane_source=filtered.plane_source, grasps=grasps,
        best_grasp=grasps[0] if grasps else None, grasp_error=grasp_error, timings=timings)
