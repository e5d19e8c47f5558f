"""Parallel-jaw grasp synthesis on constructed boxes (camera optical frame)."""
import numpy as np
import pytest

from unipixel_ros.perception import (GeometryError, GripperConfig, ObjectBox, best_grasp,
                                     matrix_from_quaternion, quaternion_from_matrix,
                                     synthesize_grasps)

# A table 0.46 m below a camera looking down at 45 degrees (normal points up, to the camera).
UP = np.array([0.0, -np.sqrt(0.5), -np.sqrt(0.5)])
PLANE = np.append(UP, 0.46)
FORWARD = np.array([0.0, np.sqrt(0.5), -np.sqrt(0.5)])  # horizontal, away from the camera
RIGHT = np.cross(UP, FORWARD) * -1.0  # camera x


def _box(length, width, height, yaw_deg=0.0, ground=(0.0, 0.0)):
    """A gravity-aligned box standing on PLANE at horizontal offset ``ground``."""
    yaw = np.radians(yaw_deg)
    a1 = np.cos(yaw) * RIGHT + np.sin(yaw) * FORWARD
    a2 = np.cross(UP, a1)
    foot = -UP * 0.46 + RIGHT * ground[0] + FORWARD * (0.65 + ground[1])
    return ObjectBox(center=foot + UP * height / 2, rotation=np.stack([a1, a2, UP], axis=1),
                     extent=np.array([length, width, height]), gravity_aligned=True)


def _check_frame(g):
    r = g.rotation
    np.testing.assert_allclose(r.T @ r, np.eye(3), atol=1e-12)
    assert np.linalg.det(r) == pytest.approx(1.0)
    np.testing.assert_allclose(r[:, 2], g.approach)
    np.testing.assert_allclose(r[:, 0], np.cross(r[:, 1], r[:, 2]), atol=1e-12)
    np.testing.assert_allclose(matrix_from_quaternion(g.quaternion), r, atol=1e-12)
    assert np.linalg.norm(g.quaternion) == pytest.approx(1.0) and g.quaternion[3] >= 0


def test_top_grasp_across_the_narrow_side_is_best():
    box = _box(0.12, 0.05, 0.03, yaw_deg=25.0)
    grasps = synthesize_grasps(box, PLANE, GripperConfig())
    best = grasps[0]
    assert best.kind == 'top'
    np.testing.assert_allclose(best.approach, -UP, atol=1e-12)
    # Jaws close across the 5 cm side: the box's second axis.
    assert abs(best.jaw_axis @ box.rotation[:, 1]) == pytest.approx(1.0)
    assert best.object_width == pytest.approx(0.05)
    assert best.width == pytest.approx(0.06)  # + 1 cm margin
    # Short object: grasp centre half-way up, over the footprint centre, inside the box.
    height = (best.position - box.center) @ UP + 0.015
    assert height == pytest.approx(0.015)
    assert box.contains(best.position[None])[0]
    # The 12 cm side does not fit the 8 cm gripper, in any candidate.
    assert all(g.object_width <= 0.08 for g in grasps)
    for g in grasps:
        _check_frame(g)
        assert g.approach @ UP <= 1e-12
    assert best_grasp(box, PLANE).score == best.score


def test_tall_object_top_grasp_reaches_finger_depth_down():
    box = _box(0.05, 0.04, 0.20)
    best = best_grasp(box, PLANE, GripperConfig(finger_depth=0.04))
    assert best.kind == 'top'
    height = (best.position - box.center) @ UP + 0.10
    assert height == pytest.approx(0.20 - 0.02)
    assert best.object_width == pytest.approx(0.04)


def test_width_is_clipped_to_max_opening():
    box = _box(0.075, 0.075, 0.05)
    best = best_grasp(box, PLANE)
    assert best.object_width == pytest.approx(0.075)
    assert best.width == pytest.approx(0.08)


def test_side_grasps_come_from_the_camera_side_and_stay_off_the_table():
    box = _box(0.06, 0.04, 0.10, yaw_deg=10.0)
    cfg = GripperConfig()
    grasps = synthesize_grasps(box, PLANE, cfg)
    sides = [g for g in grasps if g.kind == 'side']
    tops = [g for g in grasps if g.kind == 'top']
    assert len(tops) == 2 and sides
    assert min(t.score for t in tops) > max(s.score for s in sides)
    view = box.center / np.linalg.norm(box.center)
    for g in sides:
        _check_frame(g)
        assert abs(g.approach @ UP) < 1e-12  # horizontal
        assert g.approach @ view >= 0  # the gripper comes from the camera's side
        assert box.contains(g.position[None])[0]
        assert (g.position - box.center) @ UP + 0.05 == pytest.approx(0.05)  # half height
        assert g.width <= cfg.max_opening
    # Approaches along +-each footprint axis: only the camera-facing ones survive.
    assert len(sides) == 2


def test_side_grasp_height_keeps_finger_clearance_or_is_dropped():
    cfg = GripperConfig(finger_width=0.02, table_clearance=0.005)
    low = synthesize_grasps(_box(0.06, 0.04, 0.02), PLANE, cfg)
    for g in low:
        if g.kind == 'side':
            assert (g.position - _box(0.06, 0.04, 0.02).center) @ UP + 0.01 >= 0.015 - 1e-12
    flat = synthesize_grasps(_box(0.06, 0.04, 0.012), PLANE, cfg)
    assert all(g.kind == 'top' for g in flat)


def test_object_wider_than_the_gripper_everywhere_raises():
    # 12 x 10 cm footprint, 3 cm tall: both footprint axes exceed the 8 cm opening; the only
    # narrow direction is vertical, and jaws closing vertically would put a finger under the
    # table, so nothing fits.
    box = _box(0.12, 0.10, 0.03, yaw_deg=30.0)
    with pytest.raises(GeometryError, match="object is wider than the gripper's maximum opening "
                                            r'\(8.0 cm\)'):
        synthesize_grasps(box, PLANE, GripperConfig())
    # A bigger gripper takes it across the 10 cm side.
    best = best_grasp(box, PLANE, GripperConfig(max_opening=0.11))
    assert best.object_width == pytest.approx(0.10) and best.width == pytest.approx(0.11)


def test_object_too_thin_for_min_width():
    # A 10 cm rod of 5 mm section: too long one way, thinner than the fingers close the other.
    box = _box(0.10, 0.005, 0.005)
    with pytest.raises(GeometryError, match=r'no feasible grasp .* too small \[0.5\] cm'):
        synthesize_grasps(box, PLANE, GripperConfig(max_opening=0.08, min_width=0.01))
    assert best_grasp(box, PLANE, GripperConfig(min_width=0.0)).object_width == pytest.approx(
        0.005)


def test_without_plane_grasps_face_the_camera():
    rot = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))[0]
    rot[:, 2] *= np.sign(np.linalg.det(rot))
    box = ObjectBox(center=np.array([0.05, -0.02, 0.6]), rotation=rot,
                    extent=np.array([0.05, 0.03, 0.12]))
    grasps = synthesize_grasps(box, None)
    view = box.center / np.linalg.norm(box.center)
    assert grasps and all(g.kind == 'side' for g in grasps)
    for g in grasps:
        _check_frame(g)
        assert g.approach @ view >= 0
        assert box.contains(g.position[None], margin=1e-9)[0]
        assert g.object_width <= 0.08


def test_gripper_config_validation():
    with pytest.raises(GeometryError, match='max_opening'):
        GripperConfig(max_opening=0.0)
    with pytest.raises(GeometryError, match='min_width'):
        GripperConfig(min_width=0.1)


def test_quaternion_helpers_round_trip():
    rng = np.random.default_rng(0)
    for _ in range(50):
        q = rng.normal(size=4)
        q /= np.linalg.norm(q)
        r = matrix_from_quaternion(q)
        np.testing.assert_allclose(r @ r.T, np.eye(3), atol=1e-12)
        q2 = quaternion_from_matrix(r)
        np.testing.assert_allclose(q2, q * np.sign(q[3]), atol=1e-12)
    np.testing.assert_allclose(quaternion_from_matrix(np.diag([1.0, -1.0, -1.0])), [1, 0, 0, 0],
                               atol=1e-12)
