"""CompressedImage decoding: messages built byte for byte the way image_transport's plugins write
them (compressed_image_transport: a JPEG/PNG file; compressed_depth_image_transport: a 12-byte
ConfigHeader <int32 format, float depthQuantA, float depthQuantB> + a 16-bit PNG)."""
import io
import struct

import numpy as np
import pytest
from PIL import Image as PILImage

pytest.importorskip('sensor_msgs')
from sensor_msgs.msg import CompressedImage  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from unipixel_ros.ros.compressed import (CompressedFormat, CompressedImageError,  # noqa: E402
                                         compressed_depth_to_metres,
                                         compressed_depth_to_numpy, compressed_to_image,
                                         compressed_to_rgb, parse_format)
from unipixel_ros.ros.conversions import MessageConversionError, image_to_numpy  # noqa: E402

RNG = np.random.default_rng(3)
# compressed_depth_image_transport's defaults: depth_max 10 m, depth_quantization 100
DEPTH_MAX, Z0 = 10.0, 100.0


def encode(arr: np.ndarray, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    PILImage.fromarray(arr).save(buf, fmt, **kwargs)
    return buf.getvalue()


def message(fmt: str, data: bytes, frame_id: str = 'cam') -> CompressedImage:
    return CompressedImage(header=Header(frame_id=frame_id), format=fmt, data=data)


def smooth_rgb(h=48, w=64) -> np.ndarray:
    """A gradient with a saturated red block: JPEG keeps it close, and a swapped R/B shows."""
    y, x = np.mgrid[0:h, 0:w]
    rgb = np.stack([x * 255 // (w - 1), y * 255 // (h - 1), np.full_like(x, 90)], -1)
    rgb[8:24, 8:24] = (255, 0, 0)
    return rgb.astype(np.uint8)


def config_header(quant_a=0.0, quant_b=0.0, kind=0) -> bytes:
    return struct.pack('<iff', kind, quant_a, quant_b)


def quantise_32fc1(depth_m: np.ndarray):
    """compressed_depth_image_transport's encodeCompressedDepthImage for 32FC1, in float32."""
    quant_a = np.float32(Z0 * (Z0 + 1.0))
    quant_b = np.float32(1.0 - quant_a / np.float32(DEPTH_MAX))
    inv = np.zeros(depth_m.shape, np.uint16)
    with np.errstate(invalid='ignore'):
        ok = depth_m < DEPTH_MAX  # NaN compares false: no reading
    inv[ok] = (quant_a / depth_m[ok] + quant_b).astype(np.uint16)  # C++ float -> ushort truncates
    return inv, float(quant_a), float(quant_b)


# ---- colour ----------------------------------------------------------------------------------

@pytest.mark.parametrize('fmt', ['rgb8; png compressed bgr8', 'bgr8; png compressed bgr8', 'png',
                                 'bgra8; png compressed bgra8'])
def test_png_colour_round_trip_is_exact_rgb(fmt):
    rgb = RNG.integers(0, 256, (5, 7, 3), dtype=np.uint8)
    out = compressed_to_rgb(message(fmt, encode(rgb, 'PNG')))
    assert out.dtype == np.uint8 and out.shape == (5, 7, 3) and out.flags.c_contiguous
    np.testing.assert_array_equal(out, rgb)


@pytest.mark.parametrize('fmt', ['rgb8; jpeg compressed bgr8', 'jpeg', 'bgr8; jpeg compressed bgr8'])
def test_jpeg_colour_decodes_to_rgb_order(fmt):
    rgb = smooth_rgb()
    out = compressed_to_rgb(message(fmt, encode(rgb, 'JPEG', quality=95)))
    assert out.shape == rgb.shape
    assert np.abs(out.astype(int) - rgb).mean() < 3.0
    r, g, b = out[16, 16]
    assert r > 200 and g < 60 and b < 60  # red stays red: no BGR/RGB swap


def test_mono_jpeg_and_rgba_png():
    grey = np.tile(np.arange(0, 256, 8, dtype=np.uint8), (6, 1))
    out = compressed_to_rgb(message('mono8; jpeg compressed mono8', encode(grey, 'JPEG', quality=100)))
    assert out.shape == (6, 32, 3)
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()
    assert np.abs(out[..., 0].astype(int) - grey).max() <= 4
    rgba = RNG.integers(0, 256, (3, 4, 4), dtype=np.uint8)
    np.testing.assert_array_equal(
        compressed_to_rgb(message('rgba8; png compressed bgra8', encode(rgba, 'PNG'))), rgba[..., :3])


def test_compressed_to_image_keeps_header_and_gives_rgb8():
    rgb = RNG.integers(0, 256, (4, 6, 3), dtype=np.uint8)
    img = compressed_to_image(message('bgr8; png compressed bgr8', encode(rgb, 'PNG'), 'optical'))
    assert img.encoding == 'rgb8' and img.header.frame_id == 'optical'
    np.testing.assert_array_equal(image_to_numpy(img), rgb)


# ---- depth -----------------------------------------------------------------------------------

@pytest.mark.parametrize('fmt', ['16UC1; compressedDepth png', '16UC1; compressedDepth',
                                 'mono16; compressedDepth png'])
def test_16uc1_compressed_depth_round_trip(fmt):
    depth_mm = RNG.integers(0, 10000, (6, 8)).astype(np.uint16)
    depth_mm[0, :3] = 0
    decoded = compressed_depth_to_numpy(message(fmt, config_header() + encode(depth_mm, 'PNG')))
    assert decoded.encoding == fmt.split(';')[0]
    assert decoded.data.dtype == np.uint16
    np.testing.assert_array_equal(decoded.data, depth_mm)


def test_32fc1_compressed_depth_inverse_quantisation():
    depth = RNG.uniform(0.2, 9.5, (12, 16)).astype(np.float32)
    depth[0, 0], depth[0, 1], depth[0, 2] = np.nan, 10.0, 12.0  # no reading / at and beyond max
    inv, quant_a, quant_b = quantise_32fc1(depth)
    msg = message('32FC1; compressedDepth png', config_header(quant_a, quant_b) + encode(inv, 'PNG'))
    decoded = compressed_depth_to_numpy(msg)
    assert decoded.encoding == '32FC1' and decoded.data.dtype == np.float32
    assert np.isnan(decoded.data[0, :3]).all()
    valid = np.isfinite(depth) & (depth < DEPTH_MAX)
    # truncation loses < 1 quantisation step: dd = d^2 / depthQuantA (0.4 mm at 2 m, 8 mm at 9 m)
    step = depth[valid] ** 2 / quant_a
    err = decoded.data[valid] - depth[valid]
    assert (err >= -1e-4).all() and (err <= step * 1.01 + 1e-4).all()
    # the same formula the plugin's subscriber applies, element for element
    expected = np.float32(quant_a) / (inv[valid].astype(np.float32) - np.float32(quant_b))
    np.testing.assert_array_equal(decoded.data[valid], expected)


def test_compressed_depth_to_metres_and_image():
    depth_units = np.array([[0, 400], [1000, 2500]], np.uint16)  # 0.25 mm units
    msg = message('16UC1; compressedDepth png', config_header() + encode(depth_units, 'PNG'))
    metres = compressed_depth_to_metres(msg, depth_scale=0.00025)
    assert np.isnan(metres[0, 0])
    np.testing.assert_allclose(metres[1], [0.25, 0.625], rtol=1e-6)
    img = compressed_to_image(msg)
    assert img.encoding == '16UC1' and img.header.frame_id == 'cam'
    np.testing.assert_array_equal(image_to_numpy(img), depth_units)


# ---- format strings and malformed input --------------------------------------------------------

def test_parse_format_variants():
    assert parse_format('rgb8; jpeg compressed bgr8') == CompressedFormat('rgb8', 'jpeg', False)
    assert parse_format('PNG') == CompressedFormat('', 'png', False)
    assert parse_format('jpg').codec == 'jpeg'
    assert parse_format('32FC1; compressedDepth rvl') == CompressedFormat('32FC1', 'rvl', True)
    assert parse_format('16UC1; compressedDepth') == CompressedFormat('16UC1', 'png', True)


GOOD_PNG = encode(np.zeros((2, 2, 3), np.uint8), 'PNG')
GOOD_DEPTH = encode(np.ones((2, 2), np.uint16), 'PNG')


@pytest.mark.parametrize('fmt,data,match', [
    ('', GOOD_PNG, 'format is empty'),
    ('h264', GOOD_PNG, 'names no known codec'),
    ('rgb8; theora compressed bgr8', GOOD_PNG, 'neither'),
    ('rgb8; jpeg compressed bgr8', b'', 'no image data'),
    ('rgb8; jpeg compressed bgr8', b'not an image at all', 'cannot decode'),
    ('rgb8; jpeg compressed bgr8', encode(smooth_rgb(), 'JPEG')[:300], 'cannot decode'),
    ('rgb8; jpeg compressed bgr8', GOOD_PNG, 'cannot decode'),  # png bytes, jpeg declared
    ('16UC1; compressedDepth png', config_header() + GOOD_DEPTH, 'compressedDepth image'),
])
def test_bad_colour_messages(fmt, data, match):
    with pytest.raises(CompressedImageError, match=match) as info:
        compressed_to_rgb(message(fmt, data))
    assert isinstance(info.value, MessageConversionError)


@pytest.mark.parametrize('fmt,data,match', [
    ('rgb8; png compressed bgr8', GOOD_PNG, 'not compressedDepth'),
    ('32FC1; compressedDepth rvl', config_header(1.0, 1.0) + b'\x02\x00\x00\x00' * 4, 'rvl'),
    ('8UC1; compressedDepth png', config_header() + GOOD_DEPTH, 'raw encoding'),
    ('16UC1; compressedDepth png', config_header(), 'no room'),
    ('16UC1; compressedDepth png', GOOD_DEPTH, 'ConfigHeader format'),  # header missing
    ('16UC1; compressedDepth png', config_header(kind=-1) + GOOD_DEPTH, 'INV_DEPTH'),
    ('16UC1; compressedDepth png', config_header() + b'\x89PNG\r\n\x1a\n garbage', 'cannot decode'),
    ('16UC1; compressedDepth png', config_header() + encode(np.ones((2, 2), np.uint8), 'PNG'),
     'one 16-bit channel'),
    ('32FC1; compressedDepth png', config_header(float('nan'), 1.0) + GOOD_DEPTH, 'quantisation'),
    ('32FC1; compressedDepth png', config_header(0.0, 1.0) + GOOD_DEPTH, 'quantisation'),
])
def test_bad_depth_messages(fmt, data, match):
    with pytest.raises(CompressedImageError, match=match):
        compressed_depth_to_numpy(message(fmt, data))
