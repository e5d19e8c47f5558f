"""Mask clean-up: erosion, depth discontinuities, support ring, depth smoothing."""
import numpy as np
import pytest
from scipy import ndimage

from unipixel_ros.perception import (GeometryError, clean_mask, dilate_mask, erode_mask,
                                     reject_depth_discontinuities, ring_mask)
from unipixel_ros.perception.depth import smooth_depth


def _square(size=40, side=20, top=10, left=10):
    mask = np.zeros((size, size), dtype=bool)
    mask[top:top + side, left:left + side] = True
    return mask


def test_erode_matches_scipy_octagon():
    rng = np.random.default_rng(0)
    mask = ndimage.binary_opening(rng.random((60, 80)) < 0.7, iterations=2)
    cross = ndimage.generate_binary_structure(2, 1)
    square = ndimage.generate_binary_structure(2, 2)
    expected = ndimage.binary_erosion(ndimage.binary_erosion(
        np.pad(mask, 3, constant_values=True), cross), square)[3:-3, 3:-3]
    np.testing.assert_array_equal(erode_mask(mask, 2), expected)


def test_erode_shrinks_by_the_radius_and_ignores_the_image_border():
    eroded = erode_mask(_square(), 2)
    assert eroded.sum() == 16 * 16
    at_border = np.zeros((20, 20), dtype=bool)
    at_border[:, :10] = True
    out = erode_mask(at_border, 2)
    assert out[:, 0].all() and not out[:, 8:].any()  # only the inner edge moved
    assert erode_mask(_square(), 0).sum() == 400


def test_erode_keeps_a_mask_it_would_empty():
    tiny = _square(side=3)
    np.testing.assert_array_equal(erode_mask(tiny, 2), tiny)
    np.testing.assert_array_equal(erode_mask(np.zeros((5, 5), bool), 2), np.zeros((5, 5), bool))


def test_dilate_and_ring():
    mask = _square(size=60, side=10, top=25, left=25)
    assert dilate_mask(mask, 3).sum() == 16 * 16
    ring = ring_mask(mask, 5, 15)
    assert ring.sum() == 40 * 40 - 20 * 20
    assert not (ring & dilate_mask(mask, 5)).any()
    with pytest.raises(GeometryError, match='inner_px < outer_px'):
        ring_mask(mask, 5, 5)
    # Clipped at the image border.
    assert ring_mask(_square(size=30, side=4, top=0, left=0), 2, 6).sum() == 10 * 10 - 6 * 6


def test_discontinuities_remove_both_sides_of_a_mixed_pixel_edge():
    depth = np.full((20, 20), 1.0, dtype=np.float32)
    depth[:, 10:] = 1.5                      # background to the right
    depth[5:15, 10] = 1.25                   # a column of flying pixels
    mask = np.ones((20, 20), dtype=bool)
    out = reject_depth_discontinuities(mask, depth, 0.02)
    assert not out[5:15, 10].any()           # the flying pixels go
    assert not out[5:15, 11].any()           # the background behind them goes
    # The foreground pixel beside a mixed one is still a clean surface point: kept.
    assert out[5:15, 9].all() and out[5:15, 8].all() and out[5:15, 12].all()
    # Where the edge is clean the near side is a real surface edge and stays, the far one goes.
    assert out[:5, 9].all() and not out[:5, 10].any()
    # Without that refinement both sides of every step go.
    strict = reject_depth_discontinuities(mask, depth, 0.02, keep_clean_edges=False)
    assert not strict[:, 9].any() and not strict[:, 10].any()


def test_discontinuities_ignore_dropouts_and_small_steps():
    rng = np.random.default_rng(0)
    depth = (1.0 + rng.normal(0.0, 0.002, (30, 30))).astype(np.float32)
    depth[rng.random((30, 30)) < 0.1] = 0.0
    depth[3, 3] = np.nan
    mask = np.ones((30, 30), dtype=bool)
    np.testing.assert_array_equal(reject_depth_discontinuities(mask, depth, 0.02), mask)
    with pytest.raises(GeometryError, match='mask shape'):
        reject_depth_discontinuities(mask, depth[:10], 0.02)


def test_clean_mask_drops_the_bleed_behind_an_object():
    depth = np.full((40, 40), 2.0, dtype=np.float32)   # far table
    object_mask = _square(side=16, top=12, left=12)
    depth[object_mask] = 1.0
    bled = dilate_mask(object_mask, 3)
    out = clean_mask(bled, depth, erode_px=2, max_jump_m=0.02)
    assert out[object_mask].all()                       # the object's edge is kept
    # No background pixel beside the object survives; background pixels that touch no step
    # (diagonal corners, or a bleed wider than the erosion) are left to the support-plane stage.
    beside = ndimage.binary_dilation(object_mask) & ~object_mask
    assert not (out & beside).any()
    assert (out & ~object_mask).sum() <= 4
    wide = clean_mask(dilate_mask(object_mask, 5), depth, erode_px=2, max_jump_m=0.02)
    assert wide[object_mask].all() and not (wide & beside).any()


def test_smooth_depth_is_edge_aware_and_unbiased_on_planes():
    v, u = np.mgrid[0:30, 0:30]
    plane = (1.0 + 0.01 * u + 0.004 * v).astype(np.float32)
    mask = np.zeros((30, 30), dtype=bool)
    mask[5:25, 5:20] = True
    out = smooth_depth(plane, mask, 2, tolerance_m=0.05)
    # A linear surface is reproduced exactly, also at the mask border (symmetric pairs).
    np.testing.assert_allclose(out[mask], plane[mask], atol=1e-5)
    assert np.isnan(out[~mask]).all()
    # Noise is reduced; a step is never averaged across.
    rng = np.random.default_rng(0)
    noisy = (1.0 + rng.normal(0.0, 0.002, (30, 30))).astype(np.float32)
    noisy[:, 15:] += 0.5
    sm = smooth_depth(noisy, np.ones((30, 30), bool), 2, tolerance_m=0.01)
    assert np.std(sm[:, 3:12] - 1.0) < 0.5 * np.std(noisy[:, 3:12] - 1.0)
    assert np.all(sm[:, 15:] > 1.45) and np.all(sm[:, :15] < 1.05)
    # Dropouts stay dropouts.
    noisy[10, 10] = 0.0
    assert np.isnan(smooth_depth(noisy, np.ones((30, 30), bool), 1)[10, 10])
