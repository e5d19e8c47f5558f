"""`make demo`'s orchestrator end to end: three real ROS 2 processes, scripted commands, report.

Needs the shipped checkpoint (or UNIPIXEL_TEST_CHECKPOINT). Takes about a minute on 2 cores.
"""
import json
import os
from pathlib import Path

import pytest

pytest.importorskip('rclpy')

from unipixel_ros.inference.loading import DEFAULT_CHECKPOINT  # noqa: E402
from unipixel_sim import demo  # noqa: E402

pytestmark = pytest.mark.ros
CHECKPOINT = Path(os.environ.get('UNIPIXEL_TEST_CHECKPOINT', DEFAULT_CHECKPOINT))


@pytest.fixture(scope='module')
def demo_run(tmp_path_factory):
    if not CHECKPOINT.is_file():
        pytest.skip(f'no trained checkpoint at {CHECKPOINT} (set UNIPIXEL_TEST_CHECKPOINT)')
    out = tmp_path_factory.mktemp('demo_out')
    code = demo.main(['--out', str(out), '--checkpoint', str(CHECKPOINT),
                      '--seed', str(demo.DEFAULT_SEED)])
    return code, out


def test_demo_exits_0_and_writes_one_entry_per_command(demo_run):
    code, out = demo_run
    assert code == 0, (out / 'logs' / 'unipixel_node.log').read_text()[-3000:]
    summary = json.loads((out / 'summary.json').read_text())
    types = [e['type'] for e in summary['commands']]
    assert 'attribute' in types and 'absent' in types and len(types) >= 4
    report = (out / 'report.md').read_text()
    for e in summary['commands']:
        assert e['command'] in report
        assert e['found'] is not None and e['reply']          # the node answered each one
        assert 'overlay' in e['files'] and (out / e['files']['overlay']).is_file()
        assert 'gif' in e['files'] and (out / e['files']['gif']).is_file()


def test_demo_leaves_the_absent_object_and_judges_picks_on_the_referred_object(demo_run):
    _, out = demo_run
    commands = json.loads((out / 'summary.json').read_text())['commands']
    absent = next(e for e in commands if e['type'] == 'absent')
    assert not absent['found'] and not absent['grasp_published']
    for e in commands:
        if e['grasp_success']:
            assert e['lifted'] and e['lifted_object'] == e['target']
            assert (out / e['files']['cloud']).stat().st_size > 0
    # seen with unipixel_sim_v1 on the default scene: 2 of 4 picks succeed
    assert sum(bool(e['grasp_success']) for e in commands) >= 1


def test_demo_picks_the_attribute_target(demo_run):
    _, out = demo_run
    commands = json.loads((out / 'summary.json').read_text())['commands']
    attribute = next(e for e in commands if e['type'] == 'attribute')
    assert attribute['found'] and attribute['mask_iou'] >= 0.8
    assert attribute['grasp_success'], attribute
