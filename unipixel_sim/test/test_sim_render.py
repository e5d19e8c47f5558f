"""Renderer: image shapes, intrinsics, optical-frame pose, metric depth, instance ids, timing."""
import math
import time

import mujoco
import numpy as np
import pytest

from unipixel_sim.render import SceneRenderer
from unipixel_sim.scene import build_model, generate_scene, set_observe_pose, settle


@pytest.fixture(scope='module')
def rendered():
    scene = generate_scene(5)
    model = build_model(scene)
    data = mujoco.MjData(model)
    set_observe_pose(model, data)
    settle(model, data)
    renderer = SceneRenderer(model, 640, 480, scene=scene)
    frame = renderer.render(data, 'head')
    yield scene, model, data, renderer, frame
    renderer.close()


def test_frame_contents(rendered):
    scene, model, _, _, frame = rendered
    assert frame.rgb.shape == (480, 640, 3) and frame.rgb.dtype == np.uint8
    assert frame.depth.shape == (480, 640) and frame.depth.dtype == np.float32
    assert frame.instances.shape == (480, 640) and frame.instances.dtype == np.int16
    k = frame.intrinsics
    fy = 240.0 / math.tan(math.radians(scene.camera.fovy) / 2.0)
    assert (k.fx, k.fy, k.cx, k.cy) == pytest.approx((fy, fy, 319.5, 239.5))
    assert set(np.unique(frame.instances)) <= set(range(len(scene.objects) + 1))
    for obj in frame.objects:
        assert obj.visible_pixels == int(np.sum(frame.instances == obj.index + 1))
        assert obj.center_camera[2] > 0.2          # in front of the camera
    # Optical frame: z forward (down towards the table), y down in the image.
    rot = frame.T_world_camera[:3, :3]
    assert np.allclose(rot.T @ rot, np.eye(3), atol=1e-9)
    assert rot[2, 2] < -0.4 and rot[2, 1] < 0.0


def test_object_centres_project_onto_their_masks(rendered):
    _, _, _, _, frame = rendered
    k = frame.intrinsics
    for obj in frame.objects:
        if obj.visible_pixels < 300:
            continue
        x, y, z = obj.center_camera
        u, v = k.fx * x / z + k.cx, k.fy * y / z + k.cy
        vs, us = np.nonzero(frame.instances == obj.index + 1)
        assert us.min() - 2 <= u <= us.max() + 2 and vs.min() - 2 <= v <= vs.max() + 2


def test_depth_is_metric_along_the_optical_axis(rendered):
    _, model, data, _, frame = rendered
    k, pose = frame.intrinsics, frame.T_world_camera
    vs, us = np.mgrid[0:480:6, 0:640:6]
    rays = np.stack([(us - k.cx) / k.fx, (vs - k.cy) / k.fy, np.ones(us.shape)], -1)
    rays = rays.reshape(-1, 3)
    world = rays @ pose[:3, :3].T
    norm = np.linalg.norm(world, axis=1)
    n = len(world)
    geom, dist = np.zeros(n, np.int32), np.zeros(n)
    mujoco.mj_multiRay(model, data, pose[:3, 3].copy(), (world / norm[:, None]).ravel(), None, 1,
                       -1, geom, dist, None, n, 100.0)
    depth = frame.depth[vs, us].ravel()
    hit = (dist > 0) & (depth > 0)
    assert hit.mean() > 0.9
    err = np.abs(depth[hit] - dist[hit] / norm[hit])
    assert np.median(err) < 1e-4 and np.percentile(err, 95) < 1e-3


def test_render_time(rendered):
    _, _, data, renderer, _ = rendered
    times = []
    for _ in range(5):
        start = time.perf_counter()
        renderer.render(data, 'head')
        times.append(time.perf_counter() - start)
    ms = 1000.0 * float(np.median(times))
    print(f'\nrgb+depth+seg 640x480: {ms:.0f} ms')
    assert ms < 1000.0
