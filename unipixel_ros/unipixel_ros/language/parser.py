"""Parse a speech-to-text utterance into an action and a referring expression.

    "pick up the red cup"          -> PICK,     "the red cup"
    "could you grab the ball?"     -> PICK,     "the ball"
    "hand me the small box please" -> PICK,     "the small box"
    "show me / find the bowl"      -> FIND,     "the bowl"
    "track the can"                -> TRACK,    "the can"
    "stop" / "cancel" / "never mind" -> STOP
    "what is this" / "what's that" -> DESCRIBE (the object at the last clicked point)
    "the blue bottle"              -> FIND (a bare phrase is a query)

The referring expression keeps the words the model was trained on; only carrier phrases,
politeness and trailing punctuation are removed. Input is validated: empty, oversized or
control-character-laden text raises :class:`CommandError` with a readable reason.
"""
from __future__ import annotations

import enum
import re
import unicodedata
from dataclasses import dataclass

MAX_COMMAND_CHARS = 300


class CommandAction(enum.Enum):
    PICK = 'pick'          # segment, then publish a grasp
    FIND = 'find'          # segment and report, no grasp
    TRACK = 'track'        # segment and keep following
    STOP = 'stop'          # stop tracking / cancel
    DESCRIBE = 'describe'  # region -> words at the last clicked point


class CommandError(ValueError):
    """The utterance cannot be used as a command (empty, too long, unreadable)."""


@dataclass(frozen=True)
class Command:
    action: CommandAction
    expression: str        # the referring expression ('' for STOP / DESCRIBE)
    text: str              # the cleaned utterance


_STOP = re.compile(r'^(stop|cancel|abort|halt|never ?mind|forget it|that\'?s enough)\b')
_DESCRIBE = re.compile(r'^(what(\'s| is) (this|that|there|here)|describe (this|that|it)'
                       r'|what do you see (here|there))\b')
_POLITE_PREFIX = re.compile(r'^((hey|ok|okay) robot,?\s+|robot,?\s+)?((please|kindly)\s+)?'
                            r'((can|could|would|will) you\s+(please\s+)?)?')
_CARRIERS = [
    (CommandAction.TRACK, r'(track|follow|keep (tracking|following|an eye on)|watch)'),
    (CommandAction.PICK, r'(pick up|pick|grab|grasp|take|fetch|get|bring me|bring|hand me|'
                         r'give me|pass me|lift|hold)'),
    (CommandAction.FIND, r'(show me|find|locate|look at|point at|point to|highlight|segment|'
                         r'where is|where\'s|do you see|can you see|is there)'),
]
_CARRIER_RES = [(a, re.compile(rf'^{p}\b\s*(up\s+)?')) for a, p in _CARRIERS]
_SUFFIX = re.compile(r'(\s*,?\s*(please|for me|thanks|thank you))+$')


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
    if _STOP.match(clean):
        return Command(CommandAction.STOP, '', clean)
    body = _POLITE_PREFIX.sub('', clean, count=1).strip()
    if _DESCRIBE.match(body):
        return Command(CommandAction.DESCRIBE, '', clean)
    action = CommandAction.FIND
    for candidate, pattern in _CARRIER_RES:
        m = pattern.match(body)
        if m:
            action, body = candidate, body[m.end():]
            break
    body = _SUFFIX.sub('', body).strip(' ,')
    if not re.search(r'[a-z]', body):
        raise CommandError(f'no object named in {text.strip()!r}')
    if not body.startswith(('the ', 'a ', 'an ', 'that ', 'this ', 'my ')):
        body = 'the ' + body
    return Command(action, body, clean)
