"""What the robot says about a followed command (no ROS): once per command, "I lost X" only on
a real loss, "I see X again" at most once after it. The same behaviour on the real node is in
test_node_behaviour.py."""
from __future__ import annotations

import numpy as np
import pytest

from unipixel_ros.language import CommandAction
from unipixel_ros.language.replies import ReplyPolicy, answer_sentence

Q = 'the red box'
SEEN = answer_sentence(Q, 'a red box', True, 0.74)
UNSEEN = answer_sentence(Q, '', False, None)


def speak(policy: ReplyPolicy, pattern: str, status: str = 'not found') -> list:
    """Feed frames ('1' found, '0' not found), counting misses as the tracker does; returns
    (frame index, reply) for every frame that spoke."""
    said, misses = [], 0
    for i, c in enumerate(pattern):
        found = c == '1'
        misses = 0 if found else misses + 1
        text = policy.reply(Q, found, misses, status, SEEN if found else UNSEEN)
        if text is not None:
            said.append((i, text))
    return said


def test_a_pick_speaks_once_over_a_flickering_target():
    policy = ReplyPolicy(follow=False, max_misses=5)
    assert speak(policy, '1010011000001111000000001') == [(0, SEEN)]


def test_a_first_miss_is_not_an_answer_but_max_misses_misses_are():
    assert speak(ReplyPolicy(max_misses=5), '00001') == [(4, SEEN)]
    assert speak(ReplyPolicy(max_misses=5), '0000011') == [(4, UNSEEN)]
    assert speak(ReplyPolicy(max_misses=3), '000', status='uncertain') == [
        (2, f"I'm not sure I see {Q}. Which one do you mean?")]


def test_tracking_says_lost_after_max_misses_and_again_once():
    policy = ReplyPolicy(follow=True, max_misses=3)
    # seen; short gaps (< 3 misses) say nothing; lost; back; lost; back
    said = speak(policy, '1' '1001101' '000' '0' '1' '1011' '000' '1')
    assert [t for _, t in said] == [SEEN, f'I lost {Q}.', f'I see {Q} again.',
                                    f'I lost {Q}.', f'I see {Q} again.']
    assert [i for i, _ in said] == [0, 10, 12, 19, 20]


def test_tracking_an_object_that_appears_after_i_dont_see_it():
    said = speak(ReplyPolicy(follow=True, max_misses=2), '00' '0' '11' '00' '1')
    assert [t for _, t in said] == [UNSEEN, SEEN, f'I lost {Q}.', f'I see {Q} again.']


def test_reset_starts_a_new_command():
    policy = ReplyPolicy(max_misses=2)
    assert speak(policy, '11') == [(0, SEEN)]
    policy.reset()
    assert speak(policy, '1') == [(0, SEEN)]


def test_max_misses_is_checked():
    with pytest.raises(ValueError):
        ReplyPolicy(max_misses=0)


# ---- CommandSession on a real (tiny, random) predictor ------------------------------------------
@pytest.fixture(scope='module')
def predictor(tmp_path_factory):
    from tiny_node_setup import save_tiny_checkpoint
    from unipixel_ros.inference.loading import load_predictor
    from unipixel_ros.inference.settings import DecisionSettings

    ckpt = save_tiny_checkpoint(tmp_path_factory.mktemp('model'))
    _, pred = load_predictor('torch', ckpt, DecisionSettings(
        exists_threshold=0.0, uncertain_threshold=0.0, mask_threshold=0.0), device='cpu',
        threads=1)
    return pred


def follow(predictor, action: CommandAction, pattern: str, max_misses: int = 3):
    """Follow a command over frames; '1' frames are answered with exists_threshold 0 (found),
    '0' frames with 1.0 (nothing can reach it). Returns the steps."""
    from dataclasses import replace

    from tiny_node_setup import INTR, H, W
    from unipixel_ros.inference.session import CommandSession
    from unipixel_ros.perception.tracking import ObjectTracker

    rgb = np.full((H, W, 3), 120, np.uint8)
    depth = np.full((H, W), 0.7, np.float32)
    base = predictor.settings
    command = CommandSession(action, predictor.encode_text(Q),
                             ObjectTracker(max_misses=max_misses), pick_stable_frames=2)
    steps = []
    try:
        for i, c in enumerate(pattern):
            predictor.settings = replace(base, exists_threshold=0.0 if c == '1' else 1.0)
            steps.append(command.step(predictor, rgb, depth, INTR, stamp_s=0.1 * i))
            assert steps[-1].answer.found == (c == '1')
    finally:
        predictor.settings = base
    return command, steps


def test_command_pick_speaks_once_and_picks_once(predictor):
    _, steps = follow(predictor, CommandAction.PICK, '1101110001111')
    assert [s.reply for s in steps if s.reply] == [steps[0].sentence]
    assert steps[0].sentence.startswith(f'I see {Q}')
    # every frame still has its own sentence for unipixel/result
    assert "I don't see" in steps[2].sentence
    picks = [i for i, s in enumerate(steps) if s.pick]
    assert len(picks) <= 1


def test_command_track_reports_a_real_loss_once(predictor):
    _, steps = follow(predictor, CommandAction.TRACK, '11' '0' '1' '000' '00' '11')
    replies = [(i, s.reply) for i, s in enumerate(steps) if s.reply]
    assert [r for _, r in replies] == [steps[0].sentence, f'I lost {Q}.', f'I see {Q} again.']
    assert [i for i, _ in replies] == [0, 6, 9]


def test_command_restart_tracking_does_not_say_lost(predictor):
    """After a time jump the tracker restarts; a miss right after is not a loss."""
    command, steps = follow(predictor, CommandAction.TRACK, '11')
    command.restart_tracking()
    from tiny_node_setup import INTR, H, W
    from dataclasses import replace
    base = predictor.settings
    rgb = np.full((H, W, 3), 120, np.uint8)
    depth = np.full((H, W), 0.7, np.float32)
    try:
        predictor.settings = replace(base, exists_threshold=1.0)
        replies = [command.step(predictor, rgb, depth, INTR).reply for _ in range(2)]
    finally:
        predictor.settings = base
    assert replies == [None, None]
