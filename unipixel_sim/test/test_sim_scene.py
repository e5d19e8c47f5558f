"""Scene generator: determinism, vocabulary coverage, layout, model naming, stability."""
import json
import math

import mujoco
import numpy as np
import pytest

from unipixel_sim.scene import (CATEGORIES, COLOR_RGB, COLORS, SIZES, WORKSPACE_X, WORKSPACE_Y,
                                SceneSpec, build_model, generate_scene, object_body_ids,
                                set_observe_pose, settle)

SEEDS = range(40)


def test_same_seed_same_scene_and_json_roundtrip():
    a, b = generate_scene(7), generate_scene(7)
    assert a.to_dict() == b.to_dict()
    assert generate_scene(8).to_dict() != a.to_dict()
    restored = SceneSpec.from_dict(json.loads(json.dumps(a.to_dict())))
    assert restored.to_dict() == a.to_dict()


def test_vocabularies_and_real_dimensions():
    assert len(CATEGORIES) >= 7 and len(COLORS) >= 8 and len(SIZES) >= 2
    rgbs = np.array(list(COLOR_RGB.values()))
    # Colours are distinct: every pair differs by > 0.2 in some channel.
    diff = np.abs(rgbs[:, None] - rgbs[None]).max(-1) + np.eye(len(rgbs))
    assert diff.min() > 0.2
    scenes = [generate_scene(s) for s in SEEDS]
    objects = [o for s in scenes for o in s.objects]
    assert {o.category for o in objects} == set(CATEGORIES)
    assert {o.color for o in objects} == set(COLORS)
    assert any(o.category == 'cup' and o.handle for o in objects)
    assert any(o.category == 'cup' and not o.handle for o in objects)
    for o in objects:
        if o.category != 'bowl':
            assert o.graspable and min(o.extents[:2]) < 0.07, o
        else:
            assert not o.graspable
        assert 0.02 < o.height < 0.25


def test_layout_in_workspace_without_overlap():
    for seed in SEEDS:
        scene = generate_scene(seed)
        assert 3 <= len(scene.objects) <= 8
        for i, a in enumerate(scene.objects):
            assert WORKSPACE_X[0] <= a.x <= WORKSPACE_X[1]
            assert WORKSPACE_Y[0] <= a.y <= WORKSPACE_Y[1]
            for b in scene.objects[i + 1:]:
                gap = math.hypot(a.x - b.x, a.y - b.y) - a.footprint_radius - b.footprint_radius
                assert gap > 0.0


def test_camera_looks_down_at_the_workspace():
    for seed in SEEDS:
        cam = generate_scene(seed).camera
        rot = np.zeros(9)
        mujoco.mju_quat2Mat(rot, np.array(cam.quat))
        forward = -rot.reshape(3, 3)[:, 2]      # MuJoCo cameras look along -z
        pitch = math.degrees(math.asin(-forward[2]))
        assert 30.0 <= pitch <= 60.0
        assert -0.05 <= cam.pos[0] <= 0.10 and 0.55 <= cam.pos[2] <= 0.80
        assert 55.0 <= cam.fovy <= 60.0


@pytest.mark.parametrize('seed', [0, 3, 11])
def test_model_names_and_objects_rest(seed):
    scene = generate_scene(seed)
    model = build_model(scene)
    bodies = object_body_ids(model)
    assert len(bodies) == len(scene.objects)
    for i, body in enumerate(bodies):
        joint = model.joint(f'obj_{i}_joint')
        assert joint.type[0] == mujoco.mjtJoint.mjJNT_FREE and model.jnt_bodyid[joint.id] == body
        # Every geom named after the object belongs to its single body.
        names = [model.geom(g).name for g in np.flatnonzero(model.geom_bodyid == body)]
        assert names and all(n.startswith(f'obj_{i}_geom_') for n in names)
        assert model.body_parentid[body] == 0
    data = mujoco.MjData(model)
    set_observe_pose(model, data)
    start = data.xpos[bodies].copy()
    assert settle(model, data) < 0.005
    # Stays at rest: another second of physics moves nothing by more than a millimetre.
    for _ in range(500):
        mujoco.mj_step(model, data)
    assert np.abs(data.xpos[bodies] - start).max() < 0.006
    up = data.xmat[bodies].reshape(-1, 3, 3)[:, 2, 2]
    assert up.min() > 0.999


def test_robot_attached_when_available():
    model = build_model(generate_scene(0), with_robot=True)
    has_panda = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, 'panda/joint1') >= 0
    try:
        import unipixel_sim.panda  # noqa: F401
        assert has_panda
    except ImportError:
        assert not has_panda
    assert mujoco.mj_name2id(build_model(generate_scene(0), with_robot=False),
                             mujoco.mjtObj.mjOBJ_JOINT, 'panda/joint1') < 0
