"""Concepts and constraints of a referring expression, for an open-vocabulary detector.

An open-vocabulary model (SAM 3) finds every instance of a short noun phrase; it does not know
which *one* "the red cup left of the blue bowl" means. This module splits the expression into
the noun phrases to detect and the constraints that pick one of their instances::

    parse_referring('the red cup left of the blue bowl')
    -> Referring(target=Concept(noun='cup', category='cup', color='red'),
                 constraints=(Constraint('relation', 'left_of',
                                         anchor=Concept(noun='bowl', category='bowl',
                                                        color='blue')),))

What is read (one target noun phrase, then post-modifiers):

- **colour** words before the noun: the vocabulary colours, the eleven basic terms ("brown",
  "grey"/"gray") and the extended survey names ("navy", "sky blue", ...), as said;
- **size** words: small / little / tiny, medium / medium-sized, large / big / huge; relative to
  the other instances of the same concept (see ``inference.resolver``);
- **superlatives**: biggest / largest / bulkiest, smallest / tiniest / littlest, tallest,
  shortest; also "the cup that is the biggest";
- **positions**: leftmost / rightmost / nearest / closest / farthest / furthest, "the left cup",
  "on the left / right", "furthest to the left", "that is most to the left", "in front",
  "at the back", "furthest away", "most distant", "most nearby", "closest to you / me / the
  camera", "in the middle / center";
- **ordinals**: "the second cup from the left" (first ... fifth, last; from the left / right /
  front / back; "the second cup" alone counts from the left);
- **relations** to an anchor noun phrase: next to / beside / near / by / alongside, (to the)
  left of / on the left side of, right of, behind / in back of, in front of / ahead of,
  closest to / nearest to / farthest from <anchor>.

Category synonyms map to the vocabulary category ("mug" -> cup) through :data:`SYNONYMS`; the
detector still gets the noun as said (``Concept.phrase``), because a detector that reads text
knows a mug when it is asked for one. Generic nouns ("object", "thing", "one") have no category.
Words the grammar does not know are kept in ``Referring.unread``, never guessed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from unipixel_ros.dataset.vocab import CATEGORIES, COLORS
from unipixel_ros.perception.color_naming import BASIC_TERMS, EXTENDED_TERMS

from .grammar import DETERMINERS, tokenize
from .parser import CommandError, parse_command

#: other nouns for the vocabulary categories (small on purpose; add words as users say them)
SYNONYMS = {
    'mug': 'cup', 'tumbler': 'cup', 'glass': 'cup', 'teacup': 'cup', 'beaker': 'cup',
    'basin': 'bowl', 'dish': 'bowl',
    'carton': 'box', 'package': 'box', 'crate': 'box',
    'sphere': 'ball', 'orb': 'ball',
    'flask': 'bottle', 'jar': 'bottle',
    'tin': 'can', 'soda': 'can',
    'brick': 'block', 'cube': 'block',
}
#: nouns that name an object without a category
GENERIC = frozenset('object objects thing things item items one ones'.split())
#: colour words -> the colour as said (multi-word names are joined with a space)
COLOR_WORDS = frozenset(COLORS) | frozenset(BASIC_TERMS) | frozenset(EXTENDED_TERMS) | {'gray'}
SIZE_WORDS = {'small': 'small', 'little': 'small', 'tiny': 'small', 'medium': 'medium',
              'medium-sized': 'medium', 'large': 'large', 'big': 'large', 'huge': 'large'}
SUPERLATIVE_WORDS = {'biggest': 'biggest', 'largest': 'biggest', 'bulkiest': 'biggest',
                     'smallest': 'smallest', 'tiniest': 'smallest', 'littlest': 'smallest',
                     'tallest': 'tallest', 'highest': 'tallest', 'shortest': 'shortest',
                     'lowest': 'shortest'}
POSITION_WORDS = {'leftmost': 'left', 'rightmost': 'right', 'left': 'left', 'right': 'right',
                  'nearest': 'near', 'closest': 'near', 'near': 'near', 'nearer': 'near',
                  'front': 'near', 'farthest': 'far', 'furthest': 'far', 'far': 'far',
                  'back': 'far', 'middle': 'middle', 'center': 'middle', 'centre': 'middle',
                  'central': 'middle'}
ORDINALS = {'first': 1, 'second': 2, 'third': 3, 'fourth': 4, 'fifth': 5, '1st': 1, '2nd': 2,
            '3rd': 3, '4th': 4, '5th': 5, 'last': -1}
#: words that count for nothing inside a noun phrase
_FILLERS = frozenset('that which is are the a an one most very'.split())

# post-modifier phrases, longest first at each position. Values: (kind, value, takes_anchor)
_POST = {
    'next to': ('relation', 'next_to', True), 'beside': ('relation', 'next_to', True),
    'near': ('relation', 'next_to', True), 'by': ('relation', 'next_to', True),
    'alongside': ('relation', 'next_to', True), 'close to': ('relation', 'next_to', True),
    'left of': ('relation', 'left_of', True), 'to the left of': ('relation', 'left_of', True),
    'on the left of': ('relation', 'left_of', True),
    'on the left side of': ('relation', 'left_of', True),
    'right of': ('relation', 'right_of', True), 'to the right of': ('relation', 'right_of', True),
    'on the right of': ('relation', 'right_of', True),
    'on the right side of': ('relation', 'right_of', True),
    'behind': ('relation', 'behind', True), 'in back of': ('relation', 'behind', True),
    'in front of': ('relation', 'in_front_of', True), 'ahead of': ('relation', 'in_front_of', True),
    'closest to': ('relation', 'closest_to', True), 'nearest to': ('relation', 'closest_to', True),
    'nearest': ('relation', 'closest_to', True), 'closest': ('relation', 'closest_to', True),
    'farthest from': ('relation', 'farthest_from', True),
    'furthest from': ('relation', 'farthest_from', True),
    # positions (no anchor)
    'on the left': ('position', 'left', False), 'on the right': ('position', 'right', False),
    'to the left': ('position', 'left', False), 'to the right': ('position', 'right', False),
    'furthest to the left': ('position', 'left', False),
    'farthest to the left': ('position', 'left', False),
    'furthest to the right': ('position', 'right', False),
    'farthest to the right': ('position', 'right', False),
    'that is most to the left': ('position', 'left', False),
    'most to the left': ('position', 'left', False),
    'that is most to the right': ('position', 'right', False),
    'most to the right': ('position', 'right', False),
    'on the left side': ('position', 'left', False),
    'on the right side': ('position', 'right', False),
    'in front': ('position', 'near', False), 'at the front': ('position', 'near', False),
    'at the back': ('position', 'far', False), 'in the back': ('position', 'far', False),
    'furthest away': ('position', 'far', False), 'farthest away': ('position', 'far', False),
    'in the middle': ('position', 'middle', False), 'in the center': ('position', 'middle', False),
    'in the centre': ('position', 'middle', False),
    'that is the biggest': ('superlative', 'biggest', False),
    'that is the largest': ('superlative', 'biggest', False),
    'that is the smallest': ('superlative', 'smallest', False),
    'that is the tallest': ('superlative', 'tallest', False),
    'that is the shortest': ('superlative', 'shortest', False),
    'from the left': ('from', 'left', False), 'from the right': ('from', 'right', False),
    'from the front': ('from', 'near', False), 'from the back': ('from', 'far', False),
}
_POST_TABLE = {tuple(k.split()): v for k, v in _POST.items()}
_POST_LONGEST = max(len(k) for k in _POST_TABLE)
#: anchors that mean the viewer: "closest to you" is a position, not a relation
_VIEWER = (('you',), ('me',), ('us',), ('the', 'camera'), ('camera',), ('the', 'robot'),
           ('the', 'viewer'))
_PRE_MOST = {('most', 'distant'): 'far', ('most', 'nearby'): 'near', ('most', 'remote'): 'far'}


@dataclass(frozen=True)
class Concept:
    """One noun phrase to detect.

    Attributes:
        noun: the head noun as said ('mug', 'cup'), or None for a generic noun ('object').
        category: the vocabulary category it names (``SYNONYMS`` applied), or None.
        color: the colour word as said ('red', 'navy', 'sky blue'), or None.
        size: 'small' | 'medium' | 'large' (relative to the other instances), or None.
    """

    noun: str | None = None
    category: str | None = None
    color: str | None = None
    size: str | None = None

    @property
    def phrase(self) -> str:
        """What the detector is asked for: the noun as said ('object' for generic nouns)."""
        return self.noun or 'object'

    def words(self) -> str:
        """'small red cup': the noun phrase as a reply would say it (no article)."""
        return ' '.join(w for w in (self.size, self.color, self.noun or 'object') if w)


@dataclass(frozen=True)
class Constraint:
    """One constraint on the target.

    Attributes:
        kind: 'position' (value left | right | near | far | middle), 'superlative' (biggest |
            smallest | tallest | shortest), 'ordinal' (value = direction left | right | near |
            far, ``index`` 1-based, -1 = last) or 'relation' (next_to | left_of | right_of |
            behind | in_front_of | closest_to | farthest_from, with ``anchor``).
        value: see ``kind``.
        anchor: the anchor concept of a relation, else None.
        index: the ordinal's position (1 = first; -1 = last); 0 otherwise.
    """

    kind: str
    value: str
    anchor: Concept | None = None
    index: int = 0


@dataclass(frozen=True)
class Referring:
    """What an expression asks for: one target concept and its constraints.

    Attributes:
        expression: the referring expression as parsed ('the red cup left of the blue bowl').
        target: the concept whose one instance is wanted.
        constraints: applied in order by the resolver.
        unread: words the grammar did not use (kept for diagnostics, never guessed).
    """

    expression: str
    target: Concept
    constraints: tuple = ()
    unread: tuple = field(default_factory=tuple)

    def concepts(self) -> list:
        """Every concept to detect: the target first, then each anchor (distinct phrases)."""
        out = [self.target]
        for c in self.constraints:
            if c.anchor is not None and c.anchor.phrase not in [o.phrase for o in out]:
                out.append(c.anchor)
        return out

    @property
    def kind(self) -> str:
        """'attribute', 'position', 'superlative', 'ordinal' or 'relation' (the first
        constraint's kind; 'attribute' when there is none)."""
        return self.constraints[0].kind if self.constraints else 'attribute'


def _noun(token: str) -> tuple[bool, str | None, str | None]:
    """(is a noun, noun as said (singular), category)."""
    for word in (token, token[:-2] if token.endswith('es') else '',
                 token[:-1] if token.endswith('s') else ''):
        if not word:
            continue
        if word in CATEGORIES:
            return True, word, word
        if word in SYNONYMS:
            return True, word, SYNONYMS[word]
    if token in GENERIC:
        return True, None, None
    return False, None, None


def _color_at(tokens: list, i: int) -> tuple[str | None, int]:
    """(colour as said, number of tokens) at ``tokens[i]``; two-word names first."""
    if i + 1 < len(tokens) and f'{tokens[i]} {tokens[i + 1]}' in COLOR_WORDS:
        return f'{tokens[i]} {tokens[i + 1]}', 2
    if tokens[i] in COLOR_WORDS:
        return ('grey' if tokens[i] == 'gray' else tokens[i]), 1
    return None, 0


def _noun_phrase(tokens: list, i: int) -> tuple[Concept, list, int, list]:
    """Read a noun phrase from ``tokens[i]``: (concept, pre-constraints, next index, unread)."""
    color = size = None
    pre, unread = [], []
    ordinal = 0
    while i < len(tokens) and tokens[i] in DETERMINERS:
        i += 1
    while i < len(tokens):
        tok = tokens[i]
        col, n = _color_at(tokens, i)
        is_noun, noun, category = _noun(tok)
        if col is not None and not (is_noun and col == tok and tok in CATEGORIES):
            color, i = col, i + n
            continue
        if is_noun:
            concept = Concept(noun, category, color, size)
            if ordinal:
                pre.append(Constraint('ordinal', 'left', index=ordinal))
            return concept, pre, i + 1, unread
        pair = tuple(tokens[i:i + 2])
        if pair in _PRE_MOST:
            pre.append(Constraint('position', _PRE_MOST[pair]))
            i += 2
        elif tok in SIZE_WORDS:
            size = SIZE_WORDS[tok]
            i += 1
        elif tok in SUPERLATIVE_WORDS:
            pre.append(Constraint('superlative', SUPERLATIVE_WORDS[tok]))
            i += 1
        elif tok in ORDINALS:
            ordinal = ORDINALS[tok]
            i += 1
        elif tok in POSITION_WORDS:
            pre.append(Constraint('position', POSITION_WORDS[tok]))
            i += 1
        else:
            if tok not in _FILLERS:
                unread.append(tok)
            i += 1
    # no noun: "the red one" is caught above; a bare "the red" keeps what it said
    if ordinal:
        pre.append(Constraint('ordinal', 'left', index=ordinal))
    return Concept(None, None, color, size), pre, i, unread


def _post_match(tokens: list, i: int):
    for n in range(min(_POST_LONGEST, len(tokens) - i), 0, -1):
        entry = _POST_TABLE.get(tuple(tokens[i:i + n]))
        if entry is not None:
            return entry, n
    return None, 0


def parse_referring(text: str) -> Referring:
    """Concepts and constraints of an expression or a whole command.

    Args:
        text: "pick up the red cup left of the blue bowl" or "the red cup left of the bowl".
    Returns:
        :class:`Referring`. A command goes through :func:`parse_command` first, so carrier
        words never become concepts.
    """
    try:
        expression = parse_command(text).expression or text
    except CommandError:
        expression = text
    tokens = tokenize(expression)
    target, constraints, i, unread = _noun_phrase(tokens, 0)
    constraints = list(constraints)
    while i < len(tokens):
        entry, n = _post_match(tokens, i)
        if entry is None:
            if tokens[i] not in _FILLERS:
                unread.append(tokens[i])
            i += 1
            continue
        kind, value, takes_anchor = entry
        i += n
        if kind == 'from':
            for k, c in enumerate(constraints):
                if c.kind == 'ordinal':
                    constraints[k] = Constraint('ordinal', value, index=c.index)
            continue
        if not takes_anchor:
            constraints.append(Constraint(kind, value))
            continue
        rest = tuple(tokens[i:])
        if value in ('closest_to', 'farthest_from', 'next_to') and any(
                rest[:len(v)] == v for v in _VIEWER):
            viewer = next(v for v in _VIEWER if rest[:len(v)] == v)
            i += len(viewer)
            constraints.append(Constraint('position', 'far' if value == 'farthest_from'
                                          else 'near'))
            continue
        if value in ('closest_to',) and not rest:
            constraints.append(Constraint('position', 'near'))   # "the cup nearest"
            continue
        anchor, anchor_pre, i, more = _noun_phrase(tokens, i)
        unread += more
        if anchor.noun is None and anchor.category is None and anchor.color is None:
            unread.append(value)
            continue
        constraints.append(Constraint('relation', value, anchor=anchor))
    return Referring(expression, target, tuple(constraints), tuple(unread))
