"""A command in the words the model was trained on.

The default model learnt its phrases from the simulator's grammar: "cup", "red", "large",
"biggest". Its text encoder (MiniLM) places "tin" near "can" only as far as MiniLM already
does. Before a phrase reaches the model, :func:`canonical_text` rewrites the words this package
can read with certainty into the model's own vocabulary:

- category nouns through :data:`~.concepts.SYNONYMS` ("mug" -> "cup", "tin" -> "can"), unless
  another noun follows ("the soda bottle" stays);
- colour names through the colour survey (``perception.color_naming``): an extended name
  ("navy", "sky blue", "scarlet") becomes the basic term its survey colour is called ("blue",
  "red"), when the model knows that term.

Only the two vocabularies a checkpoint declares (categories and colours) are targets: which
size words or superlatives a model learnt is not recorded, and rewriting words it knows
("little" -> "small") changed its answers on val. Every other word is kept as said, and a
phrase in the model's own words comes back unchanged.
"""
from __future__ import annotations

import re

from unipixel_ros.perception.color_naming import extended_basic_terms

from .concepts import GENERIC, SYNONYMS

_TOKEN = re.compile(r"[a-z]+(?:-[a-z]+)*|[^a-z]+")


def canonical_text(text: str, categories, colors) -> str:
    """``text`` with the words the model does not know but this package can map, mapped.

    Args:
        text: a referring expression or command.
        categories, colors: the model's vocabularies (only words that map into them are
            rewritten).
    Returns:
        The rewritten text, lower-cased (the text encoder is uncased).
    """
    categories, colors = set(categories), set(colors)
    words = {w: c for w, c in SYNONYMS.items() if c in categories}
    words.update({name: basic for name, basic in extended_basic_terms().items()
                  if basic in colors and name not in colors})
    if 'grey' in colors:
        words['gray'] = 'grey'
    nouns = set(SYNONYMS) | GENERIC
    tokens = _TOKEN.findall(text.lower())
    out, i = [], 0
    while i < len(tokens):
        # two-word colour names ("sky blue"): word, space, word
        if i + 2 < len(tokens) and tokens[i + 1] == ' ':
            pair = f'{tokens[i]} {tokens[i + 2]}'
            if pair in words:
                out.append(words[pair])
                i += 3
                continue
        word = tokens[i]
        if word in nouns and i + 2 < len(tokens) and tokens[i + 2] in nouns | categories:
            out.append(word)        # a noun used as a modifier: "the soda bottle", "glass jar"
        else:
            out.append(words.get(word, word))
        i += 1
    return ''.join(out)
