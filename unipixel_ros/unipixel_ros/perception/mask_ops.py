"""Mask clean-up before back-projection: erosion, depth-discontinuity rejection, support ring.

All functions take (H, W) masks (bool or integer, non-zero = object) and return new (H, W)
bool arrays; inputs are never modified. They work on the mask's bounding box only, so their
cost scales with the object, not with the image.
"""
from __future__ import annotations

from typing import Optional, Tuple

import numpy as np
from scipy import ndimage

from .errors import GeometryError


def _as_bool_mask(mask: np.ndarray) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise GeometryError(f'mask must be a 2D (H, W) array, got shape {mask.shape}')
    if mask.dtype.kind not in 'bui':
        raise GeometryError(
            f'mask must be bool or integer, got {mask.dtype} (threshold probabilities first)')
    return mask if mask.dtype == bool else mask != 0


def mask_bbox(mask: np.ndarray, margin: int = 0) -> Optional[Tuple[slice, slice]]:
    """(rows, cols) slices of the bounding box of ``mask`` grown by ``margin`` px (clipped to
    the image), or None for an empty mask."""
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    h, w = mask.shape
    return (slice(max(rows[0] - margin, 0), min(rows[-1] + 1 + margin, h)),
            slice(max(cols[0] - margin, 0), min(cols[-1] + 1 + margin, w)))


def _erode_step(mask: np.ndarray, square: bool) -> np.ndarray:
    """One 3x3 erosion step (cross or square), outside the array counted as object."""
    p = np.pad(mask, 1, constant_values=True)
    if square:
        rows = p[:, :-2] & p[:, 1:-1] & p[:, 2:]
        return rows[:-2] & rows[1:-1] & rows[2:]
    return p[1:-1, 1:-1] & p[:-2, 1:-1] & p[2:, 1:-1] & p[1:-1, :-2] & p[1:-1, 2:]


def erode_mask(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Erode ``mask`` by ``pixels`` px with an octagonal (near-disk) structuring element.

    Segmentation masks bleed a few pixels over object borders, where depth belongs to the
    background; erosion trims that band. The image border is not treated as an object border.
    If the erosion would remove the whole mask (tiny or thin objects), the original mask is
    returned unchanged.

    Args:
        mask: (H, W) bool/integer mask.
        pixels: erosion radius in pixels (0 = no-op).
    Returns:
        (H, W) bool mask.
    """
    mask = _as_bool_mask(mask)
    out = mask.copy()
    if pixels <= 0:
        return out
    box = mask_bbox(mask, margin=1)
    if box is None:
        return out
    eroded = mask[box]
    # Alternating cross and square steps approximate a disk (an octagon); plain slicing is
    # ~10x faster than scipy.ndimage.binary_erosion here.
    for i in range(int(pixels)):
        eroded = _erode_step(eroded, square=i % 2 == 1)
    if not eroded.any():
        return out
    out[box] = eroded
    return out


def _square_dilate_crop(mask: np.ndarray, pixels: int):
    """(bbox slices, dilated crop) for a square dilation by ``pixels`` (separable max)."""
    box = mask_bbox(mask, margin=pixels)
    if box is None:
        return None, None
    crop = mask[box].view(np.uint8)
    size = 2 * int(pixels) + 1
    grown = ndimage.maximum_filter1d(crop, size, axis=0, mode='constant')
    grown = ndimage.maximum_filter1d(grown, size, axis=1, mode='constant')
    return box, grown.view(bool)


def dilate_mask(mask: np.ndarray, pixels: int) -> np.ndarray:
    """Dilate ``mask`` by ``pixels`` px (square structuring element). Returns (H, W) bool."""
    mask = _as_bool_mask(mask)
    out = mask.copy()
    if pixels <= 0:
        return out
    box, grown = _square_dilate_crop(mask, int(pixels))
    if box is not None:
        out[box] = grown
    return out


def ring_mask(mask: np.ndarray, inner_px: int, outer_px: int) -> np.ndarray:
    """Ring of pixels around ``mask``: dilated by ``outer_px`` minus dilated by ``inner_px``.

    Used to sample the support surface next to the object: the inner gap skips the pixels the
    mask may have leaked over, the outer radius bounds how far from the object the support
    plane is measured. Dilations are square (chessboard distance).

    Args:
        mask: (H, W) bool/integer mask.
        inner_px, outer_px: ring radii in pixels, ``0 <= inner_px < outer_px``.
    Returns:
        (H, W) bool mask, True where ``inner_px < distance_to_mask <= outer_px``.
    """
    if not 0 <= inner_px < outer_px:
        raise GeometryError(f'ring needs 0 <= inner_px < outer_px, got {inner_px}, {outer_px}')
    mask = _as_bool_mask(mask)
    out = np.zeros(mask.shape, dtype=bool)
    box, outer = _square_dilate_crop(mask, int(outer_px))
    if box is None:
        return out
    inner = mask[box] if inner_px == 0 else dilate_mask(mask[box], int(inner_px))
    out[box] = outer & ~inner
    return out


def _step_pixels(d: np.ndarray, jump: float, keep_clean_edges: bool) -> np.ndarray:
    """Bool (H, W): pixels next to a depth step > ``jump`` (NaN = no reading)."""
    bad = np.zeros(d.shape, dtype=bool)
    tol = jump / 4.0
    with np.errstate(invalid='ignore'):
        for axis in (0, 1):
            a = d if axis == 0 else d.T
            b = bad if axis == 0 else bad.T  # a view: writes land in ``bad``
            diff = a[1:] - a[:-1]  # row i+1 minus row i
            step = np.abs(diff) > jump
            lo_bad = step.copy()   # the pixel before the step (row i)
            hi_bad = step.copy()   # the pixel after the step (row i+1)
            if keep_clean_edges:
                # A pixel on the near side of a step whose other neighbour continues its
                # surface is a clean foreground edge, not a mixed pixel.
                near_lo = step & (diff > 0)  # row i nearer than row i+1
                near_hi = step & (diff < 0)
                cont_lo = np.zeros_like(step)
                cont_lo[1:] = np.abs(a[1:-1] - a[:-2]) <= tol
                cont_hi = np.zeros_like(step)
                cont_hi[:-1] = np.abs(a[2:] - a[1:-1]) <= tol
                lo_bad &= ~(near_lo & cont_lo)
                hi_bad &= ~(near_hi & cont_hi)
            b[:-1] |= lo_bad
            b[1:] |= hi_bad
    return bad


def reject_depth_discontinuities(mask: np.ndarray, depth_m: np.ndarray,
                                 max_jump_m: float = 0.02,
                                 keep_clean_edges: bool = True) -> np.ndarray:
    """Drop mask pixels whose depth differs from any 4-neighbour by more than ``max_jump_m``.

    Those are the pixels on both sides of an occlusion edge, including "flying" pixels that
    mix foreground and background depth. Neighbours without a valid reading (0, NaN, inf) are
    ignored, so random dropouts inside the object do not eat holes into the mask. If every
    pixel would be rejected, the input mask is returned unchanged.

    With ``keep_clean_edges`` the nearer pixel of a step is kept when its neighbour on the
    opposite side lies within ``max_jump_m / 4`` of it: that is a foreground surface running
    up to a clean occlusion edge, and dropping it would shrink every silhouette by a pixel. A
    mixed pixel between foreground and background fails that test (it is far from the
    foreground pixel beside it) and is still removed.

    Args:
        mask: (H, W) bool/integer mask.
        depth_m: (H, W) float depth in metres.
        max_jump_m: largest accepted depth step between 4-neighbours, metres (> 0).
        keep_clean_edges: keep the near side of clean occlusion edges (see above).
    Returns:
        (H, W) bool mask.
    """
    mask = _as_bool_mask(mask)
    depth_m = np.asarray(depth_m)
    if depth_m.shape != mask.shape:
        raise GeometryError(
            f'mask shape {mask.shape} does not match depth shape {depth_m.shape}')
    if not max_jump_m > 0:
        raise GeometryError(f'max_jump_m must be > 0, got {max_jump_m}')
    out = mask.copy()
    box = mask_bbox(mask, margin=1)
    if box is None:
        return out
    m = mask[box]
    d = depth_m[box].astype(np.float32)
    d[~np.isfinite(d) | (d <= 0)] = np.nan
    bad = _step_pixels(d, max_jump_m, keep_clean_edges)
    kept = m & ~bad
    if kept.any():
        out[box] = kept
    return out


def clean_mask(mask: np.ndarray, depth_m: np.ndarray, erode_px: int = 2,
               max_jump_m: float = 0.02) -> np.ndarray:
    """:func:`erode_mask` then :func:`reject_depth_discontinuities`. Returns (H, W) bool.

    ``max_jump_m <= 0`` disables the discontinuity step.
    """
    out = erode_mask(mask, erode_px)
    if max_jump_m > 0:
        out = reject_depth_discontinuities(out, depth_m, max_jump_m)
    return out
