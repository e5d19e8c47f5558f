"""Input validation, depth decoding and back-projection."""
import math

import numpy as np
import pytest

from unipixel_ros.perception import (BackProjection, CameraIntrinsics, GeometryError,
                                     backproject, depth_to_metres, estimate_object_geometry)

K = [615.0, 0.0, 319.5, 0.0, 615.0, 239.5, 0.0, 0.0, 1.0]
INTR = CameraIntrinsics.from_k(K, 640, 480)


def _frame():
    depth = np.full((480, 640), 700, dtype=np.uint16)
    mask = np.zeros((480, 640), dtype=bool)
    mask[200:260, 300:360] = True
    return mask, depth


# ----------------------------------------------------------------- intrinsics

def test_from_k_reads_row_major_k():
    intr = CameraIntrinsics.from_k(np.array(K).reshape(3, 3), 640, 480)
    assert (intr.fx, intr.fy, intr.cx, intr.cy) == (615.0, 615.0, 319.5, 239.5)
    assert intr.shape == (480, 640)
    np.testing.assert_array_equal(intr.k, np.array(K).reshape(3, 3))


@pytest.mark.parametrize('index,value,match', [
    (0, 0.0, 'focal length fx'),
    (4, -615.0, 'focal length fy'),
    (0, math.nan, 'focal length fx'),
    (4, math.inf, 'focal length fy'),
    (2, math.nan, 'principal point cx'),
    (5, math.inf, 'principal point cy'),
])
def test_bad_k_is_rejected(index, value, match):
    k = list(K)
    k[index] = value
    with pytest.raises(GeometryError, match=match):
        CameraIntrinsics.from_k(k, 640, 480)


def test_uncalibrated_all_zero_k_is_rejected():
    with pytest.raises(GeometryError, match='focal length fx .* uncalibrated'):
        CameraIntrinsics.from_k([0.0] * 9, 640, 480)


@pytest.mark.parametrize('width,height', [(0, 480), (640, -1), (640.5, 480)])
def test_bad_image_size_is_rejected(width, height):
    with pytest.raises(GeometryError, match='image (width|height) must be a positive integer'):
        CameraIntrinsics.from_k(K, width, height)


def test_k_needs_nine_entries():
    with pytest.raises(GeometryError, match='9 entries'):
        CameraIntrinsics.from_k(K[:6], 640, 480)


def test_crop_and_scale_keep_projection_consistent():
    crop = INTR.crop(100, 50, 200, 100)
    assert (crop.cx, crop.cy, crop.width, crop.height) == (219.5, 189.5, 200, 100)
    half = INTR.scale(0.5, 0.5)
    assert (half.fx, half.cx, half.width, half.height) == (307.5, 159.5, 320, 240)


# ----------------------------------------------------------------- depth decoding

def test_depth_encodings():
    mm = np.array([[0, 1000], [1500, 65535]], dtype=np.uint16)
    for enc in ('16UC1', 'mono16'):
        out = depth_to_metres(mm, enc)
        assert out.dtype == np.float32
        np.testing.assert_allclose(out, [[0.0, 1.0], [1.5, 65.535]], rtol=1e-6)
    big_endian = mm.astype('>u2')
    np.testing.assert_allclose(depth_to_metres(big_endian, '16UC1'), depth_to_metres(mm, '16UC1'))
    metres = np.array([[0.5, np.nan]], dtype=np.float32)
    np.testing.assert_array_equal(depth_to_metres(metres, '32FC1'), metres)
    assert depth_to_metres(metres[..., None], '32FC1').shape == (1, 2)


def test_unknown_encoding_names_it_and_the_accepted_ones():
    with pytest.raises(GeometryError, match=r"unsupported depth encoding 'rgb8'.*16UC1.*32FC1"):
        depth_to_metres(np.zeros((4, 4), np.uint8), 'rgb8')
    mask, depth = _frame()
    with pytest.raises(GeometryError, match="unsupported depth encoding '8UC1'"):
        estimate_object_geometry(mask, depth, '8UC1', INTR)


@pytest.mark.parametrize('dtype,encoding', [(np.float32, '16UC1'), (np.uint16, '32FC1'),
                                            (np.float64, '32FC1'), (np.int16, 'mono16')])
def test_dtype_must_match_encoding(dtype, encoding):
    with pytest.raises(GeometryError, match=f"depth encoding '{encoding}'.*needs"):
        depth_to_metres(np.zeros((4, 4), dtype), encoding)


# ----------------------------------------------------------------- bad inputs

def test_mask_and_depth_shapes_must_match():
    mask, depth = _frame()
    with pytest.raises(GeometryError, match=r'mask shape \(240, 320\) does not match depth '
                                            r'shape \(480, 640\)'):
        estimate_object_geometry(mask[:240, :320], depth, '16UC1', INTR)
    with pytest.raises(GeometryError, match='mask shape .* does not match depth shape'):
        backproject(mask[:240, :320], depth_to_metres(depth, '16UC1'), INTR)


def test_empty_mask():
    mask, depth = _frame()
    with pytest.raises(GeometryError, match='mask is empty'):
        estimate_object_geometry(np.zeros_like(mask), depth, '16UC1', INTR)
    with pytest.raises(GeometryError, match='mask is empty'):
        backproject(np.zeros_like(mask), depth_to_metres(depth, '16UC1'), INTR)


@pytest.mark.parametrize('encoding,fill', [('16UC1', 0), ('32FC1', 0.0), ('32FC1', np.nan),
                                           ('32FC1', np.inf)])
def test_all_invalid_depth(encoding, fill):
    mask, _ = _frame()
    dtype = np.uint16 if encoding == '16UC1' else np.float32
    depth = np.full(mask.shape, fill, dtype=dtype)
    with pytest.raises(GeometryError,
                       match=r'all 3600 masked depth pixels are invalid \(0, NaN, inf or '
                             r'outside \[0.1, 10\] m\)'):
        backproject(mask, depth_to_metres(depth, encoding), INTR)
    with pytest.raises(GeometryError, match='masked depth pixels are invalid'):
        estimate_object_geometry(mask, depth, encoding, INTR)


def test_depth_outside_range_is_invalid():
    mask, _ = _frame()
    depth = np.full(mask.shape, 12.0, dtype=np.float32)
    with pytest.raises(GeometryError, match='masked depth pixels are invalid'):
        backproject(mask, depth, INTR)


def test_zero_focal_length():
    with pytest.raises(GeometryError, match='focal length fx'):
        CameraIntrinsics(fx=0.0, fy=615.0, cx=319.5, cy=239.5, width=640, height=480)


def test_intrinsics_must_match_the_image_size():
    mask, depth = _frame()
    small = CameraIntrinsics.from_k(K, 320, 240)
    with pytest.raises(GeometryError, match='K.* are for a 320x240 image but the depth image is '
                                            '640x480'):
        estimate_object_geometry(mask, depth, '16UC1', small)
    with pytest.raises(GeometryError, match='320x240 image'):
        backproject(mask, depth_to_metres(depth, '16UC1'), small)


def test_rgb_shape_must_match():
    mask, depth = _frame()
    with pytest.raises(GeometryError, match=r'rgb shape \(480, 640\) does not match'):
        estimate_object_geometry(mask, depth, '16UC1', INTR, rgb=np.zeros((480, 640), np.uint8))
    with pytest.raises(GeometryError, match='rgb shape'):
        backproject(mask, depth_to_metres(depth, '16UC1'), INTR,
                    rgb=np.zeros((240, 320, 3), np.uint8))


def test_float_mask_is_rejected():
    mask, depth = _frame()
    with pytest.raises(GeometryError, match='threshold probabilities first'):
        backproject(mask.astype(np.float32), depth_to_metres(depth, '16UC1'), INTR)


# ----------------------------------------------------------------- back-projection

def test_backprojection_matches_the_pinhole_model():
    rng = np.random.default_rng(0)
    depth = rng.uniform(0.3, 2.0, (480, 640)).astype(np.float32)
    depth[0, 0] = np.nan
    depth[5, 5] = 0.0
    depth[7, 7] = 0.05  # below min_depth
    rgb = rng.integers(0, 255, (480, 640, 3), dtype=np.uint8)
    mask = rng.random((480, 640)) < 0.05
    mask[[0, 5, 7], [0, 5, 7]] = True
    bp = backproject(mask.astype(np.uint8), depth, INTR, rgb)
    assert isinstance(bp, BackProjection)
    assert bp.masked_pixels == int(mask.sum())
    assert len(bp.points) == bp.masked_pixels - 3
    v, u = bp.pixels[:, 0], bp.pixels[:, 1]
    assert bp.points.dtype == np.float32 and bp.colors.dtype == np.uint8
    z = depth[v, u]
    np.testing.assert_allclose(bp.points[:, 2], z)
    np.testing.assert_allclose(bp.points[:, 0], (u - 319.5) * z / 615.0, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bp.points[:, 1], (v - 239.5) * z / 615.0, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(bp.colors, rgb[v, u])
    # Reprojection lands on the source pixel.
    uv = bp.points[:, :2] / bp.points[:, 2:] * 615.0 + [319.5, 239.5]
    np.testing.assert_allclose(uv, np.stack([u, v], axis=1), atol=1e-3)
    assert backproject(mask, depth, INTR).colors is None
