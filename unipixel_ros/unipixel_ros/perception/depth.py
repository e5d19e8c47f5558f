"""Depth image decoding and masked back-projection to a 3D point cloud.

Conventions follow depth_image_proc: ``16UC1``/``mono16`` depth is uint16 millimetres (0 =
no reading), ``32FC1`` is float32 metres (0 or NaN = no reading). Points are expressed in the
camera optical frame: x right, y down, z forward, metres.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from .errors import GeometryError
from .intrinsics import CameraIntrinsics

#: Encodings in millimetres stored as uint16.
MILLIMETRE_ENCODINGS = ('16UC1', 'mono16')
#: Encodings in metres stored as float32.
METRE_ENCODINGS = ('32FC1',)
ACCEPTED_ENCODINGS = MILLIMETRE_ENCODINGS + METRE_ENCODINGS


def _as_2d(image: np.ndarray, what: str) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim != 2:
        raise GeometryError(f'{what} must be a 2D (H, W) array, got shape {image.shape}')
    return image


def check_depth_encoding(depth: np.ndarray, encoding: str) -> None:
    """Raise GeometryError if ``encoding`` is unsupported or does not match ``depth.dtype``."""
    if encoding in MILLIMETRE_ENCODINGS:
        if depth.dtype.kind != 'u' or depth.dtype.itemsize != 2:
            raise GeometryError(
                f"depth encoding '{encoding}' (millimetres) needs a uint16 array, got "
                f'{depth.dtype}')
    elif encoding in METRE_ENCODINGS:
        if depth.dtype.kind != 'f' or depth.dtype.itemsize != 4:
            raise GeometryError(
                f"depth encoding '{encoding}' (metres) needs a float32 array, got {depth.dtype}")
    else:
        raise GeometryError(
            f'unsupported depth encoding {encoding!r}; accepted: '
            f"'16UC1' and 'mono16' (uint16 millimetres), '32FC1' (float32 metres)")


def depth_to_metres(depth: np.ndarray, encoding: str) -> np.ndarray:
    """Decode a depth image to metres.

    Args:
        depth: (H, W) or (H, W, 1) array; uint16 millimetres for ``16UC1``/``mono16``, float32
            metres for ``32FC1`` (either byte order).
        encoding: the ``sensor_msgs/Image.encoding`` string.
    Returns:
        (H, W) float32 metres. Invalid readings stay invalid (0 for millimetre encodings; 0, NaN
        or inf as given for ``32FC1``). For native-endian ``32FC1`` input the result may share
        memory with ``depth``; never write to it.
    Raises:
        GeometryError: unknown encoding, dtype that does not match the encoding, or not 2D.
    """
    depth = _as_2d(depth, 'depth')
    check_depth_encoding(depth, encoding)
    if encoding in MILLIMETRE_ENCODINGS:
        return np.multiply(depth, np.float32(0.001), dtype=np.float32)
    return depth.astype(np.float32, copy=False)


@dataclass
class BackProjection:
    """Result of :func:`backproject`.

    Attributes:
        points: (N, 3) float32 metres, camera optical frame (x right, y down, z forward).
        colors: (N, 3) uint8 RGB of the same pixels, or None when no image was given.
        pixels: (N, 2) int64 ``(v, u)`` = (row, column) of each point in the input image.
        masked_pixels: number of pixels in the mask (valid depth or not).
    """

    points: np.ndarray
    colors: Optional[np.ndarray]
    pixels: np.ndarray
    masked_pixels: int


def valid_depth(z: np.ndarray, min_depth: float, max_depth: float) -> np.ndarray:
    """Bool array, True where ``z`` is finite, non-zero and inside ``[min_depth, max_depth]``."""
    with np.errstate(invalid='ignore'):
        return np.isfinite(z) & (z > 0.0) & (z >= min_depth) & (z <= max_depth)



def check_frame(mask, depth: np.ndarray, intrinsics: CameraIntrinsics, rgb=None):
    """Validate a (mask, depth, rgb) frame against each other and the intrinsics.

    Args:
        mask: (H, W) bool or integer mask.
        depth: (H, W) depth image (any dtype).
        rgb: optional (H, W, 3) image.
    Returns:
        (mask, rgb) as numpy arrays (mask dtype unchanged).
    Raises:
        GeometryError naming the mismatching shapes or the bad mask dtype.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2 or depth.ndim != 2 or mask.shape != depth.shape:
        raise GeometryError(f'mask shape {mask.shape} does not match depth shape {depth.shape}')
    if mask.dtype.kind not in 'bui':
        raise GeometryError(
            f'mask must be bool or integer, got {mask.dtype} (threshold probabilities first)')
    intrinsics.check_image_shape(depth.shape)
    if rgb is not None:
        rgb = np.asarray(rgb)
        if rgb.shape != depth.shape + (3,):
            raise GeometryError(
                f'rgb shape {rgb.shape} does not match depth shape {depth.shape} '
                f'(expected {depth.shape + (3,)})')
    return mask, rgb

def backproject(mask: np.ndarray, depth_m: np.ndarray, intrinsics: CameraIntrinsics,
                rgb: Optional[np.ndarray] = None, min_depth: float = 0.1,
                max_depth: float = 10.0) -> BackProjection:
    """Back-project the valid depth pixels under ``mask`` to 3D points.

    Args:
        mask: (H, W) bool or integer array; non-zero = object pixel.
        depth_m: (H, W) float32 depth in metres (see :func:`depth_to_metres`).
        intrinsics: intrinsics of this (H, W) image.
        rgb: optional (H, W, 3) uint8 image aligned with the depth.
        min_depth, max_depth: accepted depth range in metres; readings that are 0, NaN, inf or
            outside the range are dropped.
    Returns:
        :class:`BackProjection` with N >= 1 points.
    Raises:
        GeometryError: shape mismatches (mask/depth, rgb, intrinsics), empty mask, or no valid
            depth under the mask.
    """
    depth_m = np.asarray(depth_m)
    mask, rgb = check_frame(mask, depth_m, intrinsics, rgb)
    if not (0.0 <= min_depth < max_depth):
        raise GeometryError(f'need 0 <= min_depth < max_depth, got [{min_depth}, {max_depth}]')

    width = depth_m.shape[1]
    flat = np.flatnonzero(mask)
    if flat.size == 0:
        raise GeometryError('mask is empty')
    n_masked = int(flat.size)
    z = depth_m.reshape(-1)[flat].astype(np.float32, copy=False)
    ok = valid_depth(z, min_depth, max_depth)
    n_valid = int(np.count_nonzero(ok))
    if n_valid == 0:
        raise GeometryError(
            f'all {n_masked} masked depth pixels are invalid (0, NaN, inf or outside '
            f'[{min_depth:g}, {max_depth:g}] m)')
    if n_valid != n_masked:
        flat, z = flat[ok], z[ok]
    v, u = np.divmod(flat, width)

    fx, fy = np.float32(intrinsics.fx), np.float32(intrinsics.fy)
    cx, cy = np.float32(intrinsics.cx), np.float32(intrinsics.cy)
    points = np.empty((n_valid, 3), dtype=np.float32)
    points[:, 0] = (u.astype(np.float32) - cx) * z / fx
    points[:, 1] = (v.astype(np.float32) - cy) * z / fy
    points[:, 2] = z
    colors = None if rgb is None else np.take(rgb.reshape(-1, 3), flat, axis=0).astype(
        np.uint8, copy=False)
    pixels = np.stack([v, u], axis=1).astype(np.int64, copy=False)
    return BackProjection(points=points, colors=colors, pixels=pixels, masked_pixels=n_masked)


def smooth_depth(depth_m: np.ndarray, mask: np.ndarray, radius_px: int,
                 tolerance_m: float = 0.01) -> np.ndarray:
    """Edge-aware average of depth over a (2r+1)^2 window, at the pixels of ``mask``.

    Sensor noise moves a back-projected point along its pixel ray; averaging depth in image
    space removes most of it while every point stays on its own ray, so silhouettes keep their
    lateral position (unlike 3D voxel averaging, which pulls extreme points inwards). Only
    valid pixels inside ``mask`` whose depth is within ``tolerance_m`` of the centre pixel
    contribute, so the average never mixes the two sides of an occlusion edge (which would
    create flying pixels), and they contribute in point-symmetric pairs, so a window cut by an
    edge does not bias the pixel towards the inside of the surface.

    Args:
        depth_m: (H, W) float32 metres (invalid = 0, NaN or inf).
        mask: (H, W) bool, the pixels to smooth (and the only ones that contribute).
        radius_px: window radius in pixels (0 = no averaging).
        tolerance_m: largest depth difference to the centre pixel that still contributes, m.
    Returns:
        (H, W) float32 metres, NaN outside ``mask`` and where the pixel has no valid reading.
    """
    depth_m = np.asarray(depth_m, dtype=np.float32)
    mask = np.asarray(mask, dtype=bool)
    if depth_m.shape != mask.shape:
        raise GeometryError(f'mask shape {mask.shape} does not match depth shape {depth_m.shape}')
    r = max(int(radius_px), 0)
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return np.full(depth_m.shape, np.nan, dtype=np.float32)
    cols = np.flatnonzero(mask.any(axis=0))
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    if (rows[-1] + 1 - rows[0]) * (cols[-1] + 1 - cols[0]) < mask.size:
        # Work on the mask's bounding box only: outside it every output is NaN anyway.
        out = np.full(depth_m.shape, np.nan, dtype=np.float32)
        out[box] = smooth_depth(depth_m[box], mask[box], r, tolerance_m)
        return out
    h, w = depth_m.shape
    with np.errstate(invalid='ignore'):
        ok = mask & np.isfinite(depth_m) & (depth_m > 0)
    padded = np.full((h + 2 * r, w + 2 * r), np.nan, dtype=np.float32)
    centre = padded[r:r + h, r:r + w]
    centre[ok] = depth_m[ok]
    if r == 0:
        return centre.copy()
    total = centre.copy()
    pairs = np.zeros((h, w), dtype=np.float32)
    # Neighbours are taken in point-symmetric pairs, both or neither: the mean of a pair is
    # exact for a surface whose depth is linear across the window, so at a silhouette or a
    # dropout the one-sided remainder of the window cannot pull the pixel along its ray.
    offsets = [(dy, dx) for dy in range(0, r + 1) for dx in range(-r, r + 1)
               if dy > 0 or dx > 0]
    with np.errstate(invalid='ignore'):
        for dy, dx in offsets:
            a = padded[r + dy:r + dy + h, r + dx:r + dx + w]
            b = padded[r - dy:r - dy + h, r - dx:r - dx + w]
            # NaN (no reading / outside the mask) compares False.
            pair = np.abs(a - centre) <= tolerance_m
            pair &= np.abs(b - centre) <= tolerance_m
            total += np.where(pair, a + b, np.float32(0.0))
            pairs += pair
    return total / (np.float32(1.0) + np.float32(2.0) * pairs)
