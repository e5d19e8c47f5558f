"""Rewording beyond the training grammar, for the paraphrase check of ``unipixel-ros eval``.

The simulator's grammar uses fixed category and colour names and a few carrier phrases. This
rewrites a query with synonyms it never produces (mug, cube, violet, ...) and other carrier
phrases, deterministically, so the in-grammar and reworded cIoU can be compared on the same
samples. Words without a synonym are kept; the referent never changes.
"""
from __future__ import annotations

import re

CATEGORY_SYNONYMS = {
    'cup': 'mug', 'bowl': 'dish', 'box': 'carton', 'ball': 'sphere', 'bottle': 'flask',
    'can': 'tin', 'block': 'cube',
}
COLOR_SYNONYMS = {
    'red': 'scarlet', 'green': 'lime', 'blue': 'navy', 'yellow': 'golden', 'orange': 'tangerine',
    'purple': 'violet', 'white': 'snow-white', 'black': 'jet-black', 'pink': 'rose',
}
SIZE_SYNONYMS = {'small': 'little', 'large': 'big', 'medium': 'mid-sized'}
CARRIERS = [
    (r'^pick up ', 'lift '), (r'^could you grab ', 'would you fetch '),
    (r'^hand me ', 'pass me '), (r'^please get ', 'kindly bring me '),
    (r'^grab ', 'take '), (r'^get ', 'bring me '),
]
_WORDS = {**CATEGORY_SYNONYMS, **COLOR_SYNONYMS, **SIZE_SYNONYMS}
_WORD_RE = re.compile(r'\b(' + '|'.join(sorted(_WORDS, key=len, reverse=True)) + r')(s?)\b')


def paraphrase(text: str) -> str:
    """Reword ``text`` with out-of-grammar synonyms and carrier phrases."""
    out = text.strip()
    for pattern, replacement in CARRIERS:
        out, n = re.subn(pattern, replacement, out)
        if n:
            break
    return _WORD_RE.sub(lambda m: _WORDS[m.group(1)] + m.group(2), out)
