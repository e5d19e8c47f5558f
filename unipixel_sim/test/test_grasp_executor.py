"""GraspExecutor on a hand-made scene: success, clear failure reasons, frames, the on_step hook
and cancellation through it, reset."""
import os

os.environ.setdefault('MUJOCO_GL', 'egl')

import mujoco  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from unipixel_sim import panda  # noqa: E402
from unipixel_sim.grasp_executor import (ExecutorConfig, GraspCanceled,  # noqa: E402
                                         GraspExecutor, pose_from_camera)

OBJECTS = [
    panda.PrimitiveObject('box', [0.02, 0.03, 0.04], [0.50, 0.00, 0.04], yaw=0.3, mass=0.3),
    panda.PrimitiveObject('cylinder', [0.03, 0.06], [0.45, 0.15, 0.06], mass=0.4),
    panda.PrimitiveObject('sphere', [0.025], [0.55, -0.15, 0.025], mass=0.1),
]


def _top_down(yaw):
    jaw = np.array([np.cos(yaw), np.sin(yaw), 0.0])
    approach = np.array([0.0, 0.0, -1.0])
    return np.stack([np.cross(jaw, approach), jaw, approach], axis=1)


@pytest.fixture(scope='module')
def scene():
    model = panda.build_panda_test_scene(OBJECTS)
    data = mujoco.MjData(model)
    return model, data, GraspExecutor(model, data)


@pytest.mark.parametrize('body, position, yaw, width', [
    ('obj_0', [0.50, 0.00, 0.05], 0.3, 0.04),
    ('obj_1', [0.45, 0.15, 0.06], 0.0, 0.06),
    ('obj_2', [0.55, -0.15, 0.025], 1.0, 0.05),
])
def test_grasp_lifts_and_holds_the_target(scene, body, position, yaw, width):
    _, _, executor = scene
    executor.reset()
    out = executor.execute(np.array(position), _top_down(yaw), width, body)
    assert out.success, out.reason
    assert out.reason == 'ok'
    assert out.lifted_height_m >= 0.10
    assert out.held_s == pytest.approx(1.0, abs=0.01)
    assert out.ik_error < 1e-3
    assert out.timings['sim_s'] > 3.0 and out.timings['total'] > 0


def test_target_found_between_the_fingers_when_not_given(scene):
    _, _, executor = scene
    executor.reset()
    out = executor.execute(np.array([0.50, 0.00, 0.05]), _top_down(0.3), 0.04, None)
    assert out.success, out.reason
    assert out.target_body == 'obj_0'


def test_on_step_hears_every_phase_on_schedule(scene):
    _, _, executor = scene
    executor.reset()
    calls = []
    out = executor.execute(np.array([0.50, 0.00, 0.05]), _top_down(0.3), 0.04, 'obj_0',
                           on_step=lambda data, phase, t: calls.append((phase, t, data.time)))
    assert out.success, out.reason
    phases = [p for k, (p, _, _) in enumerate(calls) if k == 0 or calls[k - 1][0] != p]
    assert phases == ['plan', 'move', 'approach', 'close', 'lift', 'hold']
    times = np.array([t for _, t, _ in calls])
    assert times[0] == 0.0 and np.all(np.diff(times) >= 0)
    assert np.diff(times).max() <= executor.config.frame_dt + 1e-9
    assert times[-1] == pytest.approx(out.timings['sim_s'], abs=executor.config.frame_dt)
    # sim_time counts from the start of the grasp, the state is the live one.
    assert np.allclose(np.array([d for _, _, d in calls]) - times, calls[0][2])


@pytest.mark.parametrize('stop_in', ['plan', 'close'])
def test_on_step_cancels_the_grasp(scene, stop_in):
    _, _, executor = scene
    executor.reset()
    seen = []

    def on_step(data, phase, sim_time):
        seen.append(phase)
        if phase == stop_in:
            raise GraspCanceled('stop requested')

    out = executor.execute(np.array([0.50, 0.00, 0.05]), _top_down(0.3), 0.04, 'obj_0',
                           on_step=on_step)
    assert not out.success
    assert out.reason == 'canceled: stop requested'
    assert seen[-1] == stop_in and seen.count(stop_in) == 1
    assert 'lift' not in out.timings
    # The hook is per call: the next grasp runs without it.
    executor.reset()
    assert executor.execute(np.array([0.50, 0.00, 0.05]), _top_down(0.3), 0.04, 'obj_0').success


def test_out_of_reach_is_a_clear_failure(scene):
    _, _, executor = scene
    executor.reset()
    out = executor.execute(np.array([1.5, 0.0, 0.05]), _top_down(0.0), 0.04, 'obj_0')
    assert not out.success
    assert out.reason.startswith('unreachable:')
    assert 'pre-grasp' in out.reason and 'residual' in out.reason
    assert out.ik_error > 0.1


def test_width_over_max_opening_is_rejected(scene):
    model, data, executor = scene
    executor.reset()
    before = data.qpos.copy()
    out = executor.execute(np.array([0.5, 0.0, 0.05]), _top_down(0.0), 0.085, 'obj_0')
    assert not out.success
    assert out.reason.startswith('width_too_large:') and '0.080' in out.reason
    assert np.array_equal(data.qpos, before)  # nothing was simulated


def test_bad_inputs_are_reported_not_raised(scene):
    _, _, executor = scene
    assert executor.execute([0.5, 0, 0.05], _top_down(0), 0.0, 'obj_0').reason.startswith(
        'invalid_width:')
    assert executor.execute([0.5, 0, 0.05], _top_down(0), 0.04, 'nope').reason.startswith(
        'unknown_target:')


def test_grasping_empty_table_is_a_miss(scene):
    _, _, executor = scene
    executor.reset()
    out = executor.execute(np.array([0.40, -0.05, 0.03]), _top_down(0.0), 0.04, 'obj_0')
    assert not out.success
    assert out.reason.startswith('missed:')


def test_grasp_below_the_table_is_lifted_clear(scene):
    _, _, executor = scene
    executor.reset()
    # A 5 cm ball grasped at its centre height minus 2 cm would put the fingertips in the table.
    out = executor.execute(np.array([0.55, -0.15, 0.005]), _top_down(0.0), 0.05, 'obj_2')
    assert out.grasp_shift_m == pytest.approx(executor.config.table_clearance
                                              + panda.TCP_TO_FINGERTIP - 0.005, abs=1e-6)
    assert out.success, out.reason


def test_reset_restores_the_scene(scene):
    model, data, executor = scene
    executor.reset()
    start = data.qpos.copy()
    executor.execute(np.array([0.45, 0.15, 0.06]), _top_down(0.0), 0.06, 'obj_1')
    assert not np.allclose(data.qpos, start, atol=1e-3)
    executor.reset()
    assert np.allclose(data.qpos, start, atol=1e-6)
    assert data.time == pytest.approx(0.1, abs=1e-9)


def _camera_pose():
    """(4, 4) optical frame 0.6 m above the table looking down at (0.5, 0, 0), image x = -y."""
    t = np.eye(4)
    t[:3, :3] = np.array([[0.0, -1.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 0.0, -1.0]])
    t[:3, 3] = [0.5, 0.0, 0.6]
    return t


def test_pose_from_camera_round_trip():
    t_wc = _camera_pose()
    rot_world = _top_down(0.7)
    pos_world = np.array([0.45, 0.1, 0.03])
    rot_cam = t_wc[:3, :3].T @ rot_world
    pos_cam = t_wc[:3, :3].T @ (pos_world - t_wc[:3, 3])
    quat_wxyz = np.empty(4)
    mujoco.mju_mat2Quat(quat_wxyz, rot_cam.ravel())
    pos, rot = pose_from_camera(pos_cam, np.roll(quat_wxyz, -1), t_wc)
    assert np.allclose(pos, pos_world) and np.allclose(rot, rot_world)


def test_execute_in_camera_frame(scene):
    _, _, executor = scene
    executor.reset()
    t_wc = _camera_pose()
    rot_cam = t_wc[:3, :3].T @ _top_down(0.3)
    pos_cam = t_wc[:3, :3].T @ (np.array([0.50, 0.00, 0.05]) - t_wc[:3, 3])
    quat_wxyz = np.empty(4)
    mujoco.mju_mat2Quat(quat_wxyz, rot_cam.ravel())
    out = executor.execute_in_camera_frame(pos_cam, np.roll(quat_wxyz, -1), 0.04, t_wc, 'obj_0')
    assert out.success, out.reason


def test_record_returns_frames():
    model = panda.build_panda_test_scene(OBJECTS[:1])
    data = mujoco.MjData(model)
    try:
        renderer = mujoco.Renderer(model, 64, 80)
    except Exception as exc:  # no usable OpenGL backend on this machine
        pytest.skip(f'no offscreen rendering: {exc}')
    with renderer:
        # Few frames: offscreen rendering is software GL on CI machines.
        executor = GraspExecutor(model, data, config=ExecutorConfig(frame_dt=0.5),
                                 renderer=renderer, camera='overview')
        out = executor.execute(np.array([0.50, 0.00, 0.05]), _top_down(0.3), 0.04, 'obj_0',
                               record=True)
    assert out.success, out.reason
    assert len(out.frames) >= int(out.timings['sim_s'] / executor.config.frame_dt) - 1
    assert out.frames[0].shape == (64, 80, 3) and out.frames[0].dtype == np.uint8
    assert executor.execute(np.array([0.5, 0, 0.05]), _top_down(0.3), 0.04).frames is None
