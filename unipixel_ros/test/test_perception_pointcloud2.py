"""PointCloud2 payload packing and unpacking."""
from collections import namedtuple

import numpy as np
import pytest

from unipixel_ros.perception import (GeometryError, XYZ_FIELDS, XYZ_POINT_STEP, XYZRGB_FIELDS,
                                     XYZRGB_POINT_STEP, pack_xyz, pack_xyzrgb, unpack_xyzrgb)
from unipixel_ros.perception.pointcloud2 import FLOAT32, FLOAT64, UINT8, UINT32

PointField = namedtuple('PointField', 'name offset datatype count')


def _cloud(n=257, seed=0):
    rng = np.random.default_rng(seed)
    points = rng.normal(0.0, 1.0, (n, 3)).astype(np.float32)
    colors = rng.integers(0, 256, (n, 3), dtype=np.uint8)
    return points, colors


def test_layout_constants():
    assert XYZRGB_FIELDS == [('x', 0, 7, 1), ('y', 4, 7, 1), ('z', 8, 7, 1), ('rgb', 12, 7, 1)]
    assert XYZRGB_POINT_STEP == 16 and XYZ_POINT_STEP == 12 and XYZ_FIELDS == XYZRGB_FIELDS[:3]


def test_round_trip_is_exact():
    points, colors = _cloud()
    data = pack_xyzrgb(points, colors)
    assert isinstance(data, bytes) and len(data) == len(points) * 16
    out_points, out_colors = unpack_xyzrgb(data, XYZRGB_POINT_STEP, XYZRGB_FIELDS)
    np.testing.assert_array_equal(out_points, points)
    np.testing.assert_array_equal(out_colors, colors)
    assert out_points.dtype == np.float32 and out_colors.dtype == np.uint8


def test_rgb_uses_the_pcl_float_convention():
    data = pack_xyzrgb(np.zeros((1, 3), np.float32), np.array([[0x12, 0x34, 0x56]], np.uint8))
    assert np.frombuffer(data[12:16], '<u4')[0] == 0x00123456
    # A publisher that declares rgb as UINT32 is read the same way.
    fields = XYZRGB_FIELDS[:3] + [('rgb', 12, UINT32, 1)]
    np.testing.assert_array_equal(unpack_xyzrgb(data, 16, fields)[1], [[0x12, 0x34, 0x56]])


def test_pack_without_colors_and_xyz_only_clouds():
    points, _ = _cloud(10)
    _, colors = unpack_xyzrgb(pack_xyzrgb(points), 16, XYZRGB_FIELDS)
    np.testing.assert_array_equal(colors, 0)
    out, colors = unpack_xyzrgb(pack_xyz(points), XYZ_POINT_STEP, XYZ_FIELDS)
    np.testing.assert_array_equal(out, points)
    assert colors is None


def test_extra_fields_padding_and_pointfield_objects():
    # x y z as float64, rgb at an odd place, intensity and padding: 40-byte points.
    points, colors = _cloud(33)
    dtype = np.dtype({'names': ['intensity', 'x', 'y', 'z', 'ring', 'rgb'],
                      'formats': ['<f4', '<f8', '<f8', '<f8', '<u1', '<u4'],
                      'offsets': [0, 4, 12, 20, 28, 32], 'itemsize': 40})
    rec = np.zeros(len(points), dtype)
    rec['x'], rec['y'], rec['z'] = points[:, 0], points[:, 1], points[:, 2]
    rec['rgb'] = (colors[:, 0].astype(np.uint32) << 16) | (colors[:, 1].astype(np.uint32) << 8) \
        | colors[:, 2]
    rec['intensity'] = 7.0
    fields = [PointField('intensity', 0, FLOAT32, 1), PointField('x', 4, FLOAT64, 1),
              PointField('y', 12, FLOAT64, 1), PointField('z', 20, FLOAT64, 1),
              PointField('ring', 28, UINT8, 1), PointField('rgb', 32, FLOAT32, 1)]
    out_points, out_colors = unpack_xyzrgb(rec.tobytes(), 40, fields)
    np.testing.assert_array_equal(out_points, points)
    np.testing.assert_array_equal(out_colors, colors)


def test_big_endian():
    points, colors = _cloud(5)
    dtype = np.dtype({'names': ['x', 'y', 'z', 'rgb'], 'formats': ['>f4', '>f4', '>f4', '>u4'],
                      'offsets': [0, 4, 8, 12], 'itemsize': 16})
    rec = np.zeros(5, dtype)
    rec['x'], rec['y'], rec['z'] = points.T
    rec['rgb'] = (colors[:, 0].astype(np.uint32) << 16) | (colors[:, 1].astype(np.uint32) << 8) \
        | colors[:, 2]
    out_points, out_colors = unpack_xyzrgb(rec.tobytes(), 16, XYZRGB_FIELDS, is_bigendian=True)
    np.testing.assert_array_equal(out_points, points)
    np.testing.assert_array_equal(out_colors, colors)


def test_empty_cloud():
    points, colors = unpack_xyzrgb(b'', 16, XYZRGB_FIELDS)
    assert points.shape == (0, 3) and colors.shape == (0, 3)


def test_malformed_clouds():
    data = pack_xyzrgb(*_cloud(4))
    with pytest.raises(GeometryError, match='data length 63 is not a multiple of point_step 16'):
        unpack_xyzrgb(data[:-1], 16, XYZRGB_FIELDS)
    with pytest.raises(GeometryError, match='no z field'):
        unpack_xyzrgb(data, 16, XYZRGB_FIELDS[:2])
    with pytest.raises(GeometryError, match="field 'rgb' at offset 12 does not fit"):
        unpack_xyzrgb(data[:48], 12, XYZRGB_FIELDS)
    with pytest.raises(GeometryError, match='point_step must be > 0'):
        unpack_xyzrgb(data, 0, XYZRGB_FIELDS)
    with pytest.raises(GeometryError, match='unknown PointField datatype 9'):
        unpack_xyzrgb(data, 16, [('x', 0, 9, 1), ('y', 4, 7, 1), ('z', 8, 7, 1)])
    with pytest.raises(GeometryError, match=r'shape \(N, 3\)'):
        pack_xyzrgb(np.zeros((4, 2), np.float32))
    with pytest.raises(GeometryError, match='colors shape'):
        pack_xyzrgb(np.zeros((4, 3), np.float32), np.zeros((3, 3), np.uint8))
