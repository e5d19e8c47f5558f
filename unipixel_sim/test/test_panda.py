"""The Panda model (attach, TCP, gripper geometry) and its damped-least-squares IK."""
import os

os.environ.setdefault('MUJOCO_GL', 'egl')

import mujoco  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from unipixel_sim import panda  # noqa: E402


@pytest.fixture(scope='module')
def robot():
    model = panda.build_panda_test_scene([])
    data = mujoco.MjData(model)
    panda.set_ready_pose(model, data)
    return model, data, panda.PandaIndex.from_model(model)


def _top_down(yaw):
    """(3, 3) gripper frame approaching straight down, jaws along (cos yaw, sin yaw, 0)."""
    jaw = np.array([np.cos(yaw), np.sin(yaw), 0.0])
    approach = np.array([0.0, 0.0, -1.0])
    return np.stack([np.cross(jaw, approach), jaw, approach], axis=1)


def _rot_x(angle):
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def test_attach_names_prefix_and_ready_pose(robot):
    model, data, idx = robot
    for name in ('panda/link0', 'panda/left_finger', 'panda/right_finger'):
        assert model.body(name).id > 0
    assert model.actuator('panda/gripper').id == idx.gripper_ctrl
    assert model.opt.integrator == mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    assert np.allclose(data.xpos[model.body('panda/link0').id], 0.0)
    pos, rot = panda.tcp_pose(model, data, idx)
    assert np.allclose(rot[:, 2], [0, 0, -1], atol=1e-2)  # approach points down
    assert 0.3 < pos[2] < 0.45 and 0.35 < pos[0] < 0.55


@pytest.mark.parametrize('opening', [0.0, 0.03, 0.08])
def test_tcp_is_midway_between_the_pads_and_opening_matches(opening):
    model = panda.build_panda_test_scene([])
    data = mujoco.MjData(model)
    panda.set_ready_pose(model, data, opening=opening)
    idx = panda.PandaIndex.from_model(model)
    tcp, rot = panda.tcp_pose(model, data, idx)
    pads = [model.geom('panda/left_finger_pad').id, model.geom('panda/right_finger_pad').id]
    # Inner face centre of each pad, in the TCP frame.
    faces = []
    for g, side in zip(pads, (1.0, -1.0)):
        centre = (data.geom_xpos[g] - tcp) @ rot
        faces.append(centre - side * np.array([0, model.geom_size[g][1], 0]))
    left, right = faces
    assert left[1] - right[1] == pytest.approx(opening, abs=2e-4)   # jaw gap along y
    assert (left + right)[1] / 2 == pytest.approx(0.0, abs=2e-4)    # centred
    assert left[0] == pytest.approx(0.0, abs=1e-4)
    tip = max(left[2], right[2]) + model.geom_size[pads[0]][2]
    assert tip == pytest.approx(panda.TCP_TO_FINGERTIP, abs=1e-3)


def test_ik_reaches_reachable_poses(robot):
    model, _, idx = robot
    scratch = mujoco.MjData(model)
    rng = np.random.default_rng(3)
    for _ in range(25):
        pos = np.array([rng.uniform(0.35, 0.65), rng.uniform(-0.25, 0.25), rng.uniform(0.02, 0.3)])
        # Jaw yaw within 1.5 rad of the ready pose's (world -y), clear of the joint 7 limits.
        yaw = -np.pi / 2 + rng.uniform(-1.5, 1.5)
        rot = _top_down(yaw) @ _rot_x(rng.uniform(-0.4, 0.4))
        res = panda.solve_ik(model, scratch, idx, pos, rot, panda.READY_QPOS)
        assert res.success, (pos, res)
        # Check the answer by forward kinematics, independently of the solver's bookkeeping.
        check = mujoco.MjData(model)
        check.qpos[idx.arm_qpos] = res.qpos
        mujoco.mj_kinematics(model, check)
        got_pos, got_rot = panda.tcp_pose(model, check, idx)
        assert np.linalg.norm(got_pos - pos) < 5e-3
        angle = np.arccos(np.clip((np.trace(got_rot.T @ rot) - 1) / 2, -1, 1))
        assert np.degrees(angle) < 3.0
        assert np.all(res.qpos >= idx.arm_range[:, 0]) and np.all(res.qpos <= idx.arm_range[:, 1])


def test_ik_reports_unreachable_pose_with_residual(robot):
    model, _, idx = robot
    res = panda.solve_ik(model, mujoco.MjData(model), idx, np.array([1.6, 0.0, 0.1]),
                         _top_down(0.0), panda.READY_QPOS)
    assert not res.success
    assert res.position_error > 0.5
    assert np.all(res.qpos >= idx.arm_range[:, 0]) and np.all(res.qpos <= idx.arm_range[:, 1])


def test_robot_holds_ready_pose_under_gravity(robot):
    model, _, idx = robot
    data = mujoco.MjData(model)
    panda.set_ready_pose(model, data)
    start, _ = panda.tcp_pose(model, data, idx)
    for _ in range(500):
        mujoco.mj_step(model, data)
    end, _ = panda.tcp_pose(model, data, idx)
    assert np.linalg.norm(end - start) < 1e-3
