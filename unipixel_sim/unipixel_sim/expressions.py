"""Referring expressions generated from a scene graph, and a resolver that checks them.

An expression is a dict::

    {'text': 'pick up the red cup', 'type': 'command', 'inner_type': 'attribute',
     'target': 3,               # object index, or None when nothing in the scene matches
     'structure': {...}}        # what the text says, for the resolver (below)

``structure`` keys: ``type`` (the inner type: attribute | position | relation | superlative |
absent), ``target`` (a description ``{'category', 'color', 'size'}``, each a vocabulary name or
None = unspecified), and per type ``position`` (left | right | near | far), ``superlative``
(biggest | smallest), ``relation`` (next_to | left_of | right_of | behind | in_front_of) with
``anchor`` (a description), ``carrier`` (the command template, commands only).

Geometry is judged in the CAMERA view: left/right by the x of the object centre in the camera
optical frame, near/far/behind/in front by its distance from the camera. The scene graph is the
list of per-object ground-truth dicts (``unipixel_sim.render.ObjectTruth.to_dict()``, as saved
in ``meta.json``).
"""
from __future__ import annotations

import math
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from unipixel_ros.dataset.vocab import CATEGORIES, COLORS, EXPRESSION_TYPES, SIZES

__all__ = ['CATEGORIES', 'COLORS', 'SIZES', 'EXPRESSION_TYPES', 'COMMAND_CARRIERS',
           'describe', 'make_expressions', 'render_text', 'resolve']

#: Command templates; ``{}`` is replaced by the inner expression.
COMMAND_CARRIERS = ('pick up {}', 'could you grab {}?', 'hand me {}', 'please get {}',
                    'grab {}', 'can you pick up {}?', 'bring me {}', 'I need {}')
#: Share of each type that :func:`make_expressions` aims for (absent also arrives inside
#: commands, see ``_COMMAND_ABSENT``).
TYPE_WEIGHTS = {'attribute': 0.20, 'position': 0.18, 'relation': 0.17, 'superlative': 0.13,
                'command': 0.17, 'absent': 0.15}
_COMMAND_ABSENT = 0.2

# Thresholds (metres, or a volume ratio). A value between the "possible" and the "clear"
# threshold makes an object a possible referent, so a near-tie makes the expression ambiguous.
_EXTREME_MARGIN = {'left': 0.03, 'right': 0.03, 'near': 0.04, 'far': 0.04}
_SIZE_RATIO = 1.3
_NEXT_TO = (0.15, 0.20)          # centre distance: clear <= 0.15, possible <= 0.20
_LATERAL = (0.05, 0.02)          # camera-x offset for left_of / right_of: clear, possible
_DEPTH = (0.06, 0.03)            # distance offset for behind / in_front_of: clear, possible
_DEPTH_LATERAL = (0.15, 0.20)    # |camera-x offset| allowed for behind / in_front_of

_POSITION_TEXT = {
    'left': ('the {} on the left', 'the leftmost {}', 'the {} furthest to the left'),
    'right': ('the {} on the right', 'the rightmost {}', 'the {} furthest to the right'),
    'near': ('the {} closest to you', 'the nearest {}', 'the {} closest to the camera'),
    'far': ('the farthest {}', 'the {} farthest from you', 'the {} at the back'),
}
_SUPERLATIVE_TEXT = {'biggest': ('the biggest {}', 'the largest {}'),
                     'smallest': ('the smallest {}', 'the tiniest {}')}
_RELATION_TEXT = {'next_to': ('next to', 'beside'), 'left_of': ('left of', 'to the left of'),
                  'right_of': ('right of', 'to the right of'), 'behind': ('behind',),
                  'in_front_of': ('in front of',)}
_SIZE_WORD = {'small': 'small', 'medium': 'medium-sized', 'large': 'large'}

Description = Dict[str, Optional[str]]


def describe(category: Optional[str] = None, color: Optional[str] = None,
             size: Optional[str] = None) -> Description:
    """A description dict; None fields are unspecified."""
    return {'category': category, 'color': color, 'size': size}


def _noun_phrase(desc: Description) -> str:
    words = [_SIZE_WORD[desc['size']]] if desc.get('size') else []
    if desc.get('color'):
        words.append(desc['color'])
    words.append(desc.get('category') or 'object')
    return ' '.join(words)


def render_text(structure: dict, variant: int = 0) -> str:
    """English text of an expression structure; ``variant`` picks among synonymous templates."""
    kind = structure['type']
    noun = _noun_phrase(structure['target'])
    if kind in ('attribute', 'absent'):
        text = f'the {noun}'
    elif kind == 'position':
        options = _POSITION_TEXT[structure['position']]
        text = options[variant % len(options)].format(noun)
    elif kind == 'superlative':
        options = _SUPERLATIVE_TEXT[structure['superlative']]
        text = options[variant % len(options)].format(noun)
    elif kind == 'relation':
        options = _RELATION_TEXT[structure['relation']]
        text = (f'the {noun} {options[variant % len(options)]} '
                f'the {_noun_phrase(structure["anchor"])}')
    else:
        raise ValueError(f'unknown expression type {kind!r}')
    carrier = structure.get('carrier')
    return carrier.format(text) if carrier else text


def _objects(scene) -> Sequence[dict]:
    return scene['objects'] if isinstance(scene, dict) else scene


def _matches(obj: dict, desc: Description) -> bool:
    """Whether ``obj`` may be what ``desc`` describes. Objects of randomized scenes may carry
    ``color_terms`` (every colour word that may describe them, e.g. both colours of a two-tone
    pattern) and ``size_relative`` (the size word that is clearly true in the scene, or None);
    objects without them match on ``color`` and ``size``."""
    if desc.get('category') is not None and obj['category'] != desc['category']:
        return False
    color = desc.get('color')
    if color is not None and color != obj['color'] and color not in obj.get('color_terms', ()):
        return False
    size = desc.get('size')
    return size is None or obj.get('size_relative', obj['size']) == size


def _distance(obj: dict) -> float:
    return float(np.linalg.norm(obj['center_camera']))


def _relation_score(rel: str, obj: dict, anchor: dict) -> Tuple[bool, bool]:
    """(clear, possible) for ``obj <rel> anchor``."""
    dx = float(obj['center_camera'][0] - anchor['center_camera'][0])
    if rel == 'next_to':
        d = math.dist(obj['center_world'][:2], anchor['center_world'][:2])
        return d <= _NEXT_TO[0], d <= _NEXT_TO[1]
    if rel in ('left_of', 'right_of'):
        offset = -dx if rel == 'left_of' else dx
        return offset >= _LATERAL[0], offset >= _LATERAL[1]
    if rel in ('behind', 'in_front_of'):
        dd = _distance(obj) - _distance(anchor)
        offset = dd if rel == 'behind' else -dd
        return (offset >= _DEPTH[0] and abs(dx) <= _DEPTH_LATERAL[0],
                offset >= _DEPTH[1] and abs(dx) <= _DEPTH_LATERAL[1])
    raise ValueError(f'unknown relation {rel!r}')


def resolve(structure: dict, scene) -> List[int]:
    """Indices of every object the expression may refer to (sorted).

    Args:
        structure: an expression ``structure`` (see the module docstring).
        scene: the list of object ground-truth dicts, or a dict with key ``objects``.
    Returns:
        Exactly one index for a well-posed positive expression; several when it is ambiguous
        (near-ties within the margins count as ambiguous); none when nothing matches.
    """
    objects = _objects(scene)
    kind = structure['type']
    cands = [i for i, o in enumerate(objects) if _matches(o, structure['target'])]
    if kind in ('attribute', 'absent') or not cands:
        return cands
    if kind == 'position':
        where = structure['position']
        key = {'left': lambda o: o['center_camera'][0], 'right': lambda o: -o['center_camera'][0],
               'near': _distance, 'far': lambda o: -_distance(o)}[where]
        best = min(key(objects[i]) for i in cands)
        return [i for i in cands if key(objects[i]) <= best + _EXTREME_MARGIN[where]]
    if kind == 'superlative':
        volumes = {i: float(objects[i]['volume']) for i in cands}
        if structure['superlative'] == 'biggest':
            top = max(volumes.values())
            return [i for i in cands if volumes[i] * _SIZE_RATIO >= top]
        low = min(volumes.values())
        return [i for i in cands if volumes[i] <= low * _SIZE_RATIO]
    if kind == 'relation':
        anchors = [i for i, o in enumerate(objects) if _matches(o, structure['anchor'])]
        # With several possible anchors, anything related to any of them is a possible referent.
        return sorted({i for a in anchors for i in cands if i != a and
                       _relation_score(structure['relation'], objects[i], objects[a])[1]})
    raise ValueError(f'unknown expression type {kind!r}')


def _unique_description(objects: Sequence[dict], index: int,
                        rng: np.random.Generator) -> Optional[Description]:
    """The shortest attribute description that singles out ``objects[index]`` (None if none)."""
    obj = objects[index]
    forms = [('category',), ('color', 'category'), ('size', 'category'),
             ('size', 'color', 'category')]
    if rng.random() < 0.5:
        forms[1], forms[2] = forms[2], forms[1]
    for form in forms:
        desc = describe(**{k: obj[k] for k in form})
        if [i for i, o in enumerate(objects) if _matches(o, desc)] == [index]:
            return desc
    return None


class _Generator:
    """Proposes expressions of one type; every proposal is checked with :func:`resolve`."""

    def __init__(self, objects: Sequence[dict], rng: np.random.Generator,
                 visible: Sequence[int]) -> None:
        self.objects, self.rng, self.visible = objects, rng, list(visible)
        self.dropped_ambiguous = 0

    def _pick(self, pool: Sequence[int]) -> int:
        return int(pool[int(self.rng.integers(len(pool)))])

    def _choice(self, options: Sequence):
        return options[int(self.rng.integers(len(options)))]

    def _accept(self, structure: dict, target: int) -> Optional[dict]:
        if resolve(structure, self.objects) != [target]:
            self.dropped_ambiguous += 1
            return None
        return structure

    def _accept_comparison(self, structure: dict, target: int) -> Optional[Tuple[dict, int]]:
        """Position and superlative phrases must compare at least two matching objects."""
        if sum(_matches(o, structure['target']) for o in self.objects) < 2:
            return None
        return (structure, target) if self._accept(structure, target) else None

    def _target_desc(self, obj: dict, with_color: float) -> Description:
        return describe(obj['category'], obj['color'] if self.rng.random() < with_color else None)

    def attribute(self) -> Optional[Tuple[dict, int]]:
        target = self._pick(self.visible)
        obj = self.objects[target]
        form = self._choice([('category',), ('color', 'category'), ('size', 'category'),
                             ('size', 'color', 'category'), ('color',)])
        structure = {'type': 'attribute', 'target': describe(**{k: obj[k] for k in form})}
        return (structure, target) if self._accept(structure, target) else None

    def _same_category_pool(self) -> List[int]:
        counts = {}
        for o in self.objects:
            counts[o['category']] = counts.get(o['category'], 0) + 1
        return [i for i in self.visible if counts[self.objects[i]['category']] >= 2]

    def position(self) -> Optional[Tuple[dict, int]]:
        pool = self._same_category_pool()
        if not pool:
            return None
        target = self._pick(pool)
        structure = {'type': 'position', 'target': self._target_desc(self.objects[target], 0.3),
                     'position': self._choice(('left', 'right', 'near', 'far'))}
        return self._accept_comparison(structure, target)

    def superlative(self) -> Optional[Tuple[dict, int]]:
        pool = self._same_category_pool()
        if not pool:
            return None
        target = self._pick(pool)
        structure = {'type': 'superlative',
                     'target': self._target_desc(self.objects[target], 0.2),
                     'superlative': self._choice(('biggest', 'smallest'))}
        return self._accept_comparison(structure, target)

    def relation(self) -> Optional[Tuple[dict, int]]:
        if len(self.visible) < 2:
            return None
        target = self._pick(self.visible)
        anchor = self._pick([i for i in self.visible if i != target])
        anchor_desc = _unique_description(self.objects, anchor, self.rng)
        if anchor_desc is None:
            return None
        clear = [rel for rel in _RELATION_TEXT if
                 _relation_score(rel, self.objects[target], self.objects[anchor])[0]]
        if not clear:
            return None
        structure = {'type': 'relation', 'target': self._target_desc(self.objects[target], 0.3),
                     'relation': self._choice(clear), 'anchor': anchor_desc}
        return (structure, target) if self._accept(structure, target) else None

    def absent(self) -> Optional[Tuple[dict, None]]:
        categories = sorted({o['category'] for o in self.objects})
        colors = sorted({o['color'] for o in self.objects})
        roll = self.rng.random()
        if roll < 0.5:      # a present category in a colour it does not have here
            desc = describe(self._choice(categories), self._choice(COLORS))
        elif roll < 0.75:   # a present colour on a category that is not here
            desc = describe(self._choice(CATEGORIES), self._choice(colors))
        else:
            desc = describe(self._choice(CATEGORIES), self._choice(COLORS),
                            self._choice(SIZES) if self.rng.random() < 0.3 else None)
        structure = {'type': 'absent', 'target': desc}
        return (structure, None) if not resolve(structure, self.objects) else None


def make_expressions(objects: Sequence[dict], rng: np.random.Generator, n: int = 4,
                     min_visible_pixels: int = 150, max_attempts: int = 8
                     ) -> Tuple[List[dict], int]:
    """Up to ``n`` distinct expressions with a balanced mix of types (see :data:`TYPE_WEIGHTS`).

    Args:
        objects: scene graph, the per-object ground-truth dicts of the rendered frame.
        rng: source of randomness (seeded per scene for determinism).
        n: number of expressions wanted.
        min_visible_pixels: objects with fewer mask pixels are never targets nor anchors
            (they still count when checking ambiguity and absence).
        max_attempts: proposals per chosen type before another type is tried.
    Returns:
        (expressions, dropped): the expression dicts (module docstring), and how many
        proposals the resolver rejected as ambiguous.
    """
    visible = [i for i, o in enumerate(objects) if o['visible_pixels'] >= min_visible_pixels]
    gen = _Generator(objects, rng, visible)
    out: List[dict] = []
    texts = set()
    types = list(TYPE_WEIGHTS)
    weights = np.array([TYPE_WEIGHTS[t] for t in types])
    positive = [t for t in types if t not in ('command', 'absent')]
    positive_weights = np.array([TYPE_WEIGHTS[t] for t in positive])
    for _slot in range(4 * n):
        if len(out) >= n or not gen.visible:
            break
        kind = types[int(rng.choice(len(types), p=weights / weights.sum()))]
        inner = kind
        if kind == 'command':
            inner = ('absent' if rng.random() < _COMMAND_ABSENT else positive[int(
                rng.choice(len(positive), p=positive_weights / positive_weights.sum()))])
        for _attempt in range(max_attempts):
            proposal = getattr(gen, inner)()
            if proposal is None:
                continue
            structure, target = proposal
            if kind == 'command':
                structure['carrier'] = gen._choice(COMMAND_CARRIERS)
            text = render_text(structure, variant=int(rng.integers(6)))
            if text in texts:
                continue
            texts.add(text)
            out.append({'text': text, 'type': kind, 'inner_type': inner, 'target': target,
                        'structure': structure})
            break
    return out, gen.dropped_ambiguous
