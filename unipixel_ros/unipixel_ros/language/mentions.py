"""What a referring expression says about its target: category, colour, size.

Used to check the model's answer against the words (``ReferringPredictor`` verification): if
the phrase asks for a *green block* and the attribute heads are sure the selected object is a
can, the answer is "not found" rather than a confident pick of the wrong thing.

The text may be a whole command ("can you grab the can on the left") or an expression the
parser already extracted; either way it goes through :func:`parse_command` first, so the words
read here are exactly the query the model gets, without carrier words ("can you", "hand me").
The target's noun phrase comes first in an expression ("the large red cup to the left of the
ball"), so the target is the first noun, with the colour and size words right before it; words
after it describe anchors. Unknown words (synonyms outside the vocabulary) are simply
not mentions, so the check never fires on what it cannot read.
"""
from __future__ import annotations

import re

from unipixel_ros.dataset.vocab import CATEGORIES, COLORS

from .parser import CommandError, parse_command

#: size words -> vocabulary size (the simulator's grammar says "medium-sized")
SIZE_WORDS = {'small': 'small', 'medium': 'medium', 'medium-sized': 'medium', 'large': 'large'}
#: nouns that name the target without a category
GENERIC_NOUNS = ('object', 'objects', 'thing', 'things', 'one', 'item', 'items')
_TOKEN = re.compile(r"[a-z]+(?:-[a-z]+)*")


def _category(token: str) -> str | None:
    if token in CATEGORIES:
        return token
    if token.endswith('es') and token[:-2] in CATEGORIES:   # boxes
        return token[:-2]
    if token.endswith('s') and token[:-1] in CATEGORIES:    # cups
        return token[:-1]
    return None


def target_mentions(text: str) -> dict:
    """{'category', 'color', 'size'} the phrase gives its target (None = not said).

    >>> target_mentions('pick up the small red cup left of the blue bowl')
    {'category': 'cup', 'color': 'red', 'size': 'small'}
    """
    said = {'category': None, 'color': None, 'size': None}
    try:
        text = parse_command(text).expression        # '' for STOP / DESCRIBE: nothing said
    except CommandError:
        pass                                         # unusable as a command: read it as it is
    for token in _TOKEN.findall(text.lower()):
        category = _category(token)
        if category is not None or token in GENERIC_NOUNS:
            said['category'] = category
            return said
        if token in COLORS:
            said['color'] = token
        elif token in SIZE_WORDS:
            said['size'] = SIZE_WORDS[token]
    # no noun at all ("the red one" is handled above): keep nothing rather than guess
    return {'category': None, 'color': None, 'size': None}
