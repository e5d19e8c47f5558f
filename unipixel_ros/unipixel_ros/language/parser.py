"""Parse a speech-to-text utterance into an action and a referring expression.

    "pick up the red cup" / "pick the red cup up"   -> PICK,  "the red cup"
    "could you grab the ball?"                      -> PICK,  "the ball"
    "get me / bring me / hand me the small box"     -> PICK,  "the small box"
    "I need / I'd like / can I have the bowl"       -> PICK,  "the bowl"
    "bring the can over here, thanks"               -> PICK,  "the can"
    "show me / find / where is / do you see the bowl" -> FIND, "the bowl"
    "push the red cup" (a verb we do not act on)    -> FIND,  "the red cup"
    "the blue bottle" (a bare phrase)               -> FIND,  "the blue bottle"
    "track / follow / keep an eye on the can"       -> TRACK, "the can"
    "stop" / "cancel" / "never mind" / "don't ..."  -> STOP
    "wait" / "hold on" / "hang on" (alone)          -> STOP
    "what is this" / "what's that"                  -> DESCRIBE (the object at the last click)

The referring expression keeps the object words as said, relations and positions included
("the cup to the left of the bowl", "the ball on the right"); only carrier phrases, fillers,
politeness, stutters and punctuation are removed, and "the" is put in front when the speaker
gave no determiner. How the words are told apart is in :mod:`.grammar`.

Unusable input raises :class:`CommandError` with a readable reason: empty, oversized or
control-character-laden text, and a command that names no object ("pick up", "grab it",
"that one"). A pronoun is an error rather than a reference to the last object: the parser has
no memory, and guessing what "it" is before a grasp is worse than asking.
"""
from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass

from . import grammar

MAX_COMMAND_CHARS = 300


class CommandAction(enum.Enum):
    PICK = 'pick'          # segment, then publish a grasp
    FIND = 'find'          # segment and report, no grasp
    TRACK = 'track'        # segment and keep following
    STOP = 'stop'          # stop tracking / cancel
    DESCRIBE = 'describe'  # region -> words at the last clicked point


class CommandError(ValueError):
    """The utterance cannot be used as a command (empty, too long, unreadable, names nothing)."""


@dataclass(frozen=True)
class Command:
    action: CommandAction
    expression: str        # the referring expression ('' for STOP / DESCRIBE)
    text: str              # the cleaned utterance


_ACTIONS = {'pick': CommandAction.PICK, 'find': CommandAction.FIND,
            'track': CommandAction.TRACK}


def _clean(text: str) -> str:
    if not isinstance(text, str):
        raise CommandError(f'command must be text, got {type(text).__name__}')
    if len(text) > MAX_COMMAND_CHARS:
        raise CommandError(f'command is {len(text)} characters long; the limit is '
                           f'{MAX_COMMAND_CHARS}')
    controls = sum(unicodedata.category(c) == 'Cc' and c not in '\t\n\r' for c in text)
    if controls:
        raise CommandError(f'command contains {controls} control character(s)')
    text = unicodedata.normalize('NFKC', text).lower()
    text = re.sub(r'[\s]+', ' ', text).strip()
    text = re.sub(r'[.!?;:]+$', '', text).strip()
    if not text:
        raise CommandError('command is empty')
    return text


def parse_command(text: str) -> Command:
    """Parse one utterance. Raises CommandError for unusable input."""
    clean = _clean(text)
    tokens = grammar.tokenize(clean)
    prefix = grammar.read_prefix(tokens)
    if prefix.kind == 'stop':
        return Command(CommandAction.STOP, '', clean)
    if prefix.kind == 'describe':
        return Command(CommandAction.DESCRIBE, '', clean)
    words = grammar.expression_words(prefix)
    if not words:
        raise CommandError(f'no object named in {text.strip()!r}')
    if grammar.names_nothing(words):
        raise CommandError(f'no object named in {text.strip()!r}: {" ".join(words)!r} does not '
                           f'say which object; name it, e.g. "the red cup"')
    if words[0] not in grammar.DETERMINERS:
        words.insert(0, 'the')
    action = _ACTIONS[prefix.action] if prefix.kind == 'verb' else CommandAction.FIND
    return Command(action, ' '.join(words), clean)
