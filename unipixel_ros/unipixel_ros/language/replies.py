"""What the robot says: one-line descriptions of an answer, and when to speak.

Pure Python (no ROS): ``unipixel_node`` publishes what :class:`ReplyPolicy` returns on
``unipixel/reply``; ``unipixel/result`` carries :func:`answer_sentence` for every frame.
"""
from __future__ import annotations


def answer_sentence(query: str, noun: str, found: bool, distance_m: float | None,
                    describe: bool = False) -> str:
    """The sentence for one answer.

    Args:
        query: the referring expression ('the red cup').
        noun: what the attribute heads see ('a small red cup').
        found: whether the object was found.
        distance_m: camera -> object centre, metres (None: not measured).
        describe: a region -> words answer (a clicked point) rather than a query.
    """
    if not found:
        return "I don't see an object there." if describe else f"I don't see {query}."
    if distance_m is None:
        return f'I see {noun}.' if describe else f'I see {query}.'
    distance_cm = 100.0 * distance_m
    return (f'That is {noun}, {distance_cm:.0f} cm ahead.' if describe
            else f'I see {query}, {distance_cm:.0f} cm ahead.')


def not_found_sentence(query: str, status: str, sentence: str) -> str:
    """The reply for a not-found answer: a question when the model is unsure."""
    if status == 'uncertain':
        return f"I'm not sure I see {query}. Which one do you mean?"
    return sentence


class ReplyPolicy:
    """Speak once per change, never once per frame.

    Replies: the first answer to a command, a change between found and not found, and a lost
    target ("I lost ..."); :meth:`reset` when a new command starts.
    """

    def __init__(self) -> None:
        self._last_key: tuple | None = None

    def reset(self) -> None:
        self._last_key = None

    def reply(self, query: str, found: bool, lost: bool, status: str,
              sentence: str) -> str | None:
        """The text to speak after this frame's answer, or None to stay silent.

        Args:
            query: the active referring expression.
            found: this frame's answer.
            lost: the tracker reports the target lost (``max_misses`` frames without it).
            status: the answer's status ('uncertain' asks which one).
            sentence: :func:`answer_sentence` of this answer.
        """
        key = (query, found, lost)
        if key == self._last_key:
            return None
        previous, self._last_key = self._last_key, key
        if lost and previous is not None and previous[0] == query and previous[1]:
            return f'I lost {query}.'
        if found:
            return sentence
        if not lost or previous is None or previous[0] != query:
            return not_found_sentence(query, status, sentence)
        return None
