"""language.concepts reads every expression the simulators generate: the target category and
colour and the constraint kind agree with the expression's structure."""
import numpy as np
import pytest

from unipixel_ros.language.concepts import parse_referring

from unipixel_sim import language as rlang
from unipixel_sim.expressions import render_text

_KIND = {'attribute': 'attribute', 'absent': 'attribute', 'position': 'position',
         'superlative': 'superlative', 'relation': 'relation'}
_POS = {'left': 'left', 'right': 'right', 'near': 'near', 'far': 'far'}
_REL = {'next_to', 'left_of', 'right_of', 'behind', 'in_front_of'}


def _structures():
    out = []
    for kind in ('attribute', 'absent'):
        out.append({'type': kind, 'target': {'category': 'cup', 'color': 'red', 'size': 'small'}})
    for pos in _POS:
        out.append({'type': 'position', 'target': {'category': 'bowl', 'color': None,
                                                   'size': None}, 'position': pos})
    for sup in ('biggest', 'smallest'):
        out.append({'type': 'superlative', 'target': {'category': 'box', 'color': 'blue',
                                                      'size': None}, 'superlative': sup})
    for rel in _REL:
        out.append({'type': 'relation', 'target': {'category': 'can', 'color': None,
                                                   'size': None}, 'relation': rel,
                    'anchor': {'category': 'ball', 'color': 'green', 'size': 'large'}})
    return out


def _check(text, structure):
    r = parse_referring(text)
    assert r.target.category == structure['target']['category'], text
    if structure['target']['color']:
        assert r.target.color is not None, text
    kind = _KIND[structure['type']]
    if kind == 'attribute':
        assert not r.constraints, (text, r.constraints)
        return
    assert len(r.constraints) == 1, (text, r.constraints)
    c = r.constraints[0]
    assert c.kind == kind, (text, c)
    if kind == 'position':
        assert c.value == structure['position'], text
    elif kind == 'superlative':
        assert c.value == structure['superlative'], text
    else:
        assert c.value == structure['relation'], text
        assert c.anchor.category == structure['anchor']['category'], text


@pytest.mark.parametrize('variant', range(6))
def test_default_templates(variant):
    for s in _structures():
        _check(render_text(s, variant), s)
        _check(render_text(dict(s, carrier='could you grab {}?'), variant), s)


@pytest.mark.parametrize('held', [False, True])
def test_randomized_templates(held):
    rng = np.random.default_rng(3)
    for _ in range(40):
        for s in _structures():
            words = rlang._Wording(rng, held)
            if s['type'] == 'relation':
                s = dict(s, anchor=dict(s['anchor'], size=None))
            _check(rlang.render_randomized_text(s, [], None, None, words), s)
