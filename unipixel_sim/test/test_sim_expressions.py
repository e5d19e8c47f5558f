"""Expression generator and resolver on hand-made scene graphs."""
import numpy as np

from unipixel_sim.expressions import (CATEGORIES, COLORS, SIZES, describe, make_expressions,
                                      render_text, resolve)


def _obj(category, color, size, x_cam, dist, volume, world=(0.5, 0.0)):
    return {'category': category, 'color': color, 'size': size, 'volume': volume,
            'center_camera': [x_cam, 0.0, dist], 'center_world': [world[0], world[1], 0.05],
            'visible_pixels': 1000}


SCENE = [
    _obj('cup', 'red', 'small', -0.20, 0.80, 1e-4, (0.5, 0.2)),
    _obj('cup', 'blue', 'large', 0.10, 0.85, 3e-4, (0.52, -0.1)),
    _obj('bottle', 'yellow', 'medium', 0.15, 0.95, 2e-4, (0.62, -0.15)),
    _obj('ball', 'green', 'small', 0.00, 0.70, 3e-5, (0.40, 0.0)),
    _obj('cup', 'red', 'large', 0.18, 1.05, 3e-4, (0.66, -0.18)),
]


def test_vocabularies_exposed():
    assert 'cup' in CATEGORIES and 'red' in COLORS and SIZES[0] == 'small'


def test_attribute_and_absent():
    assert resolve({'type': 'attribute', 'target': describe('cup', 'blue')}, SCENE) == [1]
    assert resolve({'type': 'attribute', 'target': describe('cup', 'red')}, SCENE) == [0, 4]
    assert resolve({'type': 'absent', 'target': describe('bowl', 'red')}, SCENE) == []


def test_position_superlative_and_ties():
    left = {'type': 'position', 'target': describe('cup'), 'position': 'left'}
    assert resolve(left, SCENE) == [0]
    assert render_text(left, 1) == 'the leftmost cup'
    assert resolve({'type': 'position', 'target': describe('cup'), 'position': 'far'},
                   SCENE) == [4]
    # Two equally large cups: "the biggest cup" is ambiguous.
    assert resolve({'type': 'superlative', 'target': describe('cup'),
                    'superlative': 'biggest'}, SCENE) == [1, 4]
    assert resolve({'type': 'superlative', 'target': describe('cup'),
                    'superlative': 'smallest'}, SCENE) == [0]


def test_relations():
    rel = {'type': 'relation', 'target': describe('cup'), 'relation': 'next_to',
           'anchor': describe('bottle', 'yellow')}
    assert resolve(rel, SCENE) == [1, 4]          # both cups are within 15 cm
    rel = dict(rel, relation='behind')
    assert resolve(rel, SCENE) == [4]
    assert render_text(dict(rel, carrier='pick up {}')) == \
        'pick up the cup behind the yellow bottle'
    rel = dict(rel, relation='left_of', target=describe('ball'))
    assert resolve(rel, SCENE) == [3]


def test_make_expressions_checks_every_output():
    rng = np.random.default_rng(0)
    for _ in range(20):
        exprs, _ = make_expressions(SCENE, rng, n=4)
        assert len(exprs) == 4
        for e in exprs:
            expected = [] if e['target'] is None else [e['target']]
            assert resolve(e['structure'], SCENE) == expected
            assert render_text(e['structure'], 0)  # renders
