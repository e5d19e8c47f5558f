"""Procedural MuJoCo tabletop scenes, deterministic from a seed.

World conventions (shared with the Panda grasp executor): z up, metres; the table top surface is
at z = 0; the Panda base stands on the table at the origin facing +x; objects lie in the workspace
x in [0.35, 0.65], y in [-0.25, 0.25].

Every scene object is ONE body ``obj_<i>`` with a free joint ``obj_<i>_joint``; all its geoms
belong to that body. The body origin is the centre of the object's base (on the table when
resting) and its z axis is the object's up axis.
"""
from __future__ import annotations

import importlib
import math
import os
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Sequence, Tuple

os.environ.setdefault('MUJOCO_GL', 'egl')

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from unipixel_ros.dataset.vocab import CATEGORIES, COLORS, SIZES  # noqa: E402

#: Workspace (world x and y ranges, metres) where object centres are placed.
WORKSPACE_X = (0.35, 0.65)
WORKSPACE_Y = (-0.25, 0.25)
#: Minimum gap between object footprints (metres).
LAYOUT_MARGIN = 0.02
#: Physics steps run to let objects settle before rendering (timestep 2 ms).
SETTLE_STEPS = 300
#: Arm joints 1-7 (rad) while the head camera looks: the arm folded and turned to the robot's
#: back (-x), below and behind the head camera.
OBSERVE_QPOS = np.array([2.8, 0.3, 0.0, -2.8, 0.0, 2.9, 0.8])
#: Largest offscreen image a built model can render.
MAX_RENDER_SIZE = (1280, 960)

#: Linear RGB of each colour name.
COLOR_RGB: Dict[str, Tuple[float, float, float]] = {
    'red': (0.85, 0.08, 0.08),
    'green': (0.10, 0.62, 0.15),
    'blue': (0.10, 0.25, 0.85),
    'yellow': (0.95, 0.85, 0.08),
    'orange': (1.00, 0.48, 0.04),
    'purple': (0.50, 0.14, 0.65),
    'white': (0.93, 0.93, 0.93),
    'black': (0.07, 0.07, 0.07),
    'pink': (1.00, 0.52, 0.72),
}
assert tuple(COLOR_RGB) == COLORS

#: Real dimensions (metres) of each category and size; see :func:`_object_geoms` for meaning.
DIMENSIONS: Dict[str, Dict[str, Dict[str, float]]] = {
    'cup': {'small': {'radius': 0.030, 'height': 0.075},
            'medium': {'radius': 0.032, 'height': 0.090},
            'large': {'radius': 0.034, 'height': 0.110}},
    'bowl': {'small': {'radius': 0.060, 'height': 0.045},
             'medium': {'radius': 0.075, 'height': 0.055},
             'large': {'radius': 0.090, 'height': 0.065}},
    'box': {'small': {'sx': 0.050, 'sy': 0.040, 'sz': 0.060},
            'medium': {'sx': 0.080, 'sy': 0.050, 'sz': 0.090},
            'large': {'sx': 0.120, 'sy': 0.060, 'sz': 0.130}},
    'ball': {'small': {'radius': 0.022}, 'medium': {'radius': 0.028},
             'large': {'radius': 0.034}},
    'bottle': {'small': {'radius': 0.022, 'height': 0.100, 'neck_radius': 0.010,
                         'neck_height': 0.035},
               'medium': {'radius': 0.028, 'height': 0.130, 'neck_radius': 0.012,
                          'neck_height': 0.040},
               'large': {'radius': 0.033, 'height': 0.160, 'neck_radius': 0.014,
                         'neck_height': 0.050}},
    'can': {'small': {'radius': 0.026, 'height': 0.070},
            'medium': {'radius': 0.033, 'height': 0.100},
            'large': {'radius': 0.034, 'height': 0.135}},
    'block': {'small': {'side': 0.030}, 'medium': {'side': 0.045}, 'large': {'side': 0.060}},
}
assert tuple(DIMENSIONS) == CATEGORIES and all(tuple(d) == SIZES for d in DIMENSIONS.values())

#: Cup handle: outward reach from the wall (metres).
HANDLE_REACH = 0.025
_WALL = 0.004      # wall / bottom thickness of cups and bowls
_WALL_SEGMENTS = 16
_TABLE_COLORS = ((0.72, 0.58, 0.42), (0.55, 0.55, 0.55), (0.48, 0.34, 0.22), (0.80, 0.76, 0.66),
                 (0.35, 0.40, 0.45))


@dataclass
class ObjectSpec:
    """One tabletop object.

    Attributes:
        category, color, size: vocabulary names (see ``unipixel_ros.dataset.vocab``).
        rgba: colour actually rendered (the named colour with a small jitter), 4 floats 0..1.
        dims: category-specific dimensions in metres (see :data:`DIMENSIONS`).
        x, y: world position of the base centre (metres); yaw: rotation about z (radians).
        handle: cups only, whether a handle is attached (on the object's +x side).
    """

    category: str
    color: str
    size: str
    rgba: List[float]
    dims: Dict[str, float]
    x: float
    y: float
    yaw: float
    handle: bool = False

    @property
    def height(self) -> float:
        """Total height (metres)."""
        d = self.dims
        if self.category == 'ball':
            return 2.0 * d['radius']
        if self.category == 'box':
            return d['sz']
        if self.category == 'block':
            return d['side']
        if self.category == 'bottle':
            return d['height'] + d['neck_height']
        return d['height']

    @property
    def extents(self) -> Tuple[float, float, float]:
        """Full bounding-box size (metres) along the object's own x, y, z axes."""
        d = self.dims
        if self.category == 'box':
            return (d['sx'], d['sy'], d['sz'])
        if self.category == 'block':
            return (d['side'],) * 3
        diameter = 2.0 * d['radius']
        reach = HANDLE_REACH if self.handle else 0.0
        return (diameter + reach, diameter, self.height)

    @property
    def footprint_radius(self) -> float:
        """Radius (metres) of a circle about the base centre that covers the object from above."""
        d = self.dims
        if self.category in ('box', 'block'):
            sx, sy = self.extents[:2]
            return 0.5 * math.hypot(sx, sy)
        return d['radius'] + (HANDLE_REACH if self.handle else 0.0)

    @property
    def volume(self) -> float:
        """Bounding volume (cubic metres), used to rank sizes within a category."""
        sx, sy, sz = self.extents
        if self.category in ('box', 'block'):
            return sx * sy * sz
        return math.pi * self.dims['radius'] ** 2 * sz

    @property
    def graspable(self) -> bool:
        """True when the Panda (8 cm opening) can close across one horizontal axis (< 7 cm)."""
        return self.category != 'bowl' and min(self.extents[:2]) < 0.07


@dataclass
class CameraSpec:
    """Head camera. ``pos`` world metres; ``quat`` (w, x, y, z) rotates the MuJoCo (OpenGL)
    camera frame (x right, y up, looking along -z) into the world; ``fovy`` vertical, degrees."""

    pos: List[float]
    quat: List[float]
    fovy: float


@dataclass
class LightingSpec:
    """Scene lighting and table look.

    Attributes:
        lights: directional-ish spot lights, each ``{'pos': [3], 'dir': [3], 'diffuse': [3]}``.
        ambient, headlight: RGB of the global ambient and of the camera headlight's diffuse term.
        table_rgb, table_mark_rgb: table texture base colour and speckle colour.
    """

    lights: List[Dict[str, List[float]]]
    ambient: List[float]
    headlight: List[float]
    table_rgb: List[float]
    table_mark_rgb: List[float]


@dataclass
class SceneSpec:
    """Everything needed to rebuild a scene; JSON-serialisable through :meth:`to_dict`."""

    seed: int
    objects: List[ObjectSpec]
    camera: CameraSpec
    lighting: LightingSpec
    meta: Dict[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Plain JSON-ready dict (lists, floats, strings)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> 'SceneSpec':
        """Inverse of :meth:`to_dict`."""
        return cls(seed=int(data['seed']),
                   objects=[ObjectSpec(**o) for o in data['objects']],
                   camera=CameraSpec(**data['camera']),
                   lighting=LightingSpec(**data['lighting']),
                   meta=dict(data.get('meta', {})))


def look_at_quat(pos: Sequence[float], target: Sequence[float], roll: float = 0.0) -> np.ndarray:
    """(w, x, y, z) of a MuJoCo camera at ``pos`` looking at ``target`` (world z up).

    ``roll`` (radians) turns the image about the optical axis.
    """
    forward = np.asarray(target, float) - np.asarray(pos, float)
    forward /= np.linalg.norm(forward)
    right = np.cross(forward, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, forward)
    c, s = math.cos(roll), math.sin(roll)
    right, up = c * right + s * up, -s * right + c * up
    rot = np.stack([right, up, -forward], axis=1)
    quat = np.zeros(4)
    mujoco.mju_mat2Quat(quat, rot.reshape(-1))
    return quat


def _sample_camera(rng: np.random.Generator) -> CameraSpec:
    """Head camera jittered around x~0, z 0.55..0.8, pitched 30..60 deg down at the workspace."""
    while True:
        pos = np.array([rng.uniform(-0.05, 0.10), rng.uniform(-0.10, 0.10),
                        rng.uniform(0.55, 0.80)])
        target = np.array([0.50 + rng.uniform(-0.05, 0.05), rng.uniform(-0.05, 0.05), 0.02])
        delta = target - pos
        pitch = math.degrees(math.atan2(-delta[2], math.hypot(delta[0], delta[1])))
        if 30.0 <= pitch <= 60.0:
            break
    quat = look_at_quat(pos, target, roll=math.radians(rng.uniform(-2.0, 2.0)))
    return CameraSpec(pos=pos.tolist(), quat=quat.tolist(), fovy=float(rng.uniform(55.0, 60.0)))


def _sample_lighting(rng: np.random.Generator) -> LightingSpec:
    lights = []
    for _ in range(int(rng.integers(1, 3))):
        pos = np.array([rng.uniform(-0.2, 0.9), rng.uniform(-0.8, 0.8), rng.uniform(1.2, 2.2)])
        direction = np.array([0.5, 0.0, 0.0]) - pos
        direction /= np.linalg.norm(direction)
        level = rng.uniform(0.35, 0.75)
        tint = rng.uniform(0.9, 1.0, size=3)
        lights.append({'pos': pos.tolist(), 'dir': direction.tolist(),
                       'diffuse': (level * tint).tolist()})
    base = np.array(_TABLE_COLORS[int(rng.integers(len(_TABLE_COLORS)))])
    table = np.clip(base + rng.uniform(-0.06, 0.06, size=3), 0.0, 1.0)
    return LightingSpec(lights=lights,
                        ambient=[float(rng.uniform(0.12, 0.30))] * 3,
                        headlight=[float(rng.uniform(0.15, 0.35))] * 3,
                        table_rgb=table.tolist(),
                        table_mark_rgb=(table * rng.uniform(0.75, 0.9)).tolist())


def _sample_objects(rng: np.random.Generator, count: int) -> List[ObjectSpec]:
    """Sample ``count`` objects on non-overlapping footprints (fewer if the table is full)."""
    objects: List[ObjectSpec] = []
    for _ in range(count):
        category = CATEGORIES[int(rng.integers(len(CATEGORIES)))]
        color = COLORS[int(rng.integers(len(COLORS)))]
        size = SIZES[int(rng.integers(len(SIZES)))]
        rgb = np.clip(np.array(COLOR_RGB[color]) + rng.uniform(-0.04, 0.04, size=3), 0.0, 1.0)
        obj = ObjectSpec(category=category, color=color, size=size,
                         rgba=rgb.tolist() + [1.0], dims=dict(DIMENSIONS[category][size]),
                         x=0.0, y=0.0, yaw=float(rng.uniform(-math.pi, math.pi)),
                         handle=bool(category == 'cup' and rng.random() < 0.5))
        for _attempt in range(100):
            obj.x = float(rng.uniform(*WORKSPACE_X))
            obj.y = float(rng.uniform(*WORKSPACE_Y))
            if all(math.hypot(obj.x - o.x, obj.y - o.y)
                   >= obj.footprint_radius + o.footprint_radius + LAYOUT_MARGIN
                   for o in objects):
                objects.append(obj)
                break
    return objects


def generate_scene(seed: int) -> SceneSpec:
    """A random scene, identical for identical ``seed``: 3-8 objects, camera, lighting."""
    rng = np.random.default_rng(seed)
    count = int(rng.integers(3, 9))
    objects = _sample_objects(rng, count)
    return SceneSpec(seed=int(seed), objects=objects, camera=_sample_camera(rng),
                     lighting=_sample_lighting(rng))


def _object_geoms(obj: ObjectSpec) -> List[dict]:
    """Primitive geoms of ``obj`` in its body frame (base centre at the origin, z up).

    Each entry: ``type`` (mjtGeom), ``size`` (MuJoCo half-sizes), ``pos``, optional ``quat``.
    """
    d = obj.dims
    box, cyl, sph = mujoco.mjtGeom.mjGEOM_BOX, mujoco.mjtGeom.mjGEOM_CYLINDER, \
        mujoco.mjtGeom.mjGEOM_SPHERE
    if obj.category == 'ball':
        return [{'type': sph, 'size': [d['radius'], 0, 0], 'pos': [0, 0, d['radius']]}]
    if obj.category == 'box':
        return [{'type': box, 'size': [d['sx'] / 2, d['sy'] / 2, d['sz'] / 2],
                 'pos': [0, 0, d['sz'] / 2]}]
    if obj.category == 'block':
        half = d['side'] / 2
        return [{'type': box, 'size': [half, half, half], 'pos': [0, 0, half]}]
    if obj.category == 'can':
        return [{'type': cyl, 'size': [d['radius'], d['height'] / 2, 0],
                 'pos': [0, 0, d['height'] / 2]}]
    if obj.category == 'bottle':
        neck_z = d['height'] + d['neck_height'] / 2
        return [{'type': cyl, 'size': [d['radius'], d['height'] / 2, 0],
                 'pos': [0, 0, d['height'] / 2]},
                {'type': cyl, 'size': [d['neck_radius'], d['neck_height'] / 2, 0],
                 'pos': [0, 0, neck_z]}]
    # Hollow vessels: a bottom disc plus a ring of thin wall boxes (flared outwards for bowls).
    radius, height = d['radius'], d['height']
    flare = math.radians(30.0) if obj.category == 'bowl' else 0.0
    bottom_radius = radius - height * math.tan(flare)
    geoms = [{'type': cyl, 'size': [bottom_radius, _WALL / 2, 0], 'pos': [0, 0, _WALL / 2]}]
    wall_len = height / math.cos(flare)
    mid_radius = 0.5 * (radius + bottom_radius) - _WALL / 2
    # Wall boxes overlap slightly so that no gap shows between neighbours.
    half_width = math.pi * (mid_radius + _WALL) / _WALL_SEGMENTS * 1.08
    for k in range(_WALL_SEGMENTS):
        angle = 2.0 * math.pi * k / _WALL_SEGMENTS
        quat = np.zeros(4)
        # Rotate about z to face outwards, then tilt the top outwards by the flare angle.
        q_yaw = np.array([math.cos(angle / 2), 0, 0, math.sin(angle / 2)])
        q_tilt = np.array([math.cos(flare / 2), 0, math.sin(flare / 2), 0])
        mujoco.mju_mulQuat(quat, q_yaw, q_tilt)
        geoms.append({'type': box, 'size': [_WALL / 2, half_width, wall_len / 2],
                      'pos': [mid_radius * math.cos(angle), mid_radius * math.sin(angle),
                              height / 2],
                      'quat': quat.tolist()})
    if obj.handle:
        t = 0.006  # handle bar thickness
        top, bottom = 0.78 * height, 0.30 * height
        outer = radius + HANDLE_REACH - t / 2
        geoms += [
            {'type': box, 'size': [HANDLE_REACH / 2, t / 2, t / 2],
             'pos': [radius + HANDLE_REACH / 2 - _WALL / 2, 0, top]},
            {'type': box, 'size': [HANDLE_REACH / 2, t / 2, t / 2],
             'pos': [radius + HANDLE_REACH / 2 - _WALL / 2, 0, bottom]},
            {'type': box, 'size': [t / 2, t / 2, (top - bottom) / 2 + t / 2],
             'pos': [outer, 0, (top + bottom) / 2]},
        ]
    return geoms


def _add_table(spec: mujoco.MjSpec, lighting: LightingSpec) -> None:
    tex = spec.add_texture(name='table_tex', type=mujoco.mjtTexture.mjTEXTURE_2D,
                           builtin=mujoco.mjtBuiltin.mjBUILTIN_FLAT,
                           mark=mujoco.mjtMark.mjMARK_RANDOM, random=0.15,
                           rgb1=lighting.table_rgb, markrgb=lighting.table_mark_rgb,
                           width=256, height=256)
    mat = spec.add_material(name='table_mat', texrepeat=[6, 6], specular=0.2, shininess=0.2)
    mat.textures[int(mujoco.mjtTextureRole.mjTEXROLE_RGB)] = tex.name
    spec.add_material(name='floor_mat', rgba=[0.32, 0.32, 0.34, 1.0])
    world = spec.worldbody
    world.add_geom(name='floor', type=mujoco.mjtGeom.mjGEOM_PLANE, size=[3, 3, 0.1],
                   pos=[0, 0, -0.75], material='floor_mat')
    # Table top: 1.2 m x 1.2 m, surface at z = 0, extending behind the robot base.
    world.add_geom(name='table', type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.6, 0.6, 0.02],
                   pos=[0.35, 0.0, -0.02], material='table_mat')
    for i, (lx, ly) in enumerate([(-0.2, -0.55), (-0.2, 0.55), (0.9, -0.55), (0.9, 0.55)]):
        world.add_geom(name=f'table_leg_{i}', type=mujoco.mjtGeom.mjGEOM_BOX,
                       size=[0.025, 0.025, 0.365], pos=[lx, ly, -0.405], material='floor_mat')


def _attach_robot(spec: mujoco.MjSpec) -> bool:
    """Attach the Panda through ``unipixel_sim.panda.attach_panda`` when that module exists."""
    try:
        panda = importlib.import_module('unipixel_sim.panda')
    except ImportError:
        return False
    attach = getattr(panda, 'attach_panda', None)
    if attach is None:
        return False
    attach(spec, prefix='panda/')
    return True


def build_spec(scene: SceneSpec, with_robot: bool = True) -> mujoco.MjSpec:
    """The uncompiled :class:`mujoco.MjSpec` of ``scene`` (see :func:`build_model`)."""
    spec = mujoco.MjSpec()
    spec.modelname = f'unipixel_scene_{scene.seed}'
    spec.option.timestep = 0.002
    spec.visual.global_.offwidth, spec.visual.global_.offheight = MAX_RENDER_SIZE
    # A near plane of a few mm keeps depth precise at the table (~0.5-1.2 m away).
    spec.visual.map.znear = 0.005
    spec.visual.map.zfar = 10.0
    spec.stat.extent = 2.0
    spec.stat.center = [0.35, 0.0, 0.2]
    light = scene.lighting
    spec.visual.headlight.ambient = light.ambient
    spec.visual.headlight.diffuse = light.headlight
    spec.visual.headlight.specular = [0.1, 0.1, 0.1]
    spec.visual.quality.shadowsize = 2048
    _add_table(spec, light)
    for i, lt in enumerate(light.lights):
        spec.worldbody.add_light(name=f'light_{i}', pos=lt['pos'], dir=lt['dir'],
                                 diffuse=lt['diffuse'], specular=[0.2, 0.2, 0.2],
                                 castshadow=(i == 0), cutoff=60.0, exponent=2.0)
    cam = scene.camera
    spec.worldbody.add_camera(name='head', pos=cam.pos, quat=cam.quat, fovy=cam.fovy)
    for i, obj in enumerate(scene.objects):
        yaw = obj.yaw
        body = spec.worldbody.add_body(name=f'obj_{i}', pos=[obj.x, obj.y, 0.0],
                                       quat=[math.cos(yaw / 2), 0, 0, math.sin(yaw / 2)])
        body.add_freejoint(name=f'obj_{i}_joint')
        for k, g in enumerate(_object_geoms(obj)):
            geom = body.add_geom(name=f'obj_{i}_geom_{k}', type=g['type'], size=g['size'],
                                 pos=g['pos'], rgba=obj.rgba, density=400.0,
                                 friction=[1.0, 0.01, 0.001], condim=4)
            if 'quat' in g:
                geom.quat = g['quat']
    # Without unipixel_sim.panda (owned by the grasp executor) the scene is built robot-free.
    scene.meta['robot'] = bool(with_robot and _attach_robot(spec))
    return spec


def build_model(scene: SceneSpec, with_robot: bool = True) -> mujoco.MjModel:
    """Compile ``scene`` into a model: table (top at z = 0), objects ``obj_<i>``, camera
    ``head``, lights, and the Panda at the origin when ``with_robot`` and it is available."""
    return build_spec(scene, with_robot).compile()


def set_observe_pose(model: mujoco.MjModel, data: mujoco.MjData, prefix: str = 'panda/') -> bool:
    """Swing the arm (if present) to :data:`OBSERVE_QPOS`, clear of the head camera's view of the
    workspace, with matching servo targets; runs ``mj_forward``. Returns whether a robot was found.
    """
    if mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_JOINT, prefix + 'joint1') < 0:
        mujoco.mj_forward(model, data)
        return False
    from unipixel_sim.panda import PandaIndex
    idx = PandaIndex.from_model(model, prefix)
    data.qpos[idx.arm_qpos] = OBSERVE_QPOS
    data.qvel[idx.arm_dof] = 0.0
    data.ctrl[idx.arm_ctrl] = OBSERVE_QPOS
    mujoco.mj_forward(model, data)
    return True


def object_body_ids(model: mujoco.MjModel) -> List[int]:
    """Body id of ``obj_0``, ``obj_1``, ... in order."""
    ids = []
    while True:
        bid = mujoco.mj_name2id(model, mujoco.mjtObj.mjOBJ_BODY, f'obj_{len(ids)}')
        if bid < 0:
            return ids
        ids.append(bid)


def settle(model: mujoco.MjModel, data: mujoco.MjData, steps: int = SETTLE_STEPS) -> float:
    """Step physics so that objects come to rest; non-object joints (the robot) stay pinned.

    Returns:
        The largest object displacement (metres) during settling.
    """
    joints = [model.joint(f'obj_{i}_joint').id for i in range(len(object_body_ids(model)))]
    obj_adr = np.array([model.jnt_qposadr[j] + k for j in joints for k in range(7)], dtype=int)
    obj_dof = np.array([model.jnt_dofadr[j] + k for j in joints for k in range(6)], dtype=int)
    pinned = np.setdiff1d(np.arange(model.nq), obj_adr)
    pinned_dof = np.setdiff1d(np.arange(model.nv), obj_dof)
    q_pinned = data.qpos[pinned].copy()
    start = data.qpos[obj_adr].reshape(-1, 7)[:, :3].copy()
    for _ in range(steps):
        mujoco.mj_step(model, data)
        data.qpos[pinned] = q_pinned
        data.qvel[pinned_dof] = 0.0
    mujoco.mj_forward(model, data)
    end = data.qpos[obj_adr].reshape(-1, 7)[:, :3]
    return float(np.max(np.linalg.norm(end - start, axis=1))) if len(start) else 0.0
