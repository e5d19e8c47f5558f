"""sensor_msgs / geometry_msgs / unipixel_msgs <-> numpy, without cv_bridge.

Every decoder validates what it is given (encoding, step, buffer size, dimensions) and raises
``MessageConversionError`` naming the problem, so a node can answer a bad message with a status
instead of crashing. Encoders copy the caller's header and assign ``ndarray.tobytes()`` to
``msg.data`` (assigning an ndarray element-wise costs ~45 ms per 640x480 frame).
"""
from __future__ import annotations

import sys

import numpy as np
from geometry_msgs.msg import Point, PoseStamped, Quaternion, Vector3
from scipy.spatial.transform import Rotation
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField, RegionOfInterest

from unipixel_ros.perception import CameraIntrinsics, GeometryError, depth_to_metres
from unipixel_ros.perception.pointcloud2 import XYZRGB_FIELDS, pack_xyzrgb, unpack_xyzrgb


class MessageConversionError(ValueError):
    """A ROS message cannot be turned into an array (bad encoding, size, step, ...)."""


# encoding -> (numpy dtype, channels)
IMAGE_ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    'rgb8': (np.dtype(np.uint8), 3),
    'bgr8': (np.dtype(np.uint8), 3),
    'rgba8': (np.dtype(np.uint8), 4),
    'bgra8': (np.dtype(np.uint8), 4),
    'mono8': (np.dtype(np.uint8), 1),
    '8UC1': (np.dtype(np.uint8), 1),
    'mono16': (np.dtype(np.uint16), 1),
    '16UC1': (np.dtype(np.uint16), 1),
    '32FC1': (np.dtype(np.float32), 1),
}


def image_to_numpy(msg: Image) -> np.ndarray:
    """Decode a sensor_msgs/Image into (H, W) or (H, W, C) without copying when possible.

    Raises MessageConversionError for an unknown encoding, a zero-size image, a step smaller than
    a row, or a data buffer whose length does not match height * step.
    """
    enc = msg.encoding
    if enc not in IMAGE_ENCODINGS:
        raise MessageConversionError(
            f'unsupported image encoding {enc!r}; supported: {", ".join(IMAGE_ENCODINGS)}')
    dtype, channels = IMAGE_ENCODINGS[enc]
    h, w, step = int(msg.height), int(msg.width), int(msg.step)
    if h == 0 or w == 0:
        raise MessageConversionError(f'zero-size image ({w}x{h}, encoding {enc})')
    row_bytes = w * channels * dtype.itemsize
    if step < row_bytes:
        raise MessageConversionError(
            f'image step {step} is smaller than one row ({w} px x {channels} ch x '
            f'{dtype.itemsize} B = {row_bytes} B)')
    buf = msg.data
    nbytes = len(buf)
    if nbytes != h * step:
        raise MessageConversionError(
            f'image data has {nbytes} bytes, expected height*step = {h}*{step} = {h * step}')
    if step % dtype.itemsize:
        raise MessageConversionError(f'image step {step} is not a multiple of {dtype.itemsize}')
    big = bool(msg.is_bigendian)
    dt = dtype.newbyteorder('>' if big else '<') if dtype.itemsize > 1 else dtype
    try:  # rclpy stores uint8[] as array.array('B'): a zero-copy view
        flat = np.frombuffer(buf, dtype=np.uint8)
    except TypeError:  # a plain list set by hand
        flat = np.asarray(buf, dtype=np.uint8)
    rows = flat.reshape(h, step)[:, :row_bytes]
    arr = rows.view(dt) if rows.flags.c_contiguous else np.ascontiguousarray(rows).view(dt)
    arr = arr.reshape(h, w, channels) if channels > 1 else arr.reshape(h, w)
    if big != (sys.byteorder == 'big') and dtype.itemsize > 1:
        arr = arr.astype(dtype)
    return arr


def color_to_rgb(msg: Image) -> np.ndarray:
    """Decode a color image into (H, W, 3) uint8 RGB (accepts rgb8, bgr8, rgba8, bgra8)."""
    if msg.encoding not in ('rgb8', 'bgr8', 'rgba8', 'bgra8'):
        raise MessageConversionError(
            f'color image encoding {msg.encoding!r} is not one of rgb8, bgr8, rgba8, bgra8')
    arr = image_to_numpy(msg)
    if msg.encoding == 'rgb8':
        return arr
    if msg.encoding == 'rgba8':
        return arr[..., :3]
    return arr[..., 2::-1] if msg.encoding == 'bgr8' else arr[..., [2, 1, 0]]


def numpy_to_image(arr: np.ndarray, encoding: str, header=None) -> Image:
    """Encode an (H, W) or (H, W, C) array into a sensor_msgs/Image with the given header."""
    if encoding not in IMAGE_ENCODINGS:
        raise MessageConversionError(f'unsupported image encoding {encoding!r}')
    dtype, channels = IMAGE_ENCODINGS[encoding]
    arr = np.ascontiguousarray(arr, dtype=dtype)
    if arr.ndim != (2 if channels == 1 else 3) or (channels > 1 and arr.shape[2] != channels):
        raise MessageConversionError(f'array of shape {arr.shape} does not fit encoding {encoding}')
    msg = Image()
    if header is not None:
        msg.header = header
    msg.height, msg.width = int(arr.shape[0]), int(arr.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = int(sys.byteorder == 'big')
    msg.step = int(arr.shape[1] * channels * dtype.itemsize)
    msg.data = arr.tobytes()
    return msg


def mask_to_image(mask: np.ndarray, header=None) -> Image:
    """(H, W) bool/uint8 mask -> mono8 Image, 255 = object."""
    mask = np.asarray(mask)
    on = mask if mask.dtype == bool else mask > 0
    # uint8 arithmetic on the bool view: ~5x faster than np.where's int64 temporary (per frame)
    return numpy_to_image(on.view(np.uint8) * np.uint8(255), 'mono8', header)


def camera_info_to_intrinsics(info: CameraInfo) -> CameraIntrinsics:
    """CameraInfo K (row-major 3x3) -> CameraIntrinsics; GeometryError for a degenerate K."""
    try:
        return CameraIntrinsics.from_k(list(info.k), int(info.width), int(info.height))
    except GeometryError as exc:
        raise MessageConversionError(f'invalid camera_info: {exc}') from exc


def intrinsics_to_camera_info(intr: CameraIntrinsics, header=None) -> CameraInfo:
    """A pinhole CameraInfo without distortion (plumb_bob, zeros) for the given intrinsics."""
    info = CameraInfo()
    if header is not None:
        info.header = header
    info.width, info.height = int(intr.width), int(intr.height)
    info.distortion_model = 'plumb_bob'
    info.d = [0.0] * 5
    info.k = [intr.fx, 0.0, intr.cx, 0.0, intr.fy, intr.cy, 0.0, 0.0, 1.0]
    info.r = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]
    info.p = [intr.fx, 0.0, intr.cx, 0.0, 0.0, intr.fy, intr.cy, 0.0, 0.0, 0.0, 1.0, 0.0]
    return info


def cloud_to_msg(points: np.ndarray, colors: np.ndarray | None, header=None) -> PointCloud2:
    """(N, 3) float32 metres (+ (N, 3) uint8 RGB) -> unordered PointCloud2 with x y z rgb."""
    msg = PointCloud2()
    if header is not None:
        msg.header = header
    msg.fields = [PointField(name=n, offset=o, datatype=d, count=c) for n, o, d, c in XYZRGB_FIELDS]
    msg.point_step = 16
    msg.height = 1
    msg.width = int(len(points))
    msg.row_step = msg.point_step * msg.width
    msg.is_bigendian = sys.byteorder == 'big'
    msg.is_dense = True
    msg.data = pack_xyzrgb(np.asarray(points, np.float32), colors)
    return msg


def msg_to_cloud(msg: PointCloud2) -> tuple[np.ndarray, np.ndarray | None]:
    """PointCloud2 -> ((N, 3) float32 points, (N, 3) uint8 colors or None)."""
    fields = [(f.name, f.offset, f.datatype, f.count) for f in msg.fields]
    try:
        return unpack_xyzrgb(msg.data, msg.point_step, fields, bool(msg.is_bigendian))
    except GeometryError as exc:
        raise MessageConversionError(f'invalid PointCloud2: {exc}') from exc


def pose_stamped(position, rotation_or_quaternion, header=None) -> PoseStamped:
    """Position (3,) metres and a (3, 3) rotation or (x, y, z, w) quaternion -> PoseStamped."""
    q = np.asarray(rotation_or_quaternion, dtype=float)
    if q.shape == (3, 3):
        q = Rotation.from_matrix(q).as_quat()
    msg = PoseStamped()
    if header is not None:
        msg.header = header
    msg.pose.position = Point(x=float(position[0]), y=float(position[1]), z=float(position[2]))
    msg.pose.orientation = Quaternion(x=float(q[0]), y=float(q[1]), z=float(q[2]), w=float(q[3]))
    return msg


def mask_bbox(mask: np.ndarray) -> RegionOfInterest:
    """Tight pixel box of the non-zero mask pixels (all zeros for an empty mask)."""
    from unipixel_ros.perception.mask_ops import mask_bbox as bbox_slices

    roi = RegionOfInterest()
    box = bbox_slices(np.asarray(mask) != 0)
    if box is not None:
        rows, cols = box
        roi.x_offset, roi.y_offset = int(cols.start), int(rows.start)
        roi.width, roi.height = int(cols.stop - cols.start), int(rows.stop - rows.start)
    return roi


def decode_rgbd(color: Image, depth: Image, info: CameraInfo, depth_scale: float = 0.001):
    """One synchronised frame -> (intrinsics, rgb (H, W, 3) uint8, depth (H, W) float32 m).

    Depth units are decided here, once, as depth_image_proc does: ``16UC1``/``mono16`` are
    ``depth_scale`` metres per unit (0.001: millimetres), ``32FC1`` metres; invalid readings
    stay invalid (0, NaN, inf).

    Raises:
        MessageConversionError: a bad encoding, sizes that differ between the three messages,
            or a malformed buffer.
    """
    intr = camera_info_to_intrinsics(info)
    rgb = color_to_rgb(color)
    if depth.encoding not in ('16UC1', 'mono16', '32FC1'):
        raise MessageConversionError(f'depth encoding {depth.encoding!r} is not 16UC1 or 32FC1')
    raw = image_to_numpy(depth)
    if rgb.shape[:2] != raw.shape[:2]:
        raise MessageConversionError(f'color {rgb.shape[1]}x{rgb.shape[0]} and depth '
                                     f'{raw.shape[1]}x{raw.shape[0]} differ: depth must be '
                                     'aligned to color')
    if (intr.width, intr.height) != (rgb.shape[1], rgb.shape[0]):
        raise MessageConversionError(f'camera_info is {intr.width}x{intr.height} but the image '
                                     f'is {rgb.shape[1]}x{rgb.shape[0]}')
    try:
        depth_m = depth_to_metres(raw, depth.encoding)
    except GeometryError as exc:
        raise MessageConversionError(str(exc)) from exc
    if depth.encoding != '32FC1' and depth_scale != 0.001:
        depth_m = np.multiply(raw, np.float32(depth_scale), dtype=np.float32)
    return intr, rgb, depth_m


def build_result(header, query: str, found: bool, score: float, mask: np.ndarray | None = None,
                 geometry=None, description: str = '', status: str = 'ok', with_cloud: bool = True):
    """Assemble a unipixel_msgs/ReferringResult.

    Args:
        header: header of the color image the result was computed on (copied everywhere).
        mask: (H, W) bool mask or None.
        geometry: a ``perception.ObjectGeometry`` or None when geometry was not computed.
        with_cloud: pack ``geometry.points`` into ``cloud`` (False when the caller sets another).
    """
    from unipixel_msgs.msg import ReferringResult

    res = ReferringResult()
    res.header = header
    res.query = query
    res.found = bool(found)
    res.score = float(score)
    res.status = status
    res.description = description
    if mask is not None:
        res.mask = mask_to_image(mask, header)
        res.bbox = mask_bbox(mask)
    if geometry is not None:
        if with_cloud:
            res.cloud = cloud_to_msg(geometry.points, geometry.colors, header)
        c = geometry.box.center
        res.centroid = Point(x=float(c[0]), y=float(c[1]), z=float(c[2]))
        e = geometry.box.extent
        res.box_dimensions = Vector3(x=float(e[0]), y=float(e[1]), z=float(e[2]))
        q = Rotation.from_matrix(np.asarray(geometry.box.rotation, float)).as_quat()
        res.box_orientation = Quaternion(x=float(q[0]), y=float(q[1]), z=float(q[2]), w=float(q[3]))
        if geometry.best_grasp is not None:
            g = geometry.best_grasp
            res.grasp_valid = True
            res.grasp = pose_stamped(g.position, g.quaternion, header)
            res.gripper_width = float(g.width)
    return res
