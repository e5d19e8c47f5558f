"""sensor_msgs/CompressedImage -> numpy (and -> sensor_msgs/Image), without cv_bridge or OpenCV.

Two wire formats are decoded, both as image_transport's plugins write them, with Pillow:

Colour (compressed_image_transport, topic ``.../compressed``)
    ``format`` is ``"<raw encoding>; <codec> compressed <target encoding>"``, e.g.
    ``"rgb8; jpeg compressed bgr8"`` or ``"bgra8; png compressed bgra8"``, with codec jpeg, png or
    tiff; ROS 1 era and third-party publishers also send just ``"jpeg"`` or ``"png"``. ``data`` is
    the complete JPEG/PNG/TIFF file. OpenCV wrote it from a BGR(A) matrix, so the file itself holds
    ordinary RGB(A) samples: decoding it yields RGB regardless of the target encoding.

Depth (compressed_depth_image_transport, topic ``.../compressedDepth``)
    ``format`` is ``"<raw encoding>; compressedDepth png"`` (``"...; compressedDepth"`` from
    versions before RVL support, which means png; ``"...; compressedDepth rvl"`` is RVL, not
    decoded here). ``data`` is a 12-byte ``ConfigHeader`` followed by the compressed image:

    ======  ======  ==========================================================================
    offset  type    field
    ======  ======  ==========================================================================
    0       int32   ``format``: compression format enum, ``INV_DEPTH`` = 0 (``UNDEFINED`` = -1)
    4       float   ``depthParam[0]`` = depthQuantA
    8       float   ``depthParam[1]`` = depthQuantB
    12      bytes   PNG file, 16-bit greyscale
    ======  ======  ==========================================================================

    (the publisher's native byte order: little-endian on every platform ROS 2 ships for).
    For ``16UC1``/``mono16`` the PNG holds the raw depth units (millimetres for a
    depth_image_proc-conformant camera; readings beyond the publisher's ``depth_max`` were set
    to 0) and depthParam is unused. For ``32FC1`` the PNG holds inverse-depth-quantised values
    ``v = depthQuantA / depth + depthQuantB`` (with ``depthQuantA = z0 * (z0 + 1)``,
    ``depthQuantB = 1 - depthQuantA / depth_max``, z0 = the ``depth_quantization`` parameter),
    decoded as ``depth = depthQuantA / (v - depthQuantB)`` metres, ``v = 0`` meaning no reading
    (NaN, as the plugin's own subscriber writes).

    Layout and formulas as in ros-perception/image_transport_plugins,
    compressed_depth_image_transport: ``include/.../compression_common.h(pp)`` (``ConfigHeader``,
    ``compressionFormat``) and ``src/codec.cpp`` (``encodeCompressedDepthImage``,
    ``decodeCompressedDepthImage``, the format-string parsing).

Every decoder raises :class:`CompressedImageError` (a ``MessageConversionError``) naming the
problem, so a node can answer a bad message with a status instead of crashing.
"""
from __future__ import annotations

import io
import math
import struct
from dataclasses import dataclass

import numpy as np
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from unipixel_ros.ros.conversions import MessageConversionError, numpy_to_image
from unipixel_ros.ros.depth_units import depth_array_to_metres

#: struct layout of compressed_depth_image_transport's ConfigHeader (int32 enum, float[2])
CONFIG_HEADER = struct.Struct('<iff')
#: compressionFormat::INV_DEPTH, the only value the publisher writes
INV_DEPTH = 0
#: codecs compressed_image_transport writes (and the plain names other publishers use)
COLOR_CODECS = {'jpeg': 'JPEG', 'jpg': 'JPEG', 'png': 'PNG', 'tiff': 'TIFF', 'tif': 'TIFF'}
#: raw encodings compressedDepth carries: uint16 units, or float32 metres (inverse-quantised)
DEPTH_16_ENCODINGS = ('16UC1', 'mono16')
DEPTH_32_ENCODINGS = ('32FC1',)


class CompressedImageError(MessageConversionError):
    """A CompressedImage cannot be decoded (unknown format string, corrupt data, wrong kind)."""


@dataclass(frozen=True)
class CompressedFormat:
    """A parsed ``CompressedImage.format`` string.

    Attributes:
        encoding: raw image encoding before compression (``'rgb8'``, ``'16UC1'``, ...), ``''`` when
            the string does not say (plain ``"jpeg"``).
        codec: ``'jpeg'``, ``'png'``, ``'tiff'`` or ``'rvl'`` (lower case).
        depth: True for compressed_depth_image_transport's ``compressedDepth`` layout.
    """

    encoding: str
    codec: str
    depth: bool


def parse_format(fmt: str) -> CompressedFormat:
    """Parse a CompressedImage ``format`` the way image_transport's plugins write and read it.

    Raises CompressedImageError for a string that names no known codec.
    """
    text = (fmt or '').strip()
    if not text:
        raise CompressedImageError('CompressedImage.format is empty: cannot tell jpeg, png or '
                                   'compressedDepth apart')
    encoding, sep, rest = text.partition(';')
    encoding, rest = encoding.strip(), rest.strip()
    if not sep:  # a bare codec name ("jpeg", "png") as ROS 1 and third-party publishers send
        codec = encoding.lower()
        if codec in COLOR_CODECS:
            return CompressedFormat('', _canonical(codec), False)
        raise CompressedImageError(f'CompressedImage.format {fmt!r} names no known codec '
                                   f'(jpeg, png, tiff, "<enc>; compressedDepth png")')
    words = rest.split()
    if words and words[0] == 'compressedDepth':
        codec = words[1].lower() if len(words) > 1 else 'png'  # pre-RVL publishers: png only
        if codec not in ('png', 'rvl'):
            raise CompressedImageError(f'unsupported compressedDepth codec in format {fmt!r}')
        return CompressedFormat(encoding, codec, True)
    if len(words) >= 2 and words[1] == 'compressed' and words[0].lower() in COLOR_CODECS:
        return CompressedFormat(encoding, _canonical(words[0].lower()), False)
    raise CompressedImageError(f'CompressedImage.format {fmt!r} is neither '
                               '"<enc>; <jpeg|png|tiff> compressed <enc>" nor '
                               '"<enc>; compressedDepth <png|rvl>"')


def _canonical(codec: str) -> str:
    return {'jpg': 'jpeg', 'tif': 'tiff'}.get(codec, codec)


def _bytes(msg) -> bytes:
    data = msg.data
    return data.tobytes() if hasattr(data, 'tobytes') else bytes(data)


def _open(payload: bytes, codec: str, what: str) -> PILImage.Image:
    """Decode a complete image file with Pillow, only with the decoder the codec names."""
    if not payload:
        raise CompressedImageError(f'{what}: no image data')
    try:
        img = PILImage.open(io.BytesIO(payload), formats=[COLOR_CODECS[codec]])
        img.load()  # decode now: truncation and corruption surface here, not later
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError,
            PILImage.DecompressionBombError) as exc:
        raise CompressedImageError(f'{what}: cannot decode {len(payload)} bytes as {codec}: '
                                   f'{exc}') from exc
    return img


def compressed_to_rgb(msg) -> np.ndarray:
    """Decode a colour ``sensor_msgs/CompressedImage`` (JPEG, PNG or TIFF) into RGB.

    Returns:
        (H, W, 3) uint8 RGB, a new C-contiguous array. Greyscale images are replicated into
        three channels, alpha is dropped, 16-bit samples keep their high byte.
    Raises:
        CompressedImageError: a compressedDepth message, an unknown format string, or data
            that does not decode.
    """
    fmt = parse_format(msg.format)
    if fmt.depth:
        raise CompressedImageError(f'format {msg.format!r} is a compressedDepth image; decode it '
                                   'with compressed_depth_to_numpy')
    img = _open(_bytes(msg), fmt.codec, 'compressed colour image')
    if img.mode in ('I;16', 'I;16B', 'I;16L', 'I'):  # 16-bit greyscale: keep the high byte
        grey = np.array(img).astype(np.uint32)
        grey = (grey >> 8).clip(0, 255).astype(np.uint8)
        return np.ascontiguousarray(np.repeat(grey[:, :, None], 3, axis=2))
    if img.mode not in ('RGB', 'RGBA', 'L', 'LA', 'P', 'PA', '1', 'CMYK', 'YCbCr'):
        raise CompressedImageError(f'compressed colour image decodes to unsupported mode '
                                   f'{img.mode!r}')
    rgb = np.array(img if img.mode == 'RGB' else img.convert('RGB'))
    return np.ascontiguousarray(rgb, dtype=np.uint8)


@dataclass(frozen=True)
class DecodedDepth:
    """A decoded compressedDepth image, in the units of the raw image it was made from.

    Attributes:
        data: (H, W) uint16 sensor units for ``16UC1``/``mono16`` (0 = no reading), or float32
            metres for ``32FC1`` (NaN = no reading).
        encoding: the raw encoding before compression: ``'16UC1'``, ``'mono16'`` or ``'32FC1'``.
    """

    data: np.ndarray
    encoding: str


def compressed_depth_to_numpy(msg) -> DecodedDepth:
    """Decode a compressed_depth_image_transport ``CompressedImage`` (png) into its depth image.

    Raises:
        CompressedImageError: not a compressedDepth format, rvl (not decoded here), an encoding
            other than 16UC1/mono16/32FC1, data shorter than the 12-byte header, a header whose
            format is not INV_DEPTH, quantisation parameters that are not finite (32FC1), or PNG
            data that does not decode to one 16-bit channel.
    """
    fmt = parse_format(msg.format)
    if not fmt.depth:
        raise CompressedImageError(f'format {msg.format!r} is not compressedDepth; decode colour '
                                   'images with compressed_to_rgb')
    if fmt.codec != 'png':
        raise CompressedImageError(f'compressedDepth codec {fmt.codec!r} is not supported (only '
                                   "png); set the publisher's format parameter to png")
    if fmt.encoding not in DEPTH_16_ENCODINGS + DEPTH_32_ENCODINGS:
        raise CompressedImageError(f'compressedDepth raw encoding {fmt.encoding!r} is not one of '
                                   f'{", ".join(DEPTH_16_ENCODINGS + DEPTH_32_ENCODINGS)}')
    data = _bytes(msg)
    if len(data) <= CONFIG_HEADER.size:
        raise CompressedImageError(f'compressedDepth data has {len(data)} bytes: no room for the '
                                   f'{CONFIG_HEADER.size}-byte ConfigHeader and an image')
    kind, quant_a, quant_b = CONFIG_HEADER.unpack_from(data, 0)
    if kind != INV_DEPTH:
        raise CompressedImageError(f'compressedDepth ConfigHeader format is {kind}, expected '
                                   f'INV_DEPTH ({INV_DEPTH}): data does not start with the header')
    img = _open(data[CONFIG_HEADER.size:], 'png', 'compressedDepth image')
    if img.mode not in ('I;16', 'I;16B', 'I;16L', 'I'):
        raise CompressedImageError(f'compressedDepth PNG decodes to mode {img.mode!r}, expected '
                                   'one 16-bit channel')
    raw = np.array(img)
    if raw.dtype != np.uint16:  # mode 'I' is int32: values must still fit 16 bits
        if raw.min(initial=0) < 0 or raw.max(initial=0) > 0xFFFF:
            raise CompressedImageError('compressedDepth PNG values do not fit 16 bits')
        raw = raw.astype(np.uint16)
    raw = np.ascontiguousarray(raw, dtype=np.uint16)
    if fmt.encoding in DEPTH_16_ENCODINGS:
        return DecodedDepth(raw, fmt.encoding)
    if not (math.isfinite(quant_a) and math.isfinite(quant_b)) or quant_a == 0.0:
        raise CompressedImageError(f'compressedDepth 32FC1 quantisation parameters are unusable: '
                                   f'depthQuantA={quant_a}, depthQuantB={quant_b}')
    # float32 arithmetic, as the plugin's decoder does it
    v = raw.astype(np.float32)
    with np.errstate(divide='ignore', invalid='ignore'):
        depth = np.float32(quant_a) / (v - np.float32(quant_b))
    depth[(raw == 0) | ~np.isfinite(depth)] = np.nan
    return DecodedDepth(depth.astype(np.float32, copy=False), fmt.encoding)


def compressed_depth_to_metres(msg, depth_scale: float = 0.001,
                               invalid_value: float = float('nan')) -> np.ndarray:
    """Decode a compressedDepth message straight to (H, W) float32 metres.

    ``depth_scale`` is metres per unit of a 16UC1/mono16 raw image (0.001 = millimetres);
    32FC1 is metres already. Invalid readings become ``invalid_value``.
    """
    decoded = compressed_depth_to_numpy(msg)
    return depth_array_to_metres(decoded.data, decoded.encoding, depth_scale, invalid_value)


def compressed_to_image(msg):
    """Any supported ``CompressedImage`` -> the ``sensor_msgs/Image`` image_transport would give.

    Colour becomes ``rgb8``; compressedDepth becomes its raw encoding (``16UC1``/``mono16``
    units, or ``32FC1`` metres with NaN for no reading). The header is copied, so the result
    can go through the same synchronisation and decoding as an uncompressed stream.
    """
    fmt = parse_format(msg.format)
    if fmt.depth:
        decoded = compressed_depth_to_numpy(msg)
        return numpy_to_image(decoded.data, decoded.encoding, msg.header)
    return numpy_to_image(compressed_to_rgb(msg), 'rgb8', msg.header)
