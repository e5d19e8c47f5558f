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
    """When to speak about a followed command: once per command, never once per frame.

    The camera answers 15-30 times a second and a target near the decision threshold flickers
    between found and not found; a person must not hear that. So:

    * the first answer is spoken once: "I see X ..." on the first frame X is found, or
      "I don't see X." ("... Which one do you mean?" when the model is unsure) once X has been
      missed for ``max_misses`` frames in a row from the start of the command (the tracker's
      lost-target hysteresis, so one unlucky first frame is not an answer);
    * a one-shot command (pick, find) says nothing more: ``unipixel/result`` carries the
      per-frame answer;
    * a followed command (``follow=True``: track) also says "I lost X." when the tracker has
      really lost it (``max_misses`` misses in a row after holding it), and "I see X again." at
      most once after each such loss (or the found sentence, when the first answer was
      "I don't see X.").

    Args:
        follow: speak about losing and re-finding the target (TRACK commands).
        max_misses: frames in a row without the target before it is lost (>= 1); the same value
            as the tracker's ``max_misses``.
    """

    def __init__(self, follow: bool = False, max_misses: int = 5) -> None:
        if int(max_misses) != max_misses or max_misses < 1:
            raise ValueError(f'max_misses must be an integer >= 1, got {max_misses}')
        self.follow = bool(follow)
        self.max_misses = int(max_misses)
        self.reset()

    def reset(self) -> None:
        """Forget what was said (a new command)."""
        self._spoken = False        # the first answer was given
        self._holding = False       # the last thing said was that the target is seen
        self._said_lost = False     # "I lost X" was said and not yet followed by "again"

    def reply(self, query: str, found: bool, misses: int, status: str,
              sentence: str) -> str | None:
        """The text to speak after this frame's answer, or None to stay silent.

        Args:
            query: the active referring expression.
            found: this frame's answer.
            misses: frames in a row without the target, this one included (the tracker's
                ``consecutive_misses``: 0 when found).
            status: the answer's status ('uncertain' asks which one).
            sentence: :func:`answer_sentence` of this answer.
        """
        gone = not found and misses >= self.max_misses
        if not self._spoken:
            if found:
                self._spoken, self._holding = True, True
                return sentence
            if gone:
                self._spoken = True
                return not_found_sentence(query, status, sentence)
            return None
        if not self.follow:
            return None
        if self._holding and gone:
            self._holding, self._said_lost = False, True
            return f'I lost {query}.'
        if not self._holding and found:
            self._holding = True
            if self._said_lost:
                self._said_lost = False
                return f'I see {query} again.'
            return sentence
        return None
