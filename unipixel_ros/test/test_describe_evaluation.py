"""Describe evaluation helpers: where a person clicks, and the calibration table."""
import numpy as np
import pytest

from unipixel_ros.inference.predictor import describe_confidence
from unipixel_ros.training.describe_evaluation import calibration, click_pixel


def test_the_click_lands_in_the_middle_of_the_object():
    mask = np.zeros((40, 60), bool)
    mask[10:30, 5:45] = True              # a 20 x 40 box: the centre row, any column inside
    u, v = click_pixel(mask)
    assert mask[v, u] and v in (19, 20) and 14 <= u <= 35
    ring = np.zeros((41, 41), bool)       # a C shape: the centroid is outside the object
    yy, xx = np.mgrid[:41, :41]
    r = np.hypot(yy - 20, xx - 20)
    ring[(r > 10) & (r < 18) & (xx < 30)] = True
    u, v = click_pixel(ring)
    assert ring[v, u]


def test_calibration_bins_accuracy_and_ece():
    conf = np.array([0.1, 0.1, 0.5, 0.5, 0.97, 0.97, 0.97, 0.97, 1.0, 1.0])
    right = np.array([0, 0, 1, 0, 1, 1, 1, 0, 1, 1], bool)
    cal = calibration(conf, right)
    counts = {(b['low'], b['high']): b['count'] for b in cal['bins']}
    assert counts[(0.0, 0.2)] == 2 and counts[(0.4, 0.6)] == 2 and counts[(0.95, 1.0)] == 6
    top = next(b for b in cal['bins'] if b['low'] == 0.95)
    assert top['accuracy'] == pytest.approx(100 * 5 / 6, abs=0.01)
    # |0 - 0.1| * 2 + |0.5 - 0.5| * 2 + |5/6 - 0.98| * 6, over 10
    assert cal['ece'] == pytest.approx(100 * (0.2 + 6 * abs(5 / 6 - 0.98)) / 10, abs=0.01)
    perfect = calibration(np.array([1.0, 1.0]), np.array([True, True]))
    assert perfect['ece'] == 0.0


def test_describe_confidence_is_the_product_of_category_and_colour():
    assert describe_confidence({'category': ('cup', 0.9), 'color': ('red', 0.5),
                                'size': ('small', 0.1)}) == pytest.approx(0.45)
    assert describe_confidence({}) == 0.0
