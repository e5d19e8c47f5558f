"""Franka Panda arm + hand for the MuJoCo tabletop, and damped-least-squares inverse kinematics.

The kinematics, inertias and meshes come from ``gymnasium_robotics``'
``envs/assets/kitchen_franka/franka_assets`` (chain.xml / assets.xml), loaded from the installed
package. Our own: the servos, joint damping and armature, gravity compensation, flat finger pads
(instead of the stock crossed capsules) and their contact parameters (see :func:`_robot_xml`).

World conventions (shared with the scene generator): z up, metres, table top at z = 0, robot base
(``link0``) at the world origin on the table, facing +x.

Element names inside the robot, before the attach prefix (default ``'panda/'``): bodies
``link0`` .. ``link7``, ``left_finger``, ``right_finger``; joints ``joint1`` .. ``joint7``,
``finger_joint1``, ``finger_joint2``; actuators ``joint1`` .. ``joint7`` (joint position targets,
rad) and ``gripper`` (target distance of EACH finger from the hand's centre plane, metres, 0 =
closed, 0.04 = fully open, i.e. the jaw opening is twice the control value); site ``tcp``.

TCP (tool centre point), the point a grasp pose's position is aligned to: on the hand's axis,
midway between the two finger pads, ``TCP_TO_FINGERTIP`` (15 mm) behind the fingertip ends
(``link7`` frame z = 0.245 m, 0.0796 m past the finger base). Its frame follows the grasp
convention: z = approach (out of the palm, towards the fingertips), y = jaw closing axis (the
``finger_joint1`` slide axis), x = y cross z.
"""
from __future__ import annotations

import copy
import importlib.util
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional, Sequence

import mujoco
import numpy as np

#: Largest jaw opening (distance between the finger pads), metres.
MAX_OPENING = 0.08
#: Distance from the TCP to the fingertip ends along the approach axis, metres.
TCP_TO_FINGERTIP = 0.015
#: Half width of a finger pad across the jaw plane (along gripper x), metres.
FINGER_HALF_WIDTH = 0.0095
#: Joint names of the 7 arm joints, in chain order (without prefix).
ARM_JOINTS = tuple(f'joint{i}' for i in range(1, 8))
#: Arm configuration (rad) the executor starts from: TCP at (0.46, 0, 0.37) m, approach pointing
#: straight down, jaw axis along world -y.
READY_QPOS = np.array([0.0, -0.3, 0.0, -2.2, 0.0, 0.33, 0.0])

_TCP_Z_IN_LINK7 = 0.245
_PAD_HALF_THICKNESS = 0.006
_PAD_HALF_LENGTH = 0.02975
# Position gains (N m / rad), as in MuJoCo Menagerie's Panda, and the real torque limits (N m)
# per arm joint; the stock kitchen gains (870 / 120) leave millimetres of lag under contact.
_ARM_KP = (4500.0, 4500.0, 3500.0, 3500.0, 2000.0, 2000.0, 2000.0)
_ARM_FORCE = (87.0, 87.0, 87.0, 87.0, 12.0, 12.0, 12.0)
_ARM_KV_RATIO = 0.1
# Gripper: a position servo on the mean finger slide (tendon). Closing on an object commands 0,
# so the squeeze saturates at _GRIP_FORCE (30 N per finger) for any object wider than 2.4 cm.
_GRIP_KP = 5000.0
_GRIP_FORCE = 60.0


def franka_assets_dir() -> str:
    """Absolute path of gymnasium_robotics' ``kitchen_franka/franka_assets`` folder."""
    # find_spec locates the package without importing it (the import pulls in gymnasium and
    # prints a deprecation banner).
    spec = importlib.util.find_spec('gymnasium_robotics')
    if spec is None or not spec.submodule_search_locations:
        raise ImportError('gymnasium-robotics is not installed (pip install gymnasium-robotics)')
    return os.path.join(list(spec.submodule_search_locations)[0],
                        'envs', 'assets', 'kitchen_franka', 'franka_assets')


def _rename(name: str) -> str:
    for old, new in (('robot:panda0_', ''), ('panda0_leftfinger', 'left_finger'),
                     ('panda0_rightfinger', 'right_finger'), ('panda0_', '')):
        name = name.replace(old, new)
    return name


@lru_cache(maxsize=1)
def _robot_xml() -> str:
    """The robot as a standalone MJCF string (cached: parsing the stock files is the slow part)."""
    root_dir = franka_assets_dir()
    assets = ET.parse(os.path.join(root_dir, 'assets.xml')).getroot()
    chain = ET.parse(os.path.join(root_dir, 'chain.xml')).getroot()

    model = ET.Element('mujoco', model='panda')
    ET.SubElement(model, 'compiler', angle='radian', autolimits='true',
                  meshdir=os.path.join(root_dir, 'meshes'))
    for tag in ('asset', 'default'):
        model.append(copy.deepcopy(assets.find(tag)))
    worldbody = ET.SubElement(model, 'worldbody')
    worldbody.append(copy.deepcopy(chain.find('body')))

    for elem in model.iter():
        # The stock 'user' fields need <size nuser_*> which attaching into a scene cannot carry.
        elem.attrib.pop('user', None)
        if 'name' in elem.attrib and elem.tag in ('body', 'joint', 'site'):
            elem.set('name', _rename(elem.get('name')))
    for body in model.iter('body'):
        # Gravity compensation keeps the position servos free of steady-state sag.
        body.set('gravcomp', '1')
    for default in model.iter('default'):
        cls = default.get('class')
        if cls in ('panda_arm', 'panda_forearm'):
            # The stock passive damping (100 / 10 N m s/rad) eats most of the torque budget at
            # moderate speeds (joint 2 saturates at 87 N m near 0.5 rad/s); the servos' own kv
            # damps the arm instead.
            default.find('joint').set('damping', '1')
            # Reflected rotor inertia; without it the light wrist links make the stiff servos
            # oscillate step to step when their torque saturates.
            default.find('joint').set('armature', '0.1')
        if cls == 'panda_finger':
            joint, geom = default.find('joint'), default.find('geom')
            # The stock armature (5 kg on a slide) makes the fingers ram the object on contact.
            joint.set('armature', '0.05')
            joint.set('damping', '20')
            # condim 6 adds torsional and rolling friction so held objects neither spin nor roll
            # out; a stiff, barely penetrating contact stops the object creeping down the pads.
            geom.set('friction', '1.5 0.02 0.0001')
            geom.set('solref', '0.004 1')
            geom.set('solimp', '0.95 0.99 0.001')
            geom.set('margin', '0')
            geom.set('priority', '1')
    for finger, side in (('left_finger', 1.0), ('right_finger', -1.0)):
        body = next(b for b in model.iter('body') if b.get('name') == finger)
        # The stock pads are pairs of crossed, slanted capsules: squeezing a round object between
        # them pushes it out sideways. A flat box pad whose inner face lies on the finger's zero
        # plane (jaw gap = 2 x slide) from 35 mm to the fingertip (94.5 mm) replaces them.
        for geom in [g for g in body.findall('geom') if g.get('type') == 'capsule']:
            body.remove(geom)
        ET.SubElement(body, 'geom', name=f'{finger}_pad', type='box',
                      size=f'{FINGER_HALF_WIDTH} {_PAD_HALF_THICKNESS} {_PAD_HALF_LENGTH}',
                      pos=f'0 {side * _PAD_HALF_THICKNESS} {0.0945 - _PAD_HALF_LENGTH}')
    link7 = next(b for b in model.iter('body') if b.get('name') == 'link7')
    for site in list(link7.findall('site')):
        link7.remove(site)
    # Site frame: z = approach (link7 z), y = finger_joint1 slide axis (left finger y, which is
    # link7 rotated by -45 deg about z), matching the grasp convention.
    ET.SubElement(link7, 'site', name='tcp', pos=f'0 0 {_TCP_Z_IN_LINK7}',
                  quat='0.92388 0 0 -0.382683', size='0.005', rgba='1 0 0 1', group='4')

    tendon = ET.SubElement(model, 'tendon')
    split = ET.SubElement(tendon, 'fixed', name='split')
    ET.SubElement(split, 'joint', joint='finger_joint1', coef='0.5')
    ET.SubElement(split, 'joint', joint='finger_joint2', coef='0.5')
    equality = ET.SubElement(model, 'equality')
    ET.SubElement(equality, 'joint', joint1='finger_joint1', joint2='finger_joint2',
                  solref='0.005 1', solimp='0.95 0.99 0.001')
    actuator = ET.SubElement(model, 'actuator')
    for name, kp, force in zip(ARM_JOINTS, _ARM_KP, _ARM_FORCE):
        ET.SubElement(actuator, 'position', name=name, joint=name, kp=str(kp),
                      kv=str(_ARM_KV_RATIO * kp), forcerange=f'{-force} {force}',
                      ctrllimited='false')
    ET.SubElement(actuator, 'position', name='gripper', tendon='split', kp=str(_GRIP_KP),
                  forcerange=f'{-_GRIP_FORCE} {_GRIP_FORCE}', ctrlrange='0 0.04')
    return ET.tostring(model, encoding='unicode')


def configure_physics(spec: mujoco.MjSpec) -> None:
    """Set the global solver options grasping relies on (called by :func:`attach_panda`).

    The implicit-in-velocity integrator keeps the stiff servo and joint damping stable at a 2 ms
    step (with the default Euler integrator the squeezing fingers chatter and spit round objects
    out). Elliptic friction cones with a high impedance ratio make the friction at the finger
    pads nearly hard, so a lifted object does not creep out of the jaws during the hold.
    """
    spec.option.integrator = mujoco.mjtIntegrator.mjINT_IMPLICITFAST
    spec.option.cone = mujoco.mjtCone.mjCONE_ELLIPTIC
    spec.option.impratio = 10.0


def attach_panda(spec: mujoco.MjSpec, prefix: str = 'panda/') -> None:
    """Add the Panda at the world origin (on the table top, z = 0), facing +x.

    Args:
        spec: scene being built; modified in place. Its global options are set by
            :func:`configure_physics` (elliptic cones, impratio).
        prefix: prepended to every robot element name (bodies, joints, actuators, site ``tcp``,
            meshes, default classes).

    The arm has gravity compensation (``gravcomp=1`` on every robot body) and joint position
    servos; the fingers are coupled by an equality constraint and driven by one position
    actuator ``<prefix>gripper``. Control starts at 0 for every actuator, which is outside the
    ``joint4`` range: call :func:`set_ready_pose` before simulating or rendering.
    """
    robot = mujoco.MjSpec.from_string(_robot_xml())
    frame = spec.worldbody.add_frame()
    spec.attach(robot, prefix=prefix, frame=frame)
    configure_physics(spec)


@dataclass(frozen=True)
class PandaIndex:
    """Addresses of the robot's elements in a compiled model.

    Attributes:
        arm_qpos: (7,) qpos addresses of joint1..joint7.
        arm_dof: (7,) dof addresses of joint1..joint7.
        arm_ctrl: (7,) actuator ids of the arm servos.
        arm_range: (7, 2) joint limits, rad.
        finger_qpos: (2,) qpos addresses of the two finger slides.
        gripper_ctrl: actuator id of the gripper.
        tcp_site: site id of the TCP.
        finger_bodies: (2,) body ids of the left and right finger.
        robot_bodies: ids of all robot bodies (link0..link7 and the fingers).
    """

    arm_qpos: np.ndarray
    arm_dof: np.ndarray
    arm_ctrl: np.ndarray
    arm_range: np.ndarray
    finger_qpos: np.ndarray
    gripper_ctrl: int
    tcp_site: int
    finger_bodies: np.ndarray
    robot_bodies: np.ndarray

    @classmethod
    def from_model(cls, model: mujoco.MjModel, prefix: str = 'panda/') -> 'PandaIndex':
        """Look up the robot attached with ``prefix``; KeyError if it is not in ``model``."""
        def jid(name):
            return model.joint(prefix + name).id
        arm = [jid(n) for n in ARM_JOINTS]
        fingers = [jid('finger_joint1'), jid('finger_joint2')]
        bodies = [model.body(prefix + n).id
                  for n in [f'link{i}' for i in range(8)] + ['left_finger', 'right_finger']]
        return cls(
            arm_qpos=model.jnt_qposadr[arm].copy(),
            arm_dof=model.jnt_dofadr[arm].copy(),
            arm_ctrl=np.array([model.actuator(prefix + n).id for n in ARM_JOINTS]),
            arm_range=model.jnt_range[arm].copy(),
            finger_qpos=model.jnt_qposadr[fingers].copy(),
            gripper_ctrl=model.actuator(prefix + 'gripper').id,
            tcp_site=model.site(prefix + 'tcp').id,
            finger_bodies=np.array(bodies[-2:]),
            robot_bodies=np.array(bodies),
        )


def set_ready_pose(model: mujoco.MjModel, data: mujoco.MjData, prefix: str = 'panda/',
                   opening: float = MAX_OPENING) -> None:
    """Put the arm in :data:`READY_QPOS` with the jaws ``opening`` metres apart, at rest, and
    set the servo targets to match; runs ``mj_forward``. Other joints are left as they are."""
    idx = PandaIndex.from_model(model, prefix)
    half = float(np.clip(opening / 2.0, 0.0, MAX_OPENING / 2.0))
    data.qpos[idx.arm_qpos] = READY_QPOS
    data.qpos[idx.finger_qpos] = half
    data.qvel[idx.arm_dof] = 0.0
    data.ctrl[idx.arm_ctrl] = READY_QPOS
    data.ctrl[idx.gripper_ctrl] = half
    mujoco.mj_forward(model, data)


@dataclass(frozen=True)
class PrimitiveObject:
    """A primitive object for :func:`build_panda_test_scene`.

    Attributes:
        shape: 'box' (``size`` = half extents x, y, z), 'cylinder' (radius, half height) or
            'sphere' (radius), MuJoCo size conventions, metres.
        size: see ``shape``.
        position: (3,) world position of the centre, metres (resting: z = half height).
        yaw: rotation about world z, rad.
        mass: kg.
        rgba: colour.
    """

    shape: str
    size: Sequence[float]
    position: Sequence[float]
    yaw: float = 0.0
    mass: float = 0.2
    rgba: Sequence[float] = (0.8, 0.3, 0.2, 1.0)


_GEOM_TYPES = {'box': mujoco.mjtGeom.mjGEOM_BOX, 'cylinder': mujoco.mjtGeom.mjGEOM_CYLINDER,
               'sphere': mujoco.mjtGeom.mjGEOM_SPHERE}


def add_table(spec: mujoco.MjSpec) -> None:
    """Add a static table whose top surface is the plane z = 0 (1.4 x 1.2 m, under the robot
    and the object area)."""
    spec.worldbody.add_geom(name='table', type=mujoco.mjtGeom.mjGEOM_BOX,
                            size=[0.7, 0.6, 0.02], pos=[0.2, 0.0, -0.02],
                            rgba=[0.55, 0.45, 0.35, 1.0])


def build_panda_test_scene(objects: Sequence[PrimitiveObject] = (), prefix: str = 'panda/',
                           timestep: float = 0.002) -> mujoco.MjModel:
    """A minimal world for tests: table, light, the Panda, and ``objects`` as bodies ``obj_<i>``
    with free joints ``obj_<i>_joint`` (geom ``obj_<i>_geom``), plus a camera ``overview``.

    Returns:
        The compiled model; its ``qpos0`` holds the object poses (``mj_resetData`` restores them).
    """
    spec = mujoco.MjSpec()
    spec.option.timestep = timestep
    spec.worldbody.add_light(pos=[0.5, 0.0, 2.0], dir=[0.0, 0.0, -1.0], diffuse=[0.8, 0.8, 0.8])
    spec.worldbody.add_camera(name='overview', pos=[1.3, -0.9, 0.75],
                              xyaxes=[0.57, 0.82, 0.0, -0.35, 0.24, 0.9])
    add_table(spec)
    for i, obj in enumerate(objects):
        half_yaw = 0.5 * obj.yaw
        body = spec.worldbody.add_body(name=f'obj_{i}', pos=list(obj.position),
                                       quat=[np.cos(half_yaw), 0.0, 0.0, np.sin(half_yaw)])
        body.add_freejoint(name=f'obj_{i}_joint')
        size = list(obj.size) + [0.0] * (3 - len(obj.size))
        body.add_geom(name=f'obj_{i}_geom', type=_GEOM_TYPES[obj.shape], size=size,
                      mass=obj.mass, rgba=list(obj.rgba), condim=4)
    attach_panda(spec, prefix)
    return spec.compile()


@dataclass(frozen=True)
class IKResult:
    """Outcome of :func:`solve_ik`.

    Attributes:
        success: both errors under their tolerances.
        qpos: (7,) arm joint angles, rad (the best iterate, within the joint limits).
        position_error: TCP position error, metres.
        rotation_error: TCP orientation error, rad.
        iterations: iterations used.
    """

    success: bool
    qpos: np.ndarray
    position_error: float
    rotation_error: float
    iterations: int


def _rotation_error(target: np.ndarray, current: np.ndarray) -> np.ndarray:
    """(3,) world-frame rotation vector taking ``current`` (3, 3) to ``target`` (3, 3)."""
    quat = np.empty(4)
    mujoco.mju_mat2Quat(quat, (target @ current.T).ravel())
    vel = np.empty(3)
    mujoco.mju_quat2Vel(vel, quat, 1.0)
    return vel


def solve_ik(model: mujoco.MjModel, data: mujoco.MjData, index: PandaIndex,
             position: np.ndarray, rotation: np.ndarray, q_init: np.ndarray,
             pos_tol: float = 5e-4, rot_tol: float = np.deg2rad(0.5), max_iters: int = 300,
             damping: float = 0.02, posture_gain: float = 0.05) -> IKResult:
    """Damped-least-squares IK of the TCP site, position + orientation, world frame.

    Args:
        model: compiled model containing the robot.
        data: scratch data (its arm ``qpos`` is overwritten; only kinematics are computed, so
            pass a copy, not the data being simulated).
        index: the robot's addresses.
        position: (3,) target TCP position, metres.
        rotation: (3, 3) target TCP frame (columns x, y, z), world.
        q_init: (7,) start configuration, rad.
        pos_tol: success tolerance on the position error, metres.
        rot_tol: success tolerance on the orientation error, rad.
        max_iters: iteration cap.
        damping: DLS damping (lambda), in the mixed metre/radian units of the error.
        posture_gain: null-space pull towards :data:`READY_QPOS` per iteration, keeping the elbow
            up and away from the joint limits.
    Returns:
        The best iterate; joint limits are enforced at every iteration by clipping.
    """
    position = np.asarray(position, dtype=np.float64)
    rotation = np.asarray(rotation, dtype=np.float64)
    lo, hi = index.arm_range[:, 0] + 1e-4, index.arm_range[:, 1] - 1e-4
    q = np.clip(np.asarray(q_init, dtype=np.float64), lo, hi)
    jacp, jacr = np.zeros((3, model.nv)), np.zeros((3, model.nv))
    best = (np.inf, q.copy(), np.inf, np.inf)
    eye = np.eye(7)
    it = 0
    for it in range(1, max_iters + 1):
        data.qpos[index.arm_qpos] = q
        mujoco.mj_kinematics(model, data)
        mujoco.mj_comPos(model, data)
        err_p = position - data.site_xpos[index.tcp_site]
        err_r = _rotation_error(rotation, data.site_xmat[index.tcp_site].reshape(3, 3))
        pe, re = float(np.linalg.norm(err_p)), float(np.linalg.norm(err_r))
        # 1 rad of orientation error weighs as much as 10 cm of position error.
        cost = pe + 0.1 * re
        if cost < best[0]:
            best = (cost, q.copy(), pe, re)
        if pe < pos_tol and re < rot_tol:
            break
        mujoco.mj_jacSite(model, data, jacp, jacr, index.tcp_site)
        jac = np.vstack([jacp[:, index.arm_dof], jacr[:, index.arm_dof]])
        err = np.concatenate([err_p, err_r])
        jjt = jac @ jac.T + damping ** 2 * np.eye(6)
        dq = jac.T @ np.linalg.solve(jjt, err)
        if pe > 10 * pos_tol or re > 10 * rot_tol:
            # The posture pull is not an exact null-space motion under damping, so it is
            # dropped near the target where it would stall the convergence.
            null = eye - jac.T @ np.linalg.solve(jjt, jac)
            dq += null @ (posture_gain * (READY_QPOS - q))
        # Cap the step so one iteration cannot jump across a singular region.
        step = np.max(np.abs(dq))
        if step > 0.3:
            dq *= 0.3 / step
        q = np.clip(q + dq, lo, hi)
    _, q_best, pe, re = best
    return IKResult(success=bool(pe < pos_tol and re < rot_tol), qpos=q_best,
                    position_error=pe, rotation_error=re, iterations=it)


def tcp_pose(model: mujoco.MjModel, data: mujoco.MjData,
             index: Optional[PandaIndex] = None) -> tuple:
    """((3,) position m, (3, 3) rotation) of the TCP in the world, from ``data`` as computed."""
    index = index or PandaIndex.from_model(model)
    return (data.site_xpos[index.tcp_site].copy(),
            data.site_xmat[index.tcp_site].reshape(3, 3).copy())
