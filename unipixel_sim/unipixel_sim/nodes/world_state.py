"""The shared world of the sim nodes, without rclpy: scene building, ground-truth JSON, depth
encoding and the grasp target rule.

``sim_camera`` owns the scene (seed -> settled state) and announces it as the JSON document of
:func:`scene_document`; ``grasp_executor`` rebuilds the identical model from that document with
:func:`world_from_document`, using the camera's settled ``qpos`` so that both processes start from
the same state bit for bit.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import Optional, Sequence

os.environ.setdefault('MUJOCO_GL', 'egl')

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from ..render import Frame  # noqa: E402
from ..scene import (SceneSpec, build_model, generate_scene, object_body_ids,  # noqa: E402
                     set_observe_pose, settle)

#: Depth encodings the camera publishes (depth_image_proc convention).
DEPTH_ENCODINGS = ('16UC1', '32FC1')
#: Version of the ``sim/scene`` JSON layout.
SCENE_DOCUMENT_VERSION = 1


@dataclass
class World:
    """A compiled scene and its state.

    Attributes:
        spec: the scene description.
        model, data: MuJoCo model (robot attached) and state.
        settled_qpos: (nq,) state after settling with the arm in the observe pose.
    """

    spec: SceneSpec
    model: mujoco.MjModel
    data: mujoco.MjData
    settled_qpos: np.ndarray


def build_world(seed: int) -> World:
    """Scene ``seed`` with the Panda, arm parked in the observe pose, objects settled."""
    spec = generate_scene(seed)
    model = build_model(spec, with_robot=True)
    data = mujoco.MjData(model)
    set_observe_pose(model, data)
    settle(model, data)
    return World(spec, model, data, data.qpos.copy())


def world_from_document(doc: dict) -> World:
    """Rebuild the world announced in a :func:`scene_document` (its settled state, not the
    current one, so that a late joiner never starts from a mid-grasp state)."""
    spec = SceneSpec.from_dict(doc['scene'])
    model = build_model(spec, with_robot=True)
    data = mujoco.MjData(model)
    qpos = np.asarray(doc['settled_qpos'], dtype=np.float64)
    if qpos.shape != (model.nq,):
        raise ValueError(f'settled_qpos has {qpos.size} values, the model has nq={model.nq}')
    world = World(spec, model, data, qpos)
    apply_state(world, qpos)
    return world


def apply_state(world: World, qpos: np.ndarray) -> None:
    """Show ``qpos`` (nq,): set it, zero velocities and recompute kinematics (mj_forward)."""
    world.data.qpos[:] = qpos
    world.data.qvel[:] = 0.0
    mujoco.mj_forward(world.model, world.data)


def scene_document(world: World, frame: Frame, frame_id: str, stamp: dict,
                   state_version: int) -> dict:
    """JSON-ready ground truth of the world as rendered in ``frame``.

    Args:
        world: the camera's world.
        frame: the frame rendered from the current state.
        frame_id: optical frame name of the published images.
        stamp: ``{'sec', 'nanosec'}`` of the image messages rendered from this state.
        state_version: increments with every world state the camera applies (0 = settled).
    Returns:
        ``version``, ``seed``, ``scene`` (:meth:`SceneSpec.to_dict`), ``frame_id``, ``stamp``,
        ``state_version``, ``width``, ``height``, ``K`` (3x3 row-major), ``T_world_camera`` (4x4,
        optical frame in the world, metres), ``settled_qpos`` (nq,), ``objects`` (per object:
        ``body`` name plus :class:`~unipixel_sim.render.ObjectTruth` fields, poses in world and
        camera frames, metres).
    """
    k = frame.intrinsics
    objects = []
    for truth in frame.objects:
        entry = truth.to_dict()
        entry['body'] = f'obj_{truth.index}'
        objects.append(entry)
    return {
        'version': SCENE_DOCUMENT_VERSION,
        'seed': world.spec.seed,
        'scene': world.spec.to_dict(),
        'frame_id': frame_id,
        'stamp': stamp,
        'state_version': int(state_version),
        'width': k.width,
        'height': k.height,
        'K': [[k.fx, 0.0, k.cx], [0.0, k.fy, k.cy], [0.0, 0.0, 1.0]],
        'T_world_camera': frame.T_world_camera.tolist(),
        'settled_qpos': world.settled_qpos.tolist(),
        'objects': objects,
    }


def encode_depth(depth_m: np.ndarray, encoding: str) -> np.ndarray:
    """(H, W) float32 metres (0 = no reading) -> 16UC1 uint16 millimetres (saturating at
    65.535 m) or 32FC1 float32 metres."""
    if encoding == '32FC1':
        return depth_m.astype(np.float32, copy=False)
    if encoding == '16UC1':
        return np.clip(np.rint(depth_m * 1000.0), 0, 65535).astype(np.uint16)
    raise ValueError(f'unknown depth encoding {encoding!r}; use one of {DEPTH_ENCODINGS}')


def degrade_depth(depth_m: np.ndarray, noise_m: float, hole_fraction: float,
                  rng: np.random.Generator) -> np.ndarray:
    """Sensor-like copy of ``depth_m`` (metres): zero-mean Gaussian noise of std ``noise_m`` on
    valid pixels and a random ``hole_fraction`` (0..1) of pixels set to 0 (no reading)."""
    out = depth_m.copy()
    valid = out > 0
    if noise_m > 0:
        out[valid] += rng.normal(0.0, noise_m, size=int(valid.sum())).astype(np.float32)
        np.maximum(out, 0.0, out=out)
    if hole_fraction > 0:
        out[rng.random(out.shape) < hole_fraction] = 0.0
    return out


def object_under_grasp(world: World, position_world: Sequence[float],
                       radius_m: float) -> Optional[int]:
    """Index of the object a grasp at ``position_world`` (metres) is meant for.

    Rule: the object whose up axis, from its base to its top in the CURRENT state, passes
    closest to the grasp centre, if that distance is at most ``radius_m``; else None. The axis
    (not the centre) makes top-down grasps on tall objects, which sit above the centre, count.
    """
    p = np.asarray(position_world, dtype=np.float64)
    best, best_d = None, math.inf
    for i, body in enumerate(object_body_ids(world.model)):
        base = world.data.xpos[body]
        axis = world.data.xmat[body].reshape(3, 3)[:, 2]
        t = float(np.clip(np.dot(p - base, axis), 0.0, world.spec.objects[i].height))
        d = float(np.linalg.norm(p - (base + t * axis)))
        if d < best_d:
            best, best_d = i, d
    return best if best_d <= radius_m else None
