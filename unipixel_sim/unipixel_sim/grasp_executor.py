"""Execute a parallel-jaw grasp with the simulated Panda and judge whether it holds the object.

Grasp pose convention (same as ``unipixel_ros.perception.grasp``): gripper frame z = approach
direction (from the gripper into the object), y = jaw closing axis, x = y cross z; the position
is the grasp centre between the finger pads, aligned here to the robot's ``tcp`` site (see
:mod:`unipixel_sim.panda`: 15 mm behind the fingertip ends, midway between the pads). A parallel
jaw is symmetric under a half turn about z, so the executor also tries that twin pose and keeps
whichever needs less joint travel.

Sequence (all physically simulated, the arm driven by its joint position servos along
joint-space interpolations between IK waypoints): open to ``width + margin``; move to the
pre-grasp pose ``pregrasp_distance`` back along the approach; approach in a straight line to the
grasp pose; close; lift ``lift_height`` straight up in the world; hold. Success: the target body
rises at least ``success_height`` above its start and stays there, touched by both fingers, for
the whole hold (``hold_s``).

Progress hook: ``execute(..., on_step=fn)`` calls ``fn(data, phase, sim_time)`` at the start of
every phase ('plan', 'move', 'approach', 'close', 'lift', 'hold') and every ``frame_dt`` of
simulated time in between, with the state between two physics steps; it may pace, publish or
draw, and stops the grasp by raising :class:`GraspCanceled`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

import mujoco
import numpy as np

from .panda import (FINGER_HALF_WIDTH, MAX_OPENING, READY_QPOS, TCP_TO_FINGERTIP, PandaIndex,
                    set_ready_pose, solve_ik)


@dataclass(frozen=True)
class ExecutorConfig:
    """Motion and success parameters; lengths in metres, durations in simulated seconds.

    Attributes:
        pregrasp_distance: pre-grasp offset back along the approach axis.
        lift_height: how far the TCP rises after closing.
        success_height: minimum rise of the target for success.
        hold_s: how long the lifted object must stay held.
        open_margin: added to the commanded width when opening (clipped to the max opening).
        table_clearance: minimum height of the fingertips above the table (z = 0) at the grasp;
            a grasp deeper than that is shifted back along its approach (or up, for approaches
            that are not mostly downward).
        move_s, approach_s, close_s, lift_s: segment durations.
        settle_s: longest extra wait after a segment for the arm to reach its target.
        approach_waypoints, lift_waypoints: IK waypoints along the straight segments.
        pos_tol, rot_tol: IK success tolerances (m, rad).
        frame_dt: simulated seconds between recorded frames and between ``on_step`` calls.
        contact_gap_s: longest finger contact loss tolerated during the hold.
    """

    pregrasp_distance: float = 0.10
    lift_height: float = 0.15
    success_height: float = 0.10
    hold_s: float = 1.0
    open_margin: float = 0.01
    table_clearance: float = 0.004
    move_s: float = 1.0
    approach_s: float = 0.6
    close_s: float = 0.5
    lift_s: float = 0.8
    settle_s: float = 0.3
    approach_waypoints: int = 5
    lift_waypoints: int = 5
    pos_tol: float = 1e-3
    rot_tol: float = float(np.deg2rad(1.0))
    frame_dt: float = 0.04
    contact_gap_s: float = 0.05


@dataclass
class GraspOutcome:
    """Result of one grasp attempt.

    Attributes:
        success: the target was lifted >= ``success_height`` and held for ``hold_s``.
        reason: 'ok', or '<code>: <explanation>' with code one of ``invalid_width``,
            ``width_too_large``, ``unknown_target``, ``unreachable``, ``missed``,
            ``wrong_object``, ``dropped``, ``simulation_error``, ``canceled``.
        lifted_height_m: target height at the end minus its start height, metres.
        held_s: simulated seconds from the start of the hold that the target stayed lifted and
            touched by both fingers.
        ik_error: worst TCP position error over the IK waypoints, metres (inf if unsolved).
        ik_rotation_error: worst TCP orientation error over the IK waypoints, rad.
        grasp_shift_m: how far the grasp was moved to keep the fingertips above the table.
        target_body: name of the body judged (given, or found between the jaws).
        timings: wall-clock seconds per phase ('plan', 'move', 'approach', 'close', 'lift',
            'hold', 'total') and 'sim_s' (simulated seconds).
        frames: (H, W, 3) uint8 RGB images when recording, else None.
    """

    success: bool
    reason: str
    lifted_height_m: float = 0.0
    held_s: float = 0.0
    ik_error: float = float('inf')
    ik_rotation_error: float = float('inf')
    grasp_shift_m: float = 0.0
    target_body: Optional[str] = None
    timings: Dict[str, float] = field(default_factory=dict)
    frames: Optional[List[np.ndarray]] = None


#: ``on_step(data, phase, sim_time)``: the live state, the phase name and the simulated seconds
#: since the grasp started (after validation, before planning).
StepHook = Callable[[mujoco.MjData, str, float], None]


class GraspCanceled(Exception):
    """Raised by an ``on_step`` hook to stop :meth:`GraspExecutor.execute` where it is; the
    outcome then reads ``canceled: <message>`` and the arm stays where it stopped (the next
    :meth:`GraspExecutor.reset` restores the scene)."""


def _smoothstep(s: np.ndarray) -> np.ndarray:
    """Quintic 0->1 blend with zero velocity and acceleration at both ends."""
    return s * s * s * (10.0 + s * (-15.0 + 6.0 * s))


def _orthonormal(rotation: np.ndarray) -> np.ndarray:
    """Nearest proper rotation to a (3, 3) matrix (SVD projection)."""
    u, _, vt = np.linalg.svd(np.asarray(rotation, dtype=np.float64))
    r = u @ vt
    if np.linalg.det(r) < 0:
        u[:, -1] *= -1
        r = u @ vt
    return r


def pose_from_camera(position_cam: Sequence[float], quaternion_xyzw_cam: Sequence[float],
                     T_world_camera: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Camera optical frame (x right, y down, z forward) grasp -> world.

    Args:
        position_cam: (3,) grasp centre in the camera frame, metres.
        quaternion_xyzw_cam: (4,) gripper orientation in the camera frame, (x, y, z, w).
        T_world_camera: (4, 4) pose of the camera optical frame in the world.
    Returns:
        ((3,) position, (3, 3) rotation) in the world frame.
    """
    t = np.asarray(T_world_camera, dtype=np.float64)
    x, y, z, w = np.asarray(quaternion_xyzw_cam, dtype=np.float64)
    r_cam = np.empty(9)
    mujoco.mju_quat2Mat(r_cam, np.array([w, x, y, z]) / np.linalg.norm([w, x, y, z]))
    rotation = t[:3, :3] @ r_cam.reshape(3, 3)
    position = t[:3, :3] @ np.asarray(position_cam, dtype=np.float64) + t[:3, 3]
    return position, rotation


class GraspExecutor:
    """Runs grasps on a model that contains the Panda (see :func:`panda.attach_panda`).

    The scene state at construction (``data.qpos`` of every non-robot joint) is what
    :meth:`reset` restores; construction resets, so the arm starts at the ready pose.

    Args:
        model: compiled model with the robot attached under ``prefix``.
        data: the simulation state to drive (modified in place).
        prefix: the robot's name prefix.
        config: motion and success parameters.
        renderer: optional renderer used when ``execute(..., record=True)``.
        camera: camera name, id or ``mujoco.MjvCamera`` for the recorded frames (-1: free).
    """

    def __init__(self, model: mujoco.MjModel, data: mujoco.MjData, prefix: str = 'panda/',
                 config: ExecutorConfig = ExecutorConfig(),
                 renderer: Optional[mujoco.Renderer] = None,
                 camera: Union[str, int, mujoco.MjvCamera] = -1):
        self.model, self.data, self.prefix, self.config = model, data, prefix, config
        self.renderer, self.camera = renderer, camera
        self.index = PandaIndex.from_model(model, prefix)
        self._ik_data = mujoco.MjData(model)
        self._scene_qpos = data.qpos.copy()
        self._finger_set = set(int(b) for b in self.index.finger_bodies)
        self._robot_set = set(int(b) for b in self.index.robot_bodies)
        act = self.index.arm_ctrl
        self._lead = ((model.dof_damping[self.index.arm_dof] - model.actuator_biasprm[act, 2])
                      / model.actuator_gainprm[act, 0])
        self._frames: Optional[List[np.ndarray]] = None
        self._next_frame_t = 0.0
        self._on_step: Optional[StepHook] = None
        self._phase = ''
        self._sim_t0 = self._next_hook_t = 0.0
        self.reset()

    def reset(self, settle_s: float = 0.1) -> None:
        """``mj_resetData``, restore the scene's object poses, arm at the ready pose with the
        gripper open, then let the objects settle for ``settle_s`` simulated seconds."""
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[:] = self._scene_qpos
        set_ready_pose(self.model, self.data, self.prefix)
        self._step(int(round(settle_s / self.model.opt.timestep)))

    # ---------------------------------------------------------------- public API

    def execute_in_camera_frame(self, position_cam: Sequence[float],
                                quaternion_xyzw_cam: Sequence[float], width: float,
                                T_world_camera: np.ndarray, target_body: Optional[str] = None,
                                record: bool = False,
                                on_step: Optional[StepHook] = None) -> GraspOutcome:
        """:meth:`execute` for a grasp in the camera optical frame (:func:`pose_from_camera`)."""
        position, rotation = pose_from_camera(position_cam, quaternion_xyzw_cam, T_world_camera)
        return self.execute(position, rotation, width, target_body, record, on_step)

    def execute(self, grasp_position_world: Sequence[float], grasp_rotation_world: np.ndarray,
                width_m: float, target_body: Optional[str] = None,
                record: bool = False, on_step: Optional[StepHook] = None) -> GraspOutcome:
        """Run one grasp from the current state.

        Args:
            grasp_position_world: (3,) grasp centre (TCP target), world, metres.
            grasp_rotation_world: (3, 3) gripper frame in the world, columns x, y (jaws),
                z (approach); re-orthonormalised.
            width_m: object width across the jaws (or a commanded opening), metres; the gripper
                opens to ``width_m + open_margin`` clipped to 0.08 m. Over 0.08 m is rejected.
            target_body: body that must be lifted; None judges the body found between the
                fingers after closing.
            record: collect frames with the renderer given at construction.
            on_step: ``on_step(data, phase, sim_time)`` at the start of each phase and every
                ``frame_dt`` simulated seconds (see the module docstring); ``sim_time`` counts
                simulated seconds from the start of 'plan'. Raising :class:`GraspCanceled` in
                it ends the grasp with reason ``canceled``; other exceptions propagate.
        Returns:
            The outcome; failures (and cancellation) are reported in it, never raised.
        """
        t_start = time.perf_counter()
        cfg = self.config
        timings: Dict[str, float] = {}
        if not np.isfinite(width_m) or width_m <= 0.0:
            return GraspOutcome(False, f'invalid_width: width must be > 0 m, got {width_m}')
        if width_m > MAX_OPENING + 1e-9:
            return GraspOutcome(False, f'width_too_large: {width_m:.3f} m exceeds the '
                                       f'{MAX_OPENING:.3f} m maximum opening of the Panda hand')
        target_id = -1
        if target_body is not None:
            target_id = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_BODY, target_body)
            if target_id < 0:
                return GraspOutcome(False, f'unknown_target: no body named {target_body!r}')

        opening = min(width_m + cfg.open_margin, MAX_OPENING)
        outcome = GraspOutcome(False, '', target_body=target_body, timings=timings)
        self._on_step, self._sim_t0 = on_step, self.data.time
        try:
            self._enter('plan')
            position = np.asarray(grasp_position_world, dtype=np.float64)
            rotation = _orthonormal(grasp_rotation_world)
            position, outcome.grasp_shift_m = self._clear_table(position, rotation, opening)
            q_pre, approach, lift, outcome.ik_error, outcome.ik_rotation_error, failure = \
                self._plan(position, rotation)
            timings['plan'] = time.perf_counter() - t_start
            if failure:
                outcome.reason = failure
            else:
                self._frames = [] if record and self.renderer is not None else None
                self._next_frame_t = self.data.time
                self._run(outcome, target_id, opening, q_pre, approach, lift)
        except GraspCanceled as exc:
            outcome.success, outcome.reason = False, f'canceled: {exc}'
        except mujoco.FatalError as exc:
            outcome.success, outcome.reason = False, f'simulation_error: {exc}'
        finally:
            self._on_step = None
        timings['sim_s'] = self.data.time - self._sim_t0
        timings['total'] = time.perf_counter() - t_start
        outcome.frames, self._frames = self._frames, None
        return outcome

    def _run(self, outcome: GraspOutcome, target_id: int, opening: float, q_pre: np.ndarray,
             approach: List[np.ndarray], lift: List[np.ndarray]) -> None:
        """Simulate the planned grasp and fill ``outcome`` (success, reason, heights, timings)."""
        cfg, timings = self.config, outcome.timings
        z_start = self.data.xpos[:, 2].copy()

        def phase(name, fn, *args):
            self._enter(name)
            t = time.perf_counter()
            result = fn(*args)
            timings[name] = time.perf_counter() - t
            return result

        self.data.ctrl[self.index.gripper_ctrl] = opening / 2.0
        phase('move', self._follow, [q_pre], cfg.move_s)
        phase('approach', self._follow, approach, cfg.approach_s)
        phase('close', self._close, cfg.close_s)

        between = self._bodies_between_fingers()
        if target_id < 0 and between:
            target_id = between[0]
            outcome.target_body = self.model.body(target_id).name
        if target_id < 0 or target_id not in between:
            if between:
                names = ', '.join(self.model.body(b).name for b in between)
                outcome.reason = f'wrong_object: closed on {names}, not {outcome.target_body}'
            else:
                outcome.reason = ('missed: no object is touched by both fingers after closing '
                                  f'(jaw gap {self._jaw_gap() * 100:.1f} cm)')
            if target_id >= 0:
                outcome.lifted_height_m = float(self.data.xpos[target_id, 2] - z_start[target_id])
            return
        z0 = float(z_start[target_id])
        phase('lift', self._follow, lift, cfg.lift_s)
        outcome.held_s = phase('hold', self._hold, target_id, z0, cfg.hold_s)
        outcome.lifted_height_m = float(self.data.xpos[target_id, 2] - z0)
        if outcome.held_s >= cfg.hold_s - 0.5 * self.model.opt.timestep:
            outcome.success, outcome.reason = True, 'ok'
        else:
            outcome.reason = (f'dropped: held {outcome.held_s:.2f} s of {cfg.hold_s:.2f} s, '
                              f'lifted {outcome.lifted_height_m * 100:.1f} cm '
                              f'(needs {cfg.success_height * 100:.0f} cm)')

    # ---------------------------------------------------------------- planning

    def _clear_table(self, position: np.ndarray, rotation: np.ndarray,
                     opening: float) -> Tuple[np.ndarray, float]:
        """Move the grasp so that the fingertip corners stay ``table_clearance`` above z = 0.

        Returns the (3,) position and the shift length, metres."""
        x, y, z = rotation.T
        tips = [position + z * TCP_TO_FINGERTIP + sx * x * FINGER_HALF_WIDTH
                + sy * y * (opening / 2.0 + 0.02) for sx in (-1, 1) for sy in (-1, 1)]
        deficit = self.config.table_clearance - min(p[2] for p in tips)
        if deficit <= 0.0:
            return position, 0.0
        if z[2] < -0.5:
            shift = deficit / -z[2]
            return position - z * shift, float(shift)
        return position + np.array([0.0, 0.0, deficit]), float(deficit)

    def _plan(self, position: np.ndarray, rotation: np.ndarray):
        """IK for the pre-grasp, approach and lift waypoints of ``rotation`` and of its half-turn
        twin about the approach axis; keeps the feasible one with less joint travel.

        Returns (q_pre (7,), approach [(7,)...], lift [(7,)...], worst position error m,
        worst rotation error rad, failure reason or '')."""
        cfg = self.config
        approach_dir = rotation[:, 2]
        pre = position - cfg.pregrasp_distance * approach_dir
        lifted = position + np.array([0.0, 0.0, cfg.lift_height])
        q_now = self.data.qpos[self.index.arm_qpos].copy()
        best = None
        for flip in (np.diag([1.0, 1.0, 1.0]), np.diag([-1.0, -1.0, 1.0])):
            rot = rotation @ flip
            targets = [pre]
            targets += [pre + (position - pre) * k / cfg.approach_waypoints
                        for k in range(1, cfg.approach_waypoints + 1)]
            targets += [position + (lifted - position) * k / cfg.lift_waypoints
                        for k in range(1, cfg.lift_waypoints + 1)]
            qs, errs = [], []
            # Seed the pre-grasp from the ready pose (a known good elbow-up posture), every later
            # waypoint from its predecessor so the straight segments stay on one IK branch.
            seed = READY_QPOS
            for target in targets:
                res = solve_ik(self.model, self._ik_data, self.index, target, rot, seed,
                               pos_tol=cfg.pos_tol, rot_tol=cfg.rot_tol)
                qs.append(res.qpos)
                errs.append((res.position_error, res.rotation_error, res.success, target))
                seed = res.qpos
                if not res.success:
                    break
            ok = all(e[2] for e in errs) and len(qs) == len(targets)
            travel = float(np.abs(qs[0] - q_now).sum())
            key = (not ok, travel if ok else max(e[0] + 0.1 * e[1] for e in errs))
            if best is None or key < best[0]:
                best = (key, qs, errs, ok)
        _, qs, errs, ok = best
        worst_p = max(e[0] for e in errs)
        worst_r = max(e[1] for e in errs)
        if not ok:
            bad = next(e for e in errs if not e[2])
            which = 'pre-grasp' if bad is errs[0] else (
                'approach' if len(errs) <= 1 + cfg.approach_waypoints else 'lift')
            where = np.array2string(bad[3], precision=3)
            return (None, [], [], worst_p, worst_r,
                    f'unreachable: no IK solution for the {which} pose at {where} m (residual '
                    f'{bad[0] * 100:.1f} cm, {np.rad2deg(bad[1]):.1f} deg)')
        n_app = cfg.approach_waypoints
        return qs[0], qs[1:1 + n_app], qs[1 + n_app:], worst_p, worst_r, ''

    # ---------------------------------------------------------------- simulation

    def _step(self, n: int) -> None:
        """``n`` physics steps, recording frames and calling the ``on_step`` hook on schedule."""
        for _ in range(n):
            mujoco.mj_step(self.model, self.data)
            if self._frames is not None and self.data.time >= self._next_frame_t:
                self.renderer.update_scene(self.data, self.camera)
                self._frames.append(self.renderer.render().copy())
                self._next_frame_t += self.config.frame_dt
            if self._on_step is not None and self.data.time >= self._next_hook_t:
                self._notify()

    def _enter(self, phase: str) -> None:
        """Start ``phase``: the hook hears of it at once, then every ``frame_dt`` from here."""
        self._phase = phase
        if self._on_step is not None:
            self._notify()

    def _notify(self) -> None:
        # Half a physics step of slack so float round-off never postpones a call by one step.
        self._next_hook_t = (self.data.time + self.config.frame_dt
                             - 0.5 * self.model.opt.timestep)
        self._on_step(self.data, self._phase, self.data.time - self._sim_t0)

    def _follow(self, waypoints: Sequence[np.ndarray], duration: float) -> None:
        """Drive the arm servos along a piecewise-linear joint path through ``waypoints``
        (starting at the current configuration) with a smoothstep time law, then wait up to
        ``settle_s`` for the joints to arrive within 2 mrad."""
        dt = self.model.opt.timestep
        path = np.vstack([self.data.qpos[self.index.arm_qpos]] + list(waypoints))
        seg = np.linalg.norm(np.diff(path, axis=0), axis=1)
        cum = np.concatenate([[0.0], np.cumsum(seg)])
        n = max(int(round(duration / dt)), 1)
        s = _smoothstep(np.arange(n + 1) / n) * cum[-1]
        i = np.clip(np.searchsorted(cum, s, side='right') - 1, 0, len(seg) - 1)
        a = np.where(seg[i] > 0, (s - cum[i]) / np.maximum(seg[i], 1e-12), 0.0)
        q_des = path[i] + a[:, None] * (path[i + 1] - path[i])
        qd_des = np.gradient(q_des, dt, axis=0)
        for k in range(1, n + 1):
            # Velocity feed-forward through the position target: a servo with gain kp and total
            # damping c (its kv plus the joint damping) tracks a moving target with a lag of
            # c * qdot / kp; leading the target by that amount removes it.
            self.data.ctrl[self.index.arm_ctrl] = q_des[k] + self._lead * qd_des[k]
            self._step(1)
        goal = path[-1]
        self.data.ctrl[self.index.arm_ctrl] = goal
        for _ in range(int(round(self.config.settle_s / dt))):
            if np.max(np.abs(self.data.qpos[self.index.arm_qpos] - goal)) < 2e-3:
                break
            self._step(1)

    def _close(self, duration: float) -> None:
        """Command the jaws fully closed (the servo then squeezes with its force limit) and wait
        ``duration``, or less once the fingers have stopped after at least 0.15 s."""
        self.data.ctrl[self.index.gripper_ctrl] = 0.0
        dt = self.model.opt.timestep
        fingers = self.model.jnt_dofadr[[self.model.joint(self.prefix + n).id
                                         for n in ('finger_joint1', 'finger_joint2')]]
        for k in range(int(round(duration / dt))):
            self._step(1)
            if k * dt > 0.15 and np.max(np.abs(self.data.qvel[fingers])) < 1e-3:
                break

    def _hold(self, target_id: int, z0: float, duration: float) -> float:
        """Simulate ``duration`` s; return how long the target stayed held from the start: at
        least ``success_height`` above ``z0`` and touched by both fingers (a loss of contact
        shorter than ``contact_gap_s`` is solver jitter, not a drop)."""
        dt = self.model.opt.timestep
        last_touch = held = 0.0
        for k in range(int(round(duration / dt))):
            self._step(1)
            t = (k + 1) * dt
            if target_id in self._bodies_between_fingers():
                last_touch = t
            if (self.data.xpos[target_id, 2] - z0 < self.config.success_height
                    or t - last_touch > self.config.contact_gap_s):
                break
            held = t
        return held

    # ---------------------------------------------------------------- state queries

    def _bodies_between_fingers(self) -> List[int]:
        """Non-robot bodies in contact with both fingers now."""
        ncon = self.data.ncon
        if ncon == 0:
            return []
        geoms = np.stack([self.data.contact.geom1[:ncon], self.data.contact.geom2[:ncon]], 1)
        bodies = self.model.geom_bodyid[geoms]
        touching: Dict[int, set] = {}
        for b1, b2 in bodies:
            for finger, other in ((b1, b2), (b2, b1)):
                if int(finger) in self._finger_set and int(other) not in self._robot_set \
                        and other != 0:
                    touching.setdefault(int(other), set()).add(int(finger))
        return [b for b, f in touching.items() if len(f) == 2]

    def _jaw_gap(self) -> float:
        """Current distance between the finger pads, metres."""
        return float(np.sum(self.data.qpos[self.index.finger_qpos]))
