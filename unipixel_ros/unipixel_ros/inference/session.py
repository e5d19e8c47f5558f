"""A followed command: the query being answered frame after frame, its tracker, when to send
the pick, and what to say. ROS-free; ``unipixel_node``'s worker owns one per command.

    session = CommandSession(CommandAction.PICK, predictor.encode_text('the red cup'), tracker)
    step = session.step(predictor, rgb, depth_m, intrinsics, config, stamp_s)
    # step.answer, step.sentence, step.reply (None = stay silent), step.pick (send it now)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unipixel_ros.language.parser import CommandAction
from unipixel_ros.language.replies import ReplyPolicy, answer_sentence
from unipixel_ros.perception import CameraIntrinsics, GeometryConfig
from unipixel_ros.perception.tracking import ObjectTracker

from .answer import Answer, answer_frame
from .predictor import Query, ReferringPredictor


def sentence_for(answer: Answer, describe: bool = False) -> str:
    """:func:`answer_sentence` of an answer (distance from the measured box, when there is one);
    an ambiguous answer's sentence is its question ("Which one, the left or the right cup?")."""
    if answer.prediction.question:
        return answer.prediction.question
    distance = (None if answer.geometry is None
                else float(np.linalg.norm(answer.geometry.box.center)))
    return answer_sentence(answer.query.text, answer.prediction.description(), answer.found,
                           distance, describe)


@dataclass
class Step:
    """One frame of a followed command.

    Attributes:
        answer: the tracked answer.
        sentence: the one-line description of it (``unipixel/result``'s description).
        reply: what to say now, or None (:class:`ReplyPolicy`: the first answer once per
            command; for TRACK also "I lost X." / "I see X again." on real losses).
        pick: True on the one frame where a PICK command's grasp has been found for
            ``pick_stable_frames`` consecutive frames (the pick is sent once per command).
    """

    answer: Answer
    sentence: str
    reply: str | None
    pick: bool


class CommandSession:
    """State of one followed command (see the module docstring).

    Args:
        action: the parsed action (PICK sends one pick; FIND and TRACK only follow).
        query: the encoded referring expression.
        tracker: a fresh or reset :class:`ObjectTracker` (smoothing, lost-target hysteresis).
        pick_stable_frames: consecutive found frames before the pick is sent.
    """

    def __init__(self, action: CommandAction, query: Query, tracker: ObjectTracker,
                 pick_stable_frames: int = 3) -> None:
        self.action, self.query, self.tracker = action, query, tracker
        self.pick_stable_frames = pick_stable_frames
        self.replies = ReplyPolicy(follow=action == CommandAction.TRACK,
                                   max_misses=tracker.max_misses)
        self.stable_frames = 0
        self.pick_sent = False
        tracker.reset()

    def restart_tracking(self) -> None:
        """Forget the tracked target but keep following the command (after a time jump the
        smoothed mask and pose belong to another timeline). What was said stays said: the
        target is only reported lost after ``max_misses`` misses of the restarted tracker."""
        self.tracker.reset()
        self.stable_frames = 0

    def step(self, predictor: ReferringPredictor, rgb: np.ndarray, depth_m: np.ndarray,
             intrinsics: CameraIntrinsics, geometry_config: GeometryConfig | None = None,
             stamp_s: float = 0.0) -> Step:
        """Answer the command on one frame (rgb (H, W, 3) uint8, depth_m (H, W) float32 m)."""
        answer = answer_frame(predictor, self.query, rgb, depth_m, intrinsics, geometry_config,
                              tracker=self.tracker, stamp_s=stamp_s)
        sentence = sentence_for(answer)
        grasp_valid = (answer.found and answer.geometry is not None
                       and answer.geometry.best_grasp is not None)
        self.stable_frames = self.stable_frames + 1 if answer.found else 0
        pick = (self.action == CommandAction.PICK and grasp_valid and not self.pick_sent
                and self.stable_frames >= self.pick_stable_frames)
        self.pick_sent |= pick
        misses = 0 if answer.track is None else answer.track.consecutive_misses
        reply = self.replies.reply(self.query.text, answer.found, misses, answer.status, sentence)
        return Step(answer, sentence, reply, pick)
