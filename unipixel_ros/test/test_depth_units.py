"""Depth images -> float32 metres with a depth_scale parameter (16UC1 not always millimetres)."""
import numpy as np
import pytest

pytest.importorskip('sensor_msgs')
from sensor_msgs.msg import Image  # noqa: E402

from unipixel_ros.ros.conversions import MessageConversionError, numpy_to_image  # noqa: E402
from unipixel_ros.ros.depth_units import (DepthUnitsError, check_depth_scale,  # noqa: E402
                                          depth_array_to_metres, depth_image_to_metres)

RAW = np.array([[0, 1, 1000], [1234, 65535, 0]], dtype=np.uint16)


@pytest.mark.parametrize('scale', [0.001, 0.0001, 0.00025, 0.01])
def test_16uc1_scaled_to_metres_zero_is_invalid(scale):
    metres = depth_image_to_metres(numpy_to_image(RAW, '16UC1'), depth_scale=scale)
    assert metres.dtype == np.float32 and metres.shape == RAW.shape
    valid = RAW != 0
    np.testing.assert_allclose(metres[valid], RAW[valid] * scale, rtol=1e-6)
    assert np.isnan(metres[~valid]).all()


def test_default_scale_is_millimetres_and_invalid_value_is_configurable():
    metres = depth_image_to_metres(numpy_to_image(RAW, '16UC1'), invalid_value=0.0)
    np.testing.assert_allclose(metres, [[0.0, 0.001, 1.0], [1.234, 65.535, 0.0]], rtol=1e-6)


def test_mono16_and_big_endian_16uc1():
    rows = RAW.astype('>u2').view(np.uint8).reshape(2, 6)
    msg = Image(height=2, width=3, encoding='16UC1', is_bigendian=1, step=6, data=rows.tobytes())
    np.testing.assert_allclose(depth_image_to_metres(msg, invalid_value=0.0),
                               RAW * 0.001, rtol=1e-6)
    mono = depth_image_to_metres(numpy_to_image(RAW, 'mono16'), depth_scale=0.01, invalid_value=-1)
    assert mono[0, 0] == -1 and mono[0, 2] == pytest.approx(10.0)


def test_32fc1_is_metres_and_scale_is_ignored():
    depth = np.array([[0.5, 0.0, np.nan], [np.inf, -1.0, 2.25]], dtype=np.float32)
    msg = numpy_to_image(depth, '32FC1')
    metres = depth_image_to_metres(msg, depth_scale=0.01)
    assert metres[0, 0] == 0.5 and metres[1, 2] == 2.25
    assert np.isnan(metres[[0, 0, 1, 1], [1, 2, 0, 1]]).all()
    zeros = depth_image_to_metres(msg, invalid_value=0.0)
    assert (zeros[[0, 0, 1, 1], [1, 2, 0, 1]] == 0).all()


def test_result_never_aliases_the_input():
    depth = np.ones((2, 2), np.float32)
    out = depth_array_to_metres(depth, '32FC1')
    out[0, 0] = 7.0
    assert depth[0, 0] == 1.0


@pytest.mark.parametrize('scale', [0, -0.001, float('nan'), float('inf'), 'mm', None])
def test_bad_depth_scale_is_refused(scale):
    with pytest.raises(DepthUnitsError, match='depth_scale'):
        depth_image_to_metres(numpy_to_image(RAW, '16UC1'), depth_scale=scale)


def test_check_depth_scale_accepts_numbers():
    assert check_depth_scale(1) == 1.0 and check_depth_scale('0.001') == 0.001


@pytest.mark.parametrize('encoding,arr', [
    ('rgb8', np.zeros((2, 2, 3), np.uint8)),
    ('mono8', np.zeros((2, 2), np.uint8)),
])
def test_non_depth_encodings_are_refused(encoding, arr):
    with pytest.raises(DepthUnitsError, match='depth image encoding'):
        depth_image_to_metres(numpy_to_image(arr, encoding))


def test_malformed_message_is_a_conversion_error():
    msg = Image(height=2, width=3, encoding='16UC1', step=6, data=bytes(10))
    with pytest.raises(DepthUnitsError, match='malformed depth image') as info:
        depth_image_to_metres(msg)
    assert isinstance(info.value, MessageConversionError)


@pytest.mark.parametrize('arr,encoding,match', [
    (np.zeros((2, 2), np.float32), '16UC1', 'needs uint16'),
    (np.zeros((2, 2), np.uint16), '32FC1', 'needs float32'),
    (np.zeros((2, 2, 2), np.uint16), '16UC1', '2D'),
    (np.zeros((2, 2), np.uint16), '8UC1', 'unsupported depth encoding'),
])
def test_array_level_errors(arr, encoding, match):
    with pytest.raises(DepthUnitsError, match=match):
        depth_array_to_metres(arr, encoding)
