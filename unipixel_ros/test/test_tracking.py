"""Object tracker: EMA convergence, grasp-rotation symmetries, lost/reacquire, jump guard."""
import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from unipixel_ros.perception.tracking import (ObjectTracker, nearest_grasp_quaternion, slerp)

RNG = np.random.default_rng(0)
Q_ID = np.array([0.0, 0.0, 0.0, 1.0])


def angle_deg(q0, q1):
    return np.degrees((Rotation.from_quat(q0).inv() * Rotation.from_quat(q1)).magnitude())


def grasp_angle_deg(q0, q1):
    """Angle between two parallel-jaw grasps, the half turn about the approach axis included."""
    return angle_deg(nearest_grasp_quaternion(q1, q0), q0)


def see(tracker, centroid=(0.0, 0.0, 0.5), q=Q_ID, mask=None, width=0.05, t=0.0):
    return tracker.update(True, mask, np.asarray(centroid), np.asarray(centroid), q, width, t)


def test_ema_converges_to_a_constant_input():
    tr = ObjectTracker(mask_alpha=0.5, pose_alpha=0.3)
    st = see(tr, centroid=(0.0, 0.0, 0.50), width=0.04, mask=np.zeros((4, 5)))
    assert st.status == 'tracking' and st.restarted and not st.lost
    target = np.array([0.02, -0.01, 0.52])  # within max_jump_m
    for k in range(40):
        st = see(tr, centroid=target, width=0.06, mask=np.ones((4, 5)), t=k)
    assert st.status == 'tracking' and not st.restarted
    np.testing.assert_allclose(st.centroid, target, atol=1e-6)
    np.testing.assert_allclose(st.grasp_position, target, atol=1e-6)
    assert st.grasp_width == pytest.approx(0.06, abs=1e-6)
    np.testing.assert_allclose(st.mask_prob, 1.0, atol=1e-6)
    assert st.mask_prob.dtype == np.float32 and st.mask_prob.shape == (4, 5)


def test_one_step_is_the_documented_ema():
    tr = ObjectTracker(pose_alpha=0.25, mask_alpha=0.5)
    see(tr, centroid=(0.0, 0.0, 0.5), mask=np.zeros((2, 2)))
    st = see(tr, centroid=(0.04, 0.0, 0.5), mask=np.ones((2, 2)))
    np.testing.assert_allclose(st.centroid, [0.01, 0.0, 0.5])
    np.testing.assert_allclose(st.mask_prob, 0.5)


def test_slerp_endpoints_and_midpoint():
    q1 = Rotation.from_euler('z', 90, degrees=True).as_quat()
    np.testing.assert_allclose(slerp(Q_ID, q1, 0.0), Q_ID, atol=1e-12)
    np.testing.assert_allclose(slerp(Q_ID, q1, 1.0), q1, atol=1e-12)
    assert angle_deg(Q_ID, slerp(Q_ID, q1, 0.5)) == pytest.approx(45.0)


def test_quaternion_sign_flips_do_not_disturb_the_rotation():
    base = Rotation.from_euler('xyz', [20, -30, 40], degrees=True)
    tr = ObjectTracker(pose_alpha=0.3)
    for k in range(30):
        jitter = Rotation.from_rotvec(RNG.normal(0, np.radians(2), 3))
        q = (jitter * base).as_quat()
        st = see(tr, q=q if k % 2 else -q)
        assert np.linalg.norm(st.grasp_quaternion) == pytest.approx(1.0)
        assert angle_deg(st.grasp_quaternion, base.as_quat()) < 5.0


def test_jaw_symmetry_keeps_the_smoothed_grasp_between_the_inputs():
    approach_tilt = Rotation.from_euler('x', 30, degrees=True)
    q_a = (approach_tilt * Rotation.from_euler('z', 10, degrees=True)).as_quat()
    # The same grasp as a 20-degree yaw, reported with the fingers swapped (half turn about z).
    q_b = (approach_tilt * Rotation.from_euler('z', 20 + 180, degrees=True)).as_quat()
    assert angle_deg(q_a, q_b) == pytest.approx(170.0)
    assert grasp_angle_deg(q_a, q_b) == pytest.approx(10.0)

    tr = ObjectTracker(pose_alpha=0.5)
    see(tr, q=q_a)
    q = see(tr, q=-q_b).grasp_quaternion
    assert np.linalg.norm(q) == pytest.approx(1.0)
    # Halfway between the two grasps, not a rotation swung 85 degrees away from both.
    assert grasp_angle_deg(q_a, q) == pytest.approx(5.0, abs=1e-6)
    assert grasp_angle_deg(q_b, q) == pytest.approx(5.0, abs=1e-6)
    # Continuous with the first estimate: the output never flips by a half turn.
    assert angle_deg(q_a, q) == pytest.approx(5.0, abs=1e-6)


def test_nearest_grasp_quaternion_picks_the_closest_of_four():
    ref = Rotation.from_euler('xyz', [5, 10, 15], degrees=True).as_quat()
    swap = Rotation.from_euler('z', 180, degrees=True)
    for q in (ref, -ref, (Rotation.from_quat(ref) * swap).as_quat(),
              -(Rotation.from_quat(ref) * swap).as_quat()):
        np.testing.assert_allclose(nearest_grasp_quaternion(q, ref), ref, atol=1e-12)


def test_misses_coast_then_lose_and_reacquire_restarts():
    tr = ObjectTracker(max_misses=3)
    assert tr.update(False).status == 'lost'  # nothing to track yet
    see(tr, centroid=(0.0, 0.0, 0.5), mask=np.ones((3, 3)), t=1.0)
    for k in (1, 2):
        st = tr.update(False, stamp_s=1.0 + k)
        assert st.status == 'coasting' and not st.lost and st.consecutive_misses == k
        np.testing.assert_allclose(st.centroid, [0.0, 0.0, 0.5])  # held while coasting
        assert st.last_seen_s == 1.0
    st = see(tr, centroid=(0.01, 0.0, 0.5), t=4.0)  # back before max_misses: keeps averaging
    assert st.status == 'tracking' and not st.restarted and st.consecutive_misses == 0
    np.testing.assert_allclose(st.centroid, [0.003, 0.0, 0.5])
    for k in range(3):
        st = tr.update(False, stamp_s=5.0 + k)
    assert st.status == 'lost' and st.lost and st.consecutive_misses == 3
    assert st.centroid is None and st.mask_prob is None and st.grasp_quaternion is None
    st = see(tr, centroid=(0.3, 0.0, 0.6), mask=np.zeros((3, 3)), t=9.0)
    assert st.status == 'reacquired' and st.restarted and not st.lost
    np.testing.assert_allclose(st.centroid, [0.3, 0.0, 0.6])  # no memory of the old track
    np.testing.assert_allclose(st.mask_prob, 0.0)
    assert see(tr, centroid=(0.3, 0.0, 0.6)).status == 'tracking'


def test_jump_guard_restarts_instead_of_averaging_two_objects():
    tr = ObjectTracker(max_jump_m=0.10)
    see(tr, centroid=(0.0, 0.0, 0.5), width=0.03)
    st = see(tr, centroid=(0.05, 0.0, 0.5), width=0.03)  # 5 cm: the same object moved
    assert st.status == 'tracking' and not st.restarted
    st = see(tr, centroid=(0.25, 0.0, 0.5), width=0.07)  # 23.5 cm from the estimate
    assert st.status == 'reacquired' and st.restarted
    np.testing.assert_allclose(st.centroid, [0.25, 0.0, 0.5])
    assert st.grasp_width == pytest.approx(0.07)


def test_mask_ema_resets_when_the_image_size_changes():
    tr = ObjectTracker(mask_alpha=0.5)
    see(tr, mask=np.zeros((4, 6)))
    assert see(tr, mask=np.ones((4, 6))).mask_prob.mean() == pytest.approx(0.5)
    st = see(tr, mask=np.full((2, 3), 0.8))
    assert st.mask_prob.shape == (2, 3) and not st.restarted
    np.testing.assert_allclose(st.mask_prob, 0.8)


def test_missing_parts_of_a_found_frame_keep_their_estimate():
    tr = ObjectTracker()
    see(tr, centroid=(0.0, 0.0, 0.5), width=0.04)
    st = tr.update(True, mask_prob=np.ones((2, 2)), stamp_s=1.0)
    np.testing.assert_allclose(st.grasp_position, [0.0, 0.0, 0.5])
    assert st.grasp_width == pytest.approx(0.04) and st.status == 'tracking'


def test_caller_arrays_are_not_aliased():
    tr = ObjectTracker()
    c, m = np.array([0.0, 0.0, 0.5]), np.zeros((2, 2), np.float32)
    tr.update(True, m, c, None, None, None, 0.0)
    c[:] = 9.0
    m[:] = 9.0
    st = tr.update(False)
    np.testing.assert_allclose(st.centroid, [0.0, 0.0, 0.5])
    np.testing.assert_allclose(st.mask_prob, 0.0)


@pytest.mark.parametrize('kwargs,match', [
    (dict(mask_prob=np.zeros(4)), r'\(H, W\)'),
    (dict(centroid=[0.0, 1.0]), 'centroid'),
    (dict(grasp_position=[0.0, 0.0, 0.5]), 'together'),
    (dict(grasp_position=[0.0, 0.0, 0.5], grasp_quaternion=[0, 0, 0, 0]), 'zero norm'),
])
def test_bad_inputs_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ObjectTracker().update(True, **kwargs)


@pytest.mark.parametrize('kwargs', [dict(mask_alpha=0.0), dict(pose_alpha=1.5),
                                    dict(max_misses=0), dict(max_jump_m=0.0)])
def test_bad_parameters_raise(kwargs):
    with pytest.raises(ValueError):
        ObjectTracker(**kwargs)


def test_reset_forgets_the_target():
    tr = ObjectTracker()
    see(tr, centroid=(0.0, 0.0, 0.5))
    tr.reset()
    st = tr.update(False)
    assert st.status == 'lost' and st.lost and st.centroid is None
    st = see(tr, centroid=(0.5, 0.0, 0.5))
    assert st.status == 'tracking' and st.restarted
    np.testing.assert_allclose(st.centroid, [0.5, 0.0, 0.5])
