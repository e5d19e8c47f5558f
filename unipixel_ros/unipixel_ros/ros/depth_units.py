"""Depth image units, decided once at the ROS boundary: any supported depth image -> metres.

depth_image_proc's convention is ``16UC1`` = millimetres and ``32FC1`` = metres, but not every
camera follows it: some publish 16UC1 in 0.1 mm, 0.25 mm or centimetres (yolo_ros exposes this as
``depth_image_units_divisor``). Here the unit of an integer depth image is one parameter,
``depth_scale`` in metres per unit (0.001 = millimetres, the default), so the node can take it
from a ROS parameter and everything downstream only ever sees float32 metres.

Invalid readings: 0 in an integer image (the sensor had no return), and 0, NaN, +-inf or a
negative value in a float image, all become ``invalid_value`` (NaN by default, as
depth_image_proc's convert_metric does; pass 0.0 for consumers that treat 0 as "no reading").
"""
from __future__ import annotations

import math

import numpy as np

from unipixel_ros.ros.conversions import MessageConversionError, image_to_numpy

#: metres per unit of a depth_image_proc-conformant 16UC1 image (millimetres)
DEFAULT_DEPTH_SCALE = 0.001
#: integer encodings whose unit is ``depth_scale`` metres
SCALED_ENCODINGS = ('16UC1', 'mono16')
#: float encodings already in metres
METRE_ENCODINGS = ('32FC1',)


class DepthUnitsError(MessageConversionError):
    """A depth image cannot be turned into metres (encoding, dtype or scale is wrong)."""


def check_depth_scale(depth_scale: float) -> float:
    """Return ``depth_scale`` (metres per unit) as a float; DepthUnitsError unless finite and > 0."""
    try:
        scale = float(depth_scale)
    except (TypeError, ValueError) as exc:
        raise DepthUnitsError(
            f'depth_scale must be a number (metres per unit), got {depth_scale!r}') from exc
    if not math.isfinite(scale) or scale <= 0.0:
        raise DepthUnitsError(f'depth_scale must be finite and > 0 metres per unit, got {scale}')
    return scale


def depth_array_to_metres(depth: np.ndarray, encoding: str,
                          depth_scale: float = DEFAULT_DEPTH_SCALE,
                          invalid_value: float = float('nan')) -> np.ndarray:
    """Convert a decoded depth array to metres.

    Args:
        depth: (H, W) array: unsigned integer units for ``16UC1``/``mono16``, float metres for
            ``32FC1`` (any byte order).
        encoding: ``sensor_msgs/Image.encoding`` of the data.
        depth_scale: metres per unit of an integer image (0.001 = millimetres, 0.0001 =
            tenth-millimetres, 0.01 = centimetres). Ignored for ``32FC1``, which is metres.
        invalid_value: what an invalid reading becomes (NaN by default; 0.0 is also common).
    Returns:
        (H, W) float32 metres, a new array (never a view of ``depth``).
    Raises:
        DepthUnitsError: unknown encoding, a dtype that does not match it, not 2D, or a bad scale.
    """
    depth = np.asarray(depth)
    if depth.ndim == 3 and depth.shape[2] == 1:
        depth = depth[:, :, 0]
    if depth.ndim != 2:
        raise DepthUnitsError(f'depth must be a 2D (H, W) array, got shape {depth.shape}')
    if encoding in SCALED_ENCODINGS:
        if depth.dtype.kind != 'u' or depth.dtype.itemsize != 2:
            raise DepthUnitsError(f'depth encoding {encoding!r} needs uint16 data, got {depth.dtype}')
        scale = check_depth_scale(depth_scale)
        # float64 multiply then float32: scale * 65535 keeps its precision for any scale
        out = (depth * scale).astype(np.float32)
        out[depth == 0] = invalid_value
        return out
    if encoding in METRE_ENCODINGS:
        if depth.dtype.kind != 'f' or depth.dtype.itemsize != 4:
            raise DepthUnitsError(f'depth encoding {encoding!r} needs float32 data, got {depth.dtype}')
        out = depth.astype(np.float32, copy=True)
        with np.errstate(invalid='ignore'):
            bad = ~np.isfinite(out) | (out <= 0.0)
        out[bad] = invalid_value
        return out
    raise DepthUnitsError(f'unsupported depth encoding {encoding!r}; accepted: '
                          f'{", ".join(SCALED_ENCODINGS)} (depth_scale metres per unit), '
                          f'{", ".join(METRE_ENCODINGS)} (metres)')


def depth_image_to_metres(msg, depth_scale: float = DEFAULT_DEPTH_SCALE,
                          invalid_value: float = float('nan')) -> np.ndarray:
    """Decode a ``sensor_msgs/Image`` depth message into (H, W) float32 metres.

    ``depth_scale`` is metres per unit for ``16UC1``/``mono16`` (default 0.001: millimetres);
    ``32FC1`` is read as metres. Invalid readings become ``invalid_value`` (see module docstring).
    Raises DepthUnitsError (a MessageConversionError) for anything that is not a depth image or
    a malformed message (size, step).
    """
    if msg.encoding not in SCALED_ENCODINGS + METRE_ENCODINGS:
        raise DepthUnitsError(f'depth image encoding {msg.encoding!r} is not one of '
                              f'{", ".join(SCALED_ENCODINGS + METRE_ENCODINGS)}')
    try:
        depth = image_to_numpy(msg)
    except MessageConversionError as exc:
        raise DepthUnitsError(f'malformed depth image: {exc}') from exc
    return depth_array_to_metres(depth, msg.encoding, depth_scale, invalid_value)
