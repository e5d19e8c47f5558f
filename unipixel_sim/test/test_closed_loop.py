"""Closed-loop evaluation: pickers, success judged on the referred object, report and CLI."""
import json
import os

os.environ.setdefault('MUJOCO_GL', 'egl')

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from unipixel_sim import closed_loop  # noqa: E402
from unipixel_sim.cli import main as sim_main  # noqa: E402


@pytest.fixture(scope='module')
def gt_report():
    return closed_loop.evaluate_closed_loop(None, scenes=4, seed=700000, absent=0,
                                            pickers=('gt_mask', 'random'), progress=False)


def test_ground_truth_masks_pick_the_referred_object(gt_report):
    # The perception upper bound: the true mask through the same geometry and grasp as the
    # node. Seen on seeds 700000-700005: 6/6.
    assert gt_report['scenes'] == 4
    assert gt_report['gt_mask_success_rate'] >= 0.75
    for trial in gt_report['trials']:
        gt = trial['gt_mask']
        assert gt['mask_iou'] == 1.0 and gt['found']
        if gt['grasp']:
            assert gt['centroid_error_m'] < 0.015


def test_random_picks_of_other_objects_never_count(gt_report):
    for trial in gt_report['trials']:
        r = trial['random']
        if r['mask_iou'] == 0.0:          # another object's mask
            assert not r['success'] and 'not the target' in r['reason']
    assert gt_report['random_success_rate'] <= gt_report['gt_mask_success_rate']


def test_report_has_the_contract_keys_and_types(gt_report):
    for key in ('pick_success_rate', 'absent_no_grasp_rate', 'gt_mask_success_rate',
                'random_success_rate', 'by_type'):
        assert key in gt_report
    assert gt_report['pick_success_rate'] is None           # no model was given
    assert sum(v['commands'] for v in gt_report['by_type'].values()) == 4
    types = {t['type'] for t in gt_report['trials']}
    assert len(types) >= 3                                  # the scenes rotate through types


def test_choose_prefers_the_wanted_type_and_graspable_targets():
    class O:
        def __init__(self, g):
            self.graspable = g
    objects = [O(False), O(True)]
    exprs = [{'type': 'attribute', 'target': 0}, {'type': 'relation', 'target': 1},
             {'type': 'absent', 'target': None}]
    assert closed_loop._choose(exprs, objects, 'attribute', False)['target'] == 1
    assert closed_loop._choose(exprs, objects, 'relation', False)['type'] == 'relation'
    assert closed_loop._choose(exprs, objects, '', True)['type'] == 'absent'


def test_cli_names_a_missing_checkpoint(tmp_path, capsys):
    code = sim_main(['eval-closed-loop', '--scenes', '1', '--json', str(tmp_path / 'r.json'),
                     '--checkpoint', str(tmp_path / 'missing.safetensors')])
    assert code == 1
    assert 'missing.safetensors' in capsys.readouterr().err
    assert not (tmp_path / 'r.json').exists()


def test_cli_rejects_nonsense_counts(tmp_path, capsys):
    assert sim_main(['eval-closed-loop', '--scenes', '0', '--json', str(tmp_path / 'r.json')]) == 2
    assert '--scenes' in capsys.readouterr().err


def test_write_report_writes_json_and_png(gt_report, tmp_path):
    out = tmp_path / 'loop.json'
    closed_loop.write_report(gt_report, str(out))
    assert json.loads(out.read_text())['scenes'] == 4
    assert (tmp_path / 'loop.png').stat().st_size > 1000
    assert 'ground-truth mask' in closed_loop.summary_line(gt_report)


def test_randomized_scenes_run_the_loop_and_report_held_out_factors(tmp_path):
    """Shifted randomized scenes (sensor images, held-out values): the ground-truth picker runs
    on them, every trial names its scene's held-out factors, and the report groups by them."""
    report = closed_loop.evaluate_closed_loop(None, scenes=2, seed=700000, absent=0,
                                              pickers=('gt_mask',), progress=False,
                                              generator='randomized', split='shifted')
    assert report['scenes'] == 2 and report['generator'] == 'randomized'
    for trial in report['trials']:
        assert trial['held_out'], trial            # a shifted scene always holds one out
        assert trial['gt_mask']['mask_iou'] == 1.0
    factors = report['by_held_out']
    assert sum(v['commands'] for v in factors.values()) >= 2
    assert all(v['pick_success_rate'] is None for v in factors.values())   # no model
    closed_loop.write_report(report, str(tmp_path / 'r.json'))
    assert (tmp_path / 'r.png').stat().st_size > 1000


def test_randomized_scene_matches_the_dataset_generator():
    """The loop's randomized scene is the one `generate --generator randomized` writes: same
    sensor image and the same first expressions (the loop asks for more of them)."""
    from unipixel_sim.generate import render_scene
    scene = closed_loop.randomized_loop_scene(950001, 'train', n_expressions=4)
    written = render_scene(950001, generator='randomized', split='train')
    assert np.array_equal(scene.frame.rgb, written.frame.rgb)
    assert np.array_equal(scene.frame.depth, written.frame.depth)
    assert [e['text'] for e in scene.expressions] == [e['text'] for e in written.expressions]
    assert scene.held_out == []


def test_shifted_closed_loop_needs_the_randomized_generator(tmp_path, capsys):
    assert sim_main(['eval-closed-loop', '--scenes', '1', '--split', 'shifted',
                     '--json', str(tmp_path / 'r.json')]) == 2
    assert 'randomized' in capsys.readouterr().err
    with pytest.raises(ValueError):
        closed_loop.scene_source('default', 'shifted')
