"""``sensor_msgs/PointCloud2`` payload packing/unpacking with numpy structured arrays.

Independent of ROS message classes: fields are ``(name, offset, datatype, count)`` tuples (or any
object with those attributes, such as ``sensor_msgs.msg.PointField``), data is ``bytes``.
Colour follows the ROS/PCL convention: a FLOAT32 field ``rgb`` whose 4 bytes are the uint32
``0x00RRGGBB`` (a UINT32 ``rgb``/``rgba`` field is read the same way).
"""
from __future__ import annotations

from typing import Any, Iterable, List, Optional, Tuple

import numpy as np

from .errors import GeometryError

# sensor_msgs/PointField datatype constants.
INT8, UINT8, INT16, UINT16, INT32, UINT32, FLOAT32, FLOAT64 = 1, 2, 3, 4, 5, 6, 7, 8
_NUMPY_TYPE = {INT8: 'i1', UINT8: 'u1', INT16: 'i2', UINT16: 'u2', INT32: 'i4', UINT32: 'u4',
               FLOAT32: 'f4', FLOAT64: 'f8'}

Field = Tuple[str, int, int, int]

#: x, y, z, rgb (packed) as FLOAT32; point_step 16.
XYZRGB_FIELDS: List[Field] = [('x', 0, FLOAT32, 1), ('y', 4, FLOAT32, 1), ('z', 8, FLOAT32, 1),
                              ('rgb', 12, FLOAT32, 1)]
XYZRGB_POINT_STEP = 16
#: x, y, z as FLOAT32; point_step 12.
XYZ_FIELDS: List[Field] = XYZRGB_FIELDS[:3]
XYZ_POINT_STEP = 12

_XYZRGB_DTYPE = np.dtype({'names': ['x', 'y', 'z', 'rgb'], 'formats': ['<f4', '<f4', '<f4', '<u4'],
                          'offsets': [0, 4, 8, 12], 'itemsize': 16})


def _check_points(points: np.ndarray) -> np.ndarray:
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != 3:
        raise GeometryError(f'points must have shape (N, 3), got {points.shape}')
    return points


def pack_rgb(colors: np.ndarray) -> np.ndarray:
    """(N, 3) uint8 RGB -> (N,) uint32 ``0x00RRGGBB``."""
    c = np.asarray(colors).astype(np.uint32)
    return (c[:, 0] << 16) | (c[:, 1] << 8) | c[:, 2]


def unpack_rgb(packed: np.ndarray) -> np.ndarray:
    """(N,) uint32 ``0x00RRGGBB`` -> (N, 3) uint8 RGB."""
    packed = np.asarray(packed, dtype=np.uint32)
    return np.stack([(packed >> 16) & 0xFF, (packed >> 8) & 0xFF, packed & 0xFF],
                    axis=1).astype(np.uint8)


def pack_xyzrgb(points: np.ndarray, colors: Optional[np.ndarray] = None) -> bytes:
    """Pack a cloud for a little-endian PointCloud2 with :data:`XYZRGB_FIELDS`.

    Args:
        points: (N, 3) float metres (stored as float32).
        colors: (N, 3) uint8 RGB, or None to store rgb = 0 (black).
    Returns:
        ``N * 16`` bytes (``point_step`` = :data:`XYZRGB_POINT_STEP`, ``is_bigendian`` False).
    """
    points = _check_points(points)
    out = np.empty(points.shape[0], dtype=_XYZRGB_DTYPE)
    out['x'] = points[:, 0]
    out['y'] = points[:, 1]
    out['z'] = points[:, 2]
    if colors is None:
        out['rgb'] = 0
    else:
        colors = np.asarray(colors)
        if colors.shape != points.shape:
            raise GeometryError(
                f'colors shape {colors.shape} does not match points shape {points.shape}')
        out['rgb'] = pack_rgb(colors)
    return out.tobytes()


def pack_xyz(points: np.ndarray) -> bytes:
    """Pack (N, 3) points as little-endian float32 xyz (:data:`XYZ_FIELDS`, point_step 12)."""
    return np.ascontiguousarray(_check_points(points), dtype='<f4').tobytes()


def _field_tuple(field: Any) -> Field:
    if isinstance(field, (tuple, list)):
        name, offset, datatype, count = field
    else:
        name, offset, datatype, count = field.name, field.offset, field.datatype, field.count
    return str(name), int(offset), int(datatype), int(count)


def unpack_xyzrgb(data: bytes, point_step: int, fields: Iterable[Any],
                  is_bigendian: bool = False) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """Read xyz (and rgb if present) from a PointCloud2 payload.

    Field offsets are taken from ``fields``, so padded layouts and extra fields (intensity,
    normals, ...) are fine; rows are assumed contiguous (``row_step == width * point_step``).

    Args:
        data: the message ``data`` (bytes, bytearray, memoryview or uint8 array).
        point_step: bytes per point.
        fields: ``(name, offset, datatype, count)`` tuples or PointField-like objects.
        is_bigendian: byte order of the payload.
    Returns:
        ``(points, colors)``: (N, 3) float32 and (N, 3) uint8 RGB, or None when the cloud has
        no ``rgb``/``rgba`` field. NaN points are kept.
    Raises:
        GeometryError: data length not a multiple of point_step, missing x/y/z, a field that
            does not fit in point_step, or an unsupported field datatype.
    """
    point_step = int(point_step)
    if point_step <= 0:
        raise GeometryError(f'point_step must be > 0, got {point_step}')
    buf = np.frombuffer(data, dtype=np.uint8) if not isinstance(data, np.ndarray) else \
        np.ascontiguousarray(data, dtype=np.uint8).reshape(-1)
    if buf.size % point_step != 0:
        raise GeometryError(
            f'PointCloud2 data length {buf.size} is not a multiple of point_step {point_step}')
    by_name = {}
    for f in fields:
        name, offset, datatype, count = _field_tuple(f)
        by_name[name] = (offset, datatype, count)
    missing = [n for n in ('x', 'y', 'z') if n not in by_name]
    if missing:
        raise GeometryError(
            f'PointCloud2 has no {"/".join(missing)} field(s); fields: {sorted(by_name)}')
    color_name = 'rgb' if 'rgb' in by_name else ('rgba' if 'rgba' in by_name else None)
    wanted = ['x', 'y', 'z'] + ([color_name] if color_name else [])
    order = '>' if is_bigendian else '<'
    names, formats, offsets = [], [], []
    for name in wanted:
        offset, datatype, _ = by_name[name]
        if datatype not in _NUMPY_TYPE:
            raise GeometryError(f'field {name!r} has unknown PointField datatype {datatype}')
        fmt = np.dtype(order + _NUMPY_TYPE[datatype])
        if name == color_name:
            if fmt.itemsize != 4:
                raise GeometryError(f'field {name!r} must be 4 bytes (FLOAT32 or UINT32)')
            fmt = np.dtype(order + 'u4')  # float32 rgb is a bit pattern: read it as uint32
        if offset < 0 or offset + fmt.itemsize > point_step:
            raise GeometryError(
                f'field {name!r} at offset {offset} does not fit in point_step {point_step}')
        names.append(name)
        formats.append(fmt)
        offsets.append(offset)
    dtype = np.dtype({'names': names, 'formats': formats, 'offsets': offsets,
                      'itemsize': point_step})
    records = buf.view(dtype) if buf.size else np.empty(0, dtype=dtype)
    points = np.empty((records.shape[0], 3), dtype=np.float32)
    points[:, 0] = records['x']
    points[:, 1] = records['y']
    points[:, 2] = records['z']
    colors = unpack_rgb(records[color_name]) if color_name else None
    return points, colors
