"""Referring expressions for randomized scenes: more wordings, and wordings held out of training.

Structures are the same as in :mod:`unipixel_sim.expressions` and every positive expression is
proven to pick exactly one object with :func:`unipixel_sim.expressions.resolve`. What differs is
the text: category and colour synonyms (extended colour names such as "navy" are said only of an
object whose own colour has that name), size words only for an object that is clearly the
smaller / larger of its category in the scene (``size_relative``), generic nouns for
distractors, and many relation, superlative, position and carrier wordings.

:data:`TRAIN` wordings are used in every scene; :data:`HELD_OUT` wordings only in shifted
scenes (with probability :data:`HELD_OUT_RATE` per expression). :func:`held_out_phrases`
lists every held-out word or phrase so that a test can show that training text never holds one.
"""
from __future__ import annotations

import re
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from unipixel_ros.dataset.vocab import CATEGORIES, COLORS

from .expressions import TYPE_WEIGHTS, _COMMAND_ABSENT, _Generator, _matches, describe, resolve
from .randomized import HELD_OUT as HELD_OUT_FACTORS

#: Share of a shifted scene's expressions that use held-out wordings.
HELD_OUT_RATE = 0.6

TRAIN = {
    'carrier': ('pick up {}', 'could you grab {}?', 'hand me {}', 'please get {}', 'grab {}',
                'can you pick up {}?', 'bring me {}', 'I need {}', 'give me {}', 'fetch {}',
                'pass me {}', 'get me {}', 'I want {}', 'take {}', 'could you hand me {}?'),
    'attribute': ('the {}', 'that {}'),
    'left': ('the {} on the left', 'the leftmost {}', 'the {} furthest to the left',
             'the left {}'),
    'right': ('the {} on the right', 'the rightmost {}', 'the {} furthest to the right',
              'the right {}'),
    'near': ('the {} closest to you', 'the nearest {}', 'the {} closest to the camera',
             'the {} in front'),
    'far': ('the farthest {}', 'the {} farthest from you', 'the {} at the back',
            'the {} furthest away'),
    'biggest': ('the biggest {}', 'the largest {}'),
    'smallest': ('the smallest {}', 'the tiniest {}'),
    'next_to': ('next to', 'beside', 'near'),
    'left_of': ('left of', 'to the left of'),
    'right_of': ('right of', 'to the right of'),
    'behind': ('behind',),
    'in_front_of': ('in front of',),
    'size_small': ('small', 'little'),
    'size_large': ('large', 'big'),
}
HELD = {
    'carrier': ('would you mind passing {}?', "I'd like {}", 'go get {}', 'retrieve {}',
                'let me have {}'),
    'left': ('the {} that is most to the left',),
    'right': ('the {} that is most to the right',),
    'near': ('the most nearby {}',),
    'far': ('the most distant {}',),
    'biggest': ('the {} that is the biggest', 'the bulkiest {}'),
    'smallest': ('the littlest {}', 'the {} that is the smallest'),
    'next_to': ('alongside',),
    'left_of': ('on the left side of',),
    'right_of': ('on the right side of',),
    'behind': ('in back of',),
    'in_front_of': ('ahead of',),
    'size_small': ('tiny',),
    'size_large': ('huge',),
}
#: Nouns per category: (training nouns, held-out nouns); variant-specific nouns below.
NOUNS: Dict[str, Tuple[Tuple[str, ...], Tuple[str, ...]]] = {
    'cup': (('cup',), ()), 'bowl': (('bowl',), ('basin',)), 'box': (('box',), ('carton',)),
    'ball': (('ball',), ('sphere',)), 'bottle': (('bottle',), ('flask',)),
    'can': (('can',), ('tin',)), 'block': (('block',), ('brick',)),
    None: (('object', 'thing'), ('item',)),
}
#: Nouns said only of one shape variant: {(category, variant): (training, held-out)}.
VARIANT_NOUNS = {('cup', 'mug'): (('mug',), ()), ('cup', 'plain'): ((), ('tumbler',)),
                 ('block', 'cube'): (('cube',), ())}


def held_out_phrases() -> List[str]:
    """Every held-out word or phrase (lower case) that training text never contains: held-out
    nouns and colour names, and the fixed wording of each held-out template."""
    phrases = set(HELD_OUT_FACTORS['color_extended'])
    phrases |= {n for _, held in NOUNS.values() for n in held}
    phrases |= {n for _, held in VARIANT_NOUNS.values() for n in held}
    for templates in HELD.values():
        for template in templates:
            for part in template.lower().replace('?', '').split('{}'):
                part = part.strip()
                if part and part != 'the':
                    phrases.add(part)
    return sorted(p for p in phrases if p)


def contains_phrase(text: str, phrase: str) -> bool:
    """Whole-word, case-insensitive occurrence of ``phrase`` in ``text``."""
    return re.search(r'(?<![a-z])' + re.escape(phrase) + r'(?![a-z])', text.lower()) is not None


def _nameable_color(obj: dict) -> bool:
    return obj.get('pattern', 'solid') in ('solid', 'speckle')


def _distractor(obj: dict) -> bool:
    return bool(obj.get('distractor')) or obj['category'] not in CATEGORIES


class RandomizedGenerator(_Generator):
    """Expression proposals for randomized scenes (see the module docstring)."""

    def _describe(self, obj: dict, form: Sequence[str]) -> Optional[dict]:
        desc = describe()
        for key in form:
            if key == 'category':
                desc['category'] = None if _distractor(obj) else obj['category']
            elif key == 'color':
                if not _nameable_color(obj):
                    return None
                desc['color'] = obj['color']
            elif key == 'size':
                if obj.get('size_relative') is None:
                    return None
                desc['size'] = obj['size_relative']
        return desc

    def _unique(self, index: int) -> Optional[dict]:
        forms = [('category',), ('color', 'category'), ('size', 'category'),
                 ('size', 'color', 'category')]
        if self.rng.random() < 0.5:
            forms[1], forms[2] = forms[2], forms[1]
        for form in forms:
            desc = self._describe(self.objects[index], form)
            if desc is not None and resolve({'type': 'attribute', 'target': desc},
                                             self.objects) == [index]:
                return desc
        return None

    def _target_desc(self, obj: dict, with_color: float) -> dict:
        form = ('color', 'category') if self.rng.random() < with_color else ('category',)
        return self._describe(obj, form) or self._describe(obj, ('category',))

    def attribute(self):
        target = self._pick(self.visible)
        form = self._choice([('category',), ('color', 'category'), ('size', 'category'),
                             ('size', 'color', 'category'), ('color',)])
        desc = self._describe(self.objects[target], form)
        if desc is None or desc == describe():
            return None
        structure = {'type': 'attribute', 'target': desc}
        return (structure, target) if self._accept(structure, target) else None

    def superlative(self):
        pool = [i for i in self._same_category_pool() if not _distractor(self.objects[i])]
        if not pool:
            return None
        target = self._pick(pool)
        structure = {'type': 'superlative',
                     'target': self._target_desc(self.objects[target], 0.2),
                     'superlative': self._choice(('biggest', 'smallest'))}
        return self._accept_comparison(structure, target)

    def relation(self):
        if len(self.visible) < 2:
            return None
        target = self._pick(self.visible)
        anchor = self._pick([i for i in self.visible if i != target])
        anchor_desc = self._unique(anchor)
        if anchor_desc is None:
            return None
        from .expressions import _RELATION_TEXT, _relation_score
        clear = [rel for rel in _RELATION_TEXT if
                 _relation_score(rel, self.objects[target], self.objects[anchor])[0]]
        if not clear:
            return None
        structure = {'type': 'relation', 'target': self._target_desc(self.objects[target], 0.3),
                     'relation': self._choice(clear), 'anchor': anchor_desc}
        return (structure, target) if self._accept(structure, target) else None

    def absent(self):
        present = sorted({o['category'] for o in self.objects if not _distractor(o)})
        colors = sorted({c for o in self.objects for c in o.get('color_terms', [o['color']])
                         if c in COLORS})
        roll = self.rng.random()
        if roll < 0.5 and present:
            desc = describe(self._choice(present), self._choice(COLORS))
        elif roll < 0.75 and colors:
            desc = describe(self._choice(CATEGORIES), self._choice(colors))
        else:
            desc = describe(self._choice(CATEGORIES), self._choice(COLORS))
        structure = {'type': 'absent', 'target': desc}
        return (structure, None) if not resolve(structure, self.objects) else None


def _noun_options(desc: dict, obj: Optional[dict], held: bool) -> Tuple[List[str], List[str]]:
    train, held_out = NOUNS[desc.get('category')]
    train, held_out = list(train), list(held_out)
    if obj is not None and desc.get('category') is not None:
        extra = VARIANT_NOUNS.get((obj['category'], obj.get('shape_variant')))
        if extra:
            train += list(extra[0])
            held_out += list(extra[1])
    return train, held_out


class _Wording:
    """Picks words from the training or held-out banks and records held-out use."""

    def __init__(self, rng: np.random.Generator, held: bool) -> None:
        self.rng, self.held = rng, held
        self.used_held: List[str] = []

    def pick(self, key: str, train: Sequence[str], held_out: Sequence[str] = ()) -> str:
        if self.held and held_out and self.rng.random() < 0.7:
            word = held_out[int(self.rng.integers(len(held_out)))]
            self.used_held.append(f'{key}:{word}')
            return word
        return train[int(self.rng.integers(len(train)))]

    def bank(self, key: str) -> str:
        return self.pick(key, TRAIN[key], HELD.get(key, ()))


def _noun_phrase(desc: dict, obj: Optional[dict], words: _Wording) -> str:
    parts = []
    if desc.get('size'):
        parts.append(words.bank(f"size_{desc['size']}"))
    if desc.get('color'):
        color = desc['color']
        ext = obj.get('color_extended') if obj is not None else None
        # An extended name is said only of the object whose own colour has that name.
        if ext and ext != color and words.rng.random() < 0.5:
            color = ext
            if ext in HELD_OUT_FACTORS['color_extended']:
                words.used_held.append(f'color:{ext}')
        parts.append(color)
    train, held_out = _noun_options(desc, obj, words.held)
    parts.append(words.pick('noun', train, held_out))
    return ' '.join(parts)


def render_randomized_text(structure: dict, objects: Sequence[dict], target: Optional[int],
                           anchor: Optional[int], words: _Wording) -> str:
    """English text of ``structure``; ``target`` / ``anchor`` are the object indices (for
    extended colour names and variant nouns), None for absent expressions."""
    kind = structure['type']
    obj = objects[target] if target is not None else None
    noun = _noun_phrase(structure['target'], obj, words)
    if kind in ('attribute', 'absent'):
        text = words.bank('attribute').format(noun) if kind == 'attribute' else f'the {noun}'
    elif kind == 'position':
        text = words.bank(structure['position']).format(noun)
    elif kind == 'superlative':
        text = words.bank(structure['superlative']).format(noun)
    elif kind == 'relation':
        anchor_obj = objects[anchor] if anchor is not None else None
        text = (f"the {noun} {words.bank(structure['relation'])} "
                f"the {_noun_phrase(structure['anchor'], anchor_obj, words)}")
    else:
        raise ValueError(f'unknown expression type {kind!r}')
    if structure.get('carrier'):
        text = structure['carrier'].format(text)
    return text


def make_randomized_expressions(objects: Sequence[dict], rng: np.random.Generator,
                                n: int = 4, min_visible_pixels: int = 150,
                                held_out_language: bool = False, max_attempts: int = 8
                                ) -> Tuple[List[dict], int]:
    """Up to ``n`` distinct expressions of a randomized scene (types as
    :func:`unipixel_sim.expressions.make_expressions`).

    Args:
        objects: scene graph (ground-truth dicts with the randomized extras: color_terms,
            color_extended, size_relative, shape_variant, pattern, distractor).
        rng: seeded per scene.
        n, min_visible_pixels, max_attempts: as in ``make_expressions``.
        held_out_language: shifted scenes: use held-out wordings with probability
            :data:`HELD_OUT_RATE` per expression.
    Returns:
        (expressions, dropped_ambiguous). Each expression also carries ``held_out_words``
        (list of ``'<slot>:<word>'``, empty when only training wordings were used).
    """
    visible = [i for i, o in enumerate(objects) if o['visible_pixels'] >= min_visible_pixels]
    gen = RandomizedGenerator(objects, rng, visible)
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
            words = _Wording(rng, held_out_language and rng.random() < HELD_OUT_RATE)
            if kind == 'command':
                structure['carrier'] = words.bank('carrier')
            anchor = None
            if structure['type'] == 'relation':
                anchors = [i for i, o in enumerate(objects) if _matches(o, structure['anchor'])]
                anchor = anchors[0] if len(anchors) == 1 else None
            text = render_randomized_text(structure, objects, target, anchor, words)
            if text in texts:
                continue
            texts.add(text)
            out.append({'text': text, 'type': kind, 'inner_type': inner, 'target': target,
                        'structure': structure, 'held_out_words': words.used_held})
            break
    return out, gen.dropped_ambiguous
