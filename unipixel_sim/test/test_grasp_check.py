"""grasp-check: ground-truth grasps on generated scenes, report and CLI."""
import json
import math
import os

os.environ.setdefault('MUJOCO_GL', 'egl')

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from unipixel_sim import grasp_check  # noqa: E402
from unipixel_sim.scene import DIMENSIONS, ObjectSpec  # noqa: E402


def _obj(category, size='medium', x=0.5, y=0.0, yaw=0.0, handle=False):
    return ObjectSpec(category=category, color='red', size=size, rgba=[1, 0, 0, 1],
                      dims=dict(DIMENSIONS[category][size]), x=x, y=y, yaw=yaw, handle=handle)


def test_ground_truth_grasp_closes_across_the_narrow_axis():
    box = _obj('box', 'large', yaw=0.4)  # 12 x 6 x 13 cm: jaws across the 6 cm (object y)
    pos, rot, width = grasp_check.ground_truth_grasp(box)
    assert width == pytest.approx(0.06)
    assert np.allclose(rot[:, 1], [-math.sin(0.4), math.cos(0.4), 0.0])
    assert np.allclose(rot[:, 2], [0, 0, -1])
    assert np.allclose(rot.T @ rot, np.eye(3)) and np.linalg.det(rot) == pytest.approx(1.0)
    assert pos[:2] == pytest.approx([0.5, 0.0])
    assert pos[2] == pytest.approx(0.13 - grasp_check.PALM_CLEARANCE)  # tall: palm-limited


def test_ground_truth_grasp_of_a_cup_avoids_the_handle():
    cup = _obj('cup', handle=True, yaw=1.0)
    pos, rot, width = grasp_check.ground_truth_grasp(cup)
    assert width == pytest.approx(2 * DIMENSIONS['cup']['medium']['radius'])
    assert abs(rot[:, 1] @ [math.cos(1.0), math.sin(1.0), 0.0]) < 1e-9  # jaws not along handle
    assert pos[2] == pytest.approx(DIMENSIONS['cup']['medium']['height'] / 2)


def test_ground_truth_grasp_turns_the_hand_away_from_a_neighbour():
    block = _obj('block', 'small')
    neighbour = _obj('can', x=0.5, y=0.09)  # on the line of a jaw axis along world y
    _, rot, _ = grasp_check.ground_truth_grasp(block, [neighbour])
    assert abs(rot[1, 1]) < 1e-9  # jaw axis turned to world x
    _, rot, _ = grasp_check.ground_truth_grasp(block, [])
    assert abs(rot[1, 1]) == pytest.approx(1.0)


def test_small_grasp_check_succeeds():
    report = grasp_check.run_grasp_check(trials=5, seed=7, progress=False)
    assert report['trials'] == 5
    assert report['successes'] >= 4, report['failures']
    assert report['success_rate'] == report['successes'] / 5
    assert sum(c['trials'] for c in report['per_category'].values()) == 5
    assert report['mean_trial_s'] > 0 and len(report['results']) == 5


def test_cli_writes_json_and_prints_a_summary(tmp_path, capsys):
    out = tmp_path / 'sub' / 'report.json'
    assert grasp_check.main(['--trials', '2', '--seed', '3', '--json', str(out),
                             '--no-progress']) == 0
    report = json.loads(out.read_text())
    assert report['trials'] == 2 and 0.0 <= report['success_rate'] <= 1.0
    assert {'successes', 'per_category', 'mean_trial_s', 'failures'} <= set(report)
    assert capsys.readouterr().out.startswith('grasp-check: ')


def test_cli_rejects_zero_trials(capsys):
    assert grasp_check.main(['--trials', '0', '--no-progress']) == 2
    assert '--trials' in capsys.readouterr().err
