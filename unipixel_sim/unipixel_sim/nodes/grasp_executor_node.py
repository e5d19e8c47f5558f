"""``grasp_executor``: executes grasp poses with the simulated Panda in the world of ``sim_camera``.

Grasps come from two entry points, served one at a time by one worker thread:

Action server (relative name):
    execute_grasp          unipixel_msgs/action/ExecuteGrasp. Goal: ``grasp`` (PoseStamped, as
                           on unipixel/grasp), ``width`` (m, 0 = ``default_width_m``),
                           ``target_body`` ('' = the object under the grasp). Feedback: the
                           phase (plan|move|approach|close|lift|hold) and the simulated seconds
                           since the start, at every phase start and ``state_rate_hz`` per
                           simulated second. Result: success, reason, target_body,
                           lifted_height (m), held_time (simulated s), execution_time (wall s);
                           the goal ends SUCCEEDED iff ``success``, else ABORTED (CANCELED after
                           a cancel). A goal that arrives while any grasp runs or its result is
                           shown is REJECTED (logged); that is the only reason for a rejection:
                           bad frames, poses, widths or a missing scene end ABORTED with a reason.
                           Cancel is accepted at any time and takes effect at the next state
                           update (<= 1 / ``state_rate_hz`` simulated s): the arm stops where it
                           is and the reason reads ``canceled: ...``.
Subscriptions (relative names):
    sim/scene              std_msgs/String JSON (latched) from sim_camera; the world is rebuilt
                           from its scene spec and settled qpos whenever the scene changes.
    unipixel/grasp         geometry_msgs/PoseStamped grasp (gripper z = approach, y = jaw axis,
                           position = grasp centre, metres) in the camera optical frame of
                           sim/scene (or in ``world_frame``). Poses that arrive while a grasp
                           runs or its result is shown are dropped (logged): one grasp per pose.
                           Only with ``execute_on_grasp_topic`` (default true).
    unipixel/gripper_width std_msgs/Float32, object width across the jaws, metres, for poses
                           from unipixel/grasp; the latest value is used, ``default_width_m``
                           until one arrives. Only with ``execute_on_grasp_topic``.
Publications:
    sim/state              std_msgs/Float64MultiArray, full qpos (nq), reliable, keep last 1,
                           at ``state_rate_hz`` of simulated time while a grasp runs, then the
                           final state, then (after ``show_result_s``) the settled scene again.
    sim/grasp_outcome      std_msgs/String JSON of every grasp (topic or action): success,
                           reason, source (topic|action), target, lifted_height_m, held_s,
                           width_m, grasp_world, execution_s, sim_s, seed, pose_stamp.

Each grasp is an independent trial: the world is reset to the settled scene with the arm at
the ready pose (a jump from the observe pose), then the grasp runs, paced to
``real_time_factor`` x real time so that the camera sees the motion.

Target (the object whose lift is judged): the object whose up axis passes closest to the grasp
centre, within ``target_radius_m`` (:func:`world_state.object_under_grasp`); with none that
close, whatever object ends up between the jaws is judged (``target`` then names it).
"""
from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field, replace
from functools import partial
from typing import List, Optional, Tuple

import mujoco
import numpy as np
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import ParameterDescriptor, ParameterType, SetParametersResult
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.action.server import ServerGoalHandle
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import Float32, Float64MultiArray, MultiArrayDimension, String
from unipixel_msgs.action import ExecuteGrasp

from ..grasp_executor import GraspCanceled, GraspExecutor, pose_from_camera
from ..panda import MAX_OPENING
from .runtime import run_node
from .sim_camera import SCENE_QOS, SCENE_TOPIC, STATE_QOS, STATE_TOPIC
from .world_state import World, apply_state, object_under_grasp, world_from_document

GRASP_TOPIC = 'unipixel/grasp'
WIDTH_TOPIC = 'unipixel/gripper_width'
OUTCOME_TOPIC = 'sim/grasp_outcome'
ACTION_NAME = 'execute_grasp'
RELIABLE_10 = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


@dataclass
class _Request:
    """One grasp for the worker thread.

    Attributes:
        pose: the grasp, in the camera optical frame of sim/scene or in ``world_frame``.
        width_m: object width across the jaws, metres.
        target_body: body whose lift is judged; None = the object under the grasp.
        goal: the action goal that asked for it; None for a pose from unipixel/grasp.
        created: ``time.perf_counter()`` when it arrived (execution_s counts from here).
        outcome: the sim/grasp_outcome document, once ``done`` is set.
        done: set by the worker (or by shutdown) when ``outcome`` is final.
    """

    pose: PoseStamped
    width_m: float
    target_body: Optional[str]
    goal: Optional[ServerGoalHandle] = None
    created: float = field(default_factory=time.perf_counter)
    outcome: Optional[dict] = None
    done: threading.Event = field(default_factory=threading.Event)


class _GraspHook:
    """The ``GraspExecutor`` ``on_step`` hook of one grasp (every ``frame_dt`` simulated s and
    at each phase start).

    Paces simulated time to ``real_time_factor`` x wall time (0 = as fast as possible) from the
    first call after planning, so planning time is not made up for by a burst; publishes
    ``qpos`` on sim/state; for an action goal, sends the phase as feedback and stops the grasp
    (:class:`GraspCanceled`) once the goal is being canceled.
    """

    def __init__(self, node: 'GraspExecutorNode', request: _Request,
                 real_time_factor: float) -> None:
        self._node, self._goal, self._rtf = node, request.goal, real_time_factor
        self._origin: Optional[Tuple[float, float]] = None  # (wall s, simulated s)

    def __call__(self, data: mujoco.MjData, phase: str, sim_time: float) -> None:
        if self._goal is not None and self._goal.is_cancel_requested:
            raise GraspCanceled(f'the action goal was canceled during {phase}')
        if phase != 'plan':
            if self._origin is None:
                self._origin = (time.monotonic(), sim_time)
            elif self._rtf > 0:
                wall0, sim0 = self._origin
                delay = wall0 + (sim_time - sim0) / self._rtf - time.monotonic()
                if delay > 0:
                    self._node._stop.wait(delay)
        self._node._publish_state(data.qpos)
        if self._goal is not None:
            self._node._publish(self._goal.publish_feedback,
                                ExecuteGrasp.Feedback(phase=phase, sim_time=float(sim_time)))


class GraspExecutorNode(Node):
    """Grasp server over topics; see the module docstring."""

    def __init__(self) -> None:
        super().__init__('grasp_executor')
        self.add_on_set_parameters_callback(self._on_set_parameters)
        P = ParameterType

        def declare(name, default, type_, description, constraints='', read_only=False):
            self.declare_parameter(name, default, ParameterDescriptor(
                type=type_, description=description, additional_constraints=constraints,
                read_only=read_only))

        declare('default_width_m', 0.07, P.PARAMETER_DOUBLE,
                'Jaw width until unipixel/gripper_width arrives and for execute_grasp goals '
                'with width 0, metres.',
                f'0 < w <= {MAX_OPENING}')
        declare('real_time_factor', 1.0, P.PARAMETER_DOUBLE,
                'Simulated seconds per wall second during a grasp; 0 = as fast as possible.',
                '0..100')
        declare('state_rate_hz', 25.0, P.PARAMETER_DOUBLE,
                'sim/state messages per simulated second during a grasp.', '1..100')
        declare('show_result_s', 2.0, P.PARAMETER_DOUBLE,
                'Wall seconds the final state is shown before the settled scene returns.',
                '0..60')
        declare('target_radius_m', 0.08, P.PARAMETER_DOUBLE,
                'Largest distance from the grasp centre to an object axis for that object to '
                'be the target, metres.', '> 0')
        declare('world_frame', 'world', P.PARAMETER_STRING,
                'frame_id accepted for grasps given in world coordinates.', 'non-empty')
        declare('execute_on_grasp_topic', True, P.PARAMETER_BOOL,
                'Execute every pose on unipixel/grasp (with unipixel/gripper_width); false '
                'leaves the execute_grasp action as the only trigger.', 'startup only',
                read_only=True)

        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._pending_doc: Optional[dict] = None
        # _busy: a grasp is reserved (accepted goal), queued in _pending or running, or its
        # result is being shown; it gates both entry points.
        self._pending: Optional[_Request] = None
        self._busy = False
        self._width: Optional[float] = None
        self._doc: Optional[dict] = None
        self._world: Optional[World] = None
        self._executor: Optional[GraspExecutor] = None

        self._state_pub = self.create_publisher(Float64MultiArray, STATE_TOPIC, STATE_QOS)
        self._outcome_pub = self.create_publisher(String, OUTCOME_TOPIC, RELIABLE_10)
        self.create_subscription(String, SCENE_TOPIC, self._on_scene, SCENE_QOS)
        if self.get_parameter('execute_on_grasp_topic').value:
            self.create_subscription(PoseStamped, GRASP_TOPIC, self._on_grasp, RELIABLE_10)
            self.create_subscription(Float32, WIDTH_TOPIC, self._on_width, RELIABLE_10)
        # Reentrant: the execute callback blocks its executor thread for the whole grasp while
        # goal and cancel requests must still be answered.
        self._action_server = ActionServer(
            self, ExecuteGrasp, ACTION_NAME, self._execute_goal,
            goal_callback=self._on_goal, cancel_callback=self._on_cancel,
            callback_group=ReentrantCallbackGroup())
        self._thread = threading.Thread(target=self._work, name='grasp_worker', daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ parameters

    def _on_set_parameters(self, params: List[Parameter]) -> SetParametersResult:
        limits = {'default_width_m': (1e-6, MAX_OPENING), 'real_time_factor': (0.0, 100.0),
                  'state_rate_hz': (1.0, 100.0), 'show_result_s': (0.0, 60.0),
                  'target_radius_m': (1e-6, 1.0)}
        for p in params:
            if p.name in limits:
                lo, hi = limits[p.name]
                if not (isinstance(p.value, float) and lo <= p.value <= hi):
                    return SetParametersResult(
                        successful=False, reason=f'{p.name} must be in [{lo:g}, {hi:g}], '
                                                 f'got {p.value}')
            if p.name == 'world_frame' and not p.value:
                return SetParametersResult(successful=False, reason='world_frame must be set')
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------ callbacks

    def _on_scene(self, msg: String) -> None:
        try:
            doc = json.loads(msg.data)
            key = (doc['seed'], json.dumps(doc['scene'], sort_keys=True))
        except (ValueError, KeyError) as exc:
            self.get_logger().error(f'ignoring malformed sim/scene: {exc}')
            return
        current = self._doc
        if current is not None and key == (current['seed'],
                                           json.dumps(current['scene'], sort_keys=True)):
            return  # the same scene in a new state (sim_camera re-announces every change)
        with self._lock:
            self._pending_doc = doc
        self._wake.set()

    def _on_width(self, msg: Float32) -> None:
        self._width = float(msg.data)

    def _on_grasp(self, msg: PoseStamped) -> None:
        width = self._width if self._width is not None else \
            self.get_parameter('default_width_m').value
        with self._lock:
            if self._busy:
                self.get_logger().warning('grasp pose dropped: a grasp is already running',
                                          throttle_duration_sec=2.0)
                return
            self._busy = True
        self._submit(_Request(msg, width, None))

    def _on_goal(self, goal: ExecuteGrasp.Goal) -> GoalResponse:
        with self._lock:
            accept = not self._busy and not self._stop.is_set()
            if accept:
                self._busy = True  # reserved until the goal's grasp and its showing are over
        if not accept:
            self.get_logger().warning(
                f'{ACTION_NAME} goal rejected: a grasp is already running or its result is '
                'shown (one grasp at a time)')
            return GoalResponse.REJECT
        return GoalResponse.ACCEPT

    def _on_cancel(self, goal_handle: ServerGoalHandle) -> CancelResponse:
        self.get_logger().info(f'{ACTION_NAME}: cancel requested; the grasp stops at its next '
                               'state update')
        return CancelResponse.ACCEPT

    def _execute_goal(self, goal_handle: ServerGoalHandle) -> ExecuteGrasp.Result:
        """Runs in an executor thread: hands the goal to the worker and blocks until its
        outcome is ready (the result is sent before ``show_result_s`` starts)."""
        goal = goal_handle.request
        width = float(goal.width) if goal.width != 0.0 else \
            self.get_parameter('default_width_m').value
        request = _Request(goal.grasp, width, goal.target_body or None, goal_handle)
        self._submit(request)
        request.done.wait()
        out = request.outcome
        if out['reason'].startswith('canceled:') and goal_handle.is_cancel_requested:
            end = goal_handle.canceled
        elif out['success']:
            end = goal_handle.succeed
        else:
            end = goal_handle.abort
        try:
            end()
        except Exception:
            if self.context.ok():
                raise  # not a shutdown race: a real error
        return ExecuteGrasp.Result(
            success=out['success'], reason=out['reason'], target_body=out.get('target') or '',
            lifted_height=float(out.get('lifted_height_m', 0.0)),
            held_time=float(out.get('held_s', 0.0)), execution_time=float(out['execution_s']))

    def _submit(self, request: _Request) -> None:
        """Queue ``request`` (the caller has set ``_busy``); after shutdown it fails at once."""
        with self._lock:
            stopped = self._stop.is_set()
            if not stopped:
                self._pending = request
        if stopped:
            self._finish(request, self._outcome_doc(
                request, False, 'node_error: the node is shutting down'))
        else:
            self._wake.set()

    # ------------------------------------------------------------------ worker

    def _work(self) -> None:
        """Worker thread: (re)builds the world and runs grasps off the executor thread."""
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                doc, self._pending_doc = self._pending_doc, None
                request = self._pending
            if doc is not None:
                self._load(doc)
            if request is not None:
                moved = False
                try:
                    outcome, moved = self._run_grasp(request)
                except Exception as exc:  # keep serving; report the failure as an outcome
                    self.get_logger().error(f'grasp failed with an exception: {exc!r}')
                    outcome = self._outcome_doc(request, False, f'node_error: {exc!r}')
                self._finish(request, outcome)
                try:
                    if moved:
                        self._show_result()
                finally:
                    with self._lock:
                        self._pending = None
                        self._busy = False
                    if self._pending_doc is not None:
                        self._wake.set()

    def _load(self, doc: dict) -> None:
        start = time.perf_counter()
        try:
            world = world_from_document(doc)
        except (KeyError, TypeError, ValueError) as exc:
            self.get_logger().error(f'cannot build the world of sim/scene: {exc}')
            return
        executor = GraspExecutor(world.model, world.data)
        self._world, self._executor, self._doc = world, executor, doc
        self.get_logger().info(f'world of scene seed {doc["seed"]} ready '
                               f'({time.perf_counter() - start:.2f} s)')

    def _publish_state(self, qpos: np.ndarray) -> None:
        msg = Float64MultiArray()
        msg.layout.dim = [MultiArrayDimension(label='qpos', size=int(qpos.size),
                                              stride=int(qpos.size))]
        msg.data = np.asarray(qpos, dtype=np.float64).tobytes()
        self._publish(self._state_pub.publish, msg)

    def _publish(self, publish, msg) -> None:
        """``publish(msg)``, ignoring the failure of a publish that races shutdown."""
        try:
            publish(msg)
        except Exception:
            if self.context.ok():
                raise  # not a shutdown race: a real error

    def _outcome_doc(self, request: _Request, success: bool, reason: str, **extra) -> dict:
        """The sim/grasp_outcome document of ``request`` (see the module docstring)."""
        stamp = request.pose.header.stamp
        doc = {'success': bool(success), 'reason': reason,
               'source': 'topic' if request.goal is None else 'action',
               'width_m': request.width_m,
               'execution_s': time.perf_counter() - request.created,
               'seed': self._doc['seed'] if self._doc else None,
               'pose_stamp': {'sec': stamp.sec, 'nanosec': stamp.nanosec},
               'frame_id': request.pose.header.frame_id}
        doc.update(extra)
        return doc

    def _finish(self, request: _Request, outcome: dict) -> None:
        """Publish and log ``outcome``, then release whoever waits on ``request`` (also when
        publishing fails, so that no goal waits forever)."""
        request.outcome = outcome
        try:
            self._publish(self._outcome_pub.publish, String(data=json.dumps(outcome)))
            if outcome['success']:
                self.get_logger().info(f'grasp outcome: success ({outcome["reason"]})')
            else:
                self.get_logger().warning(f'grasp outcome: failure ({outcome["reason"]})')
        finally:
            request.done.set()

    def _run_grasp(self, request: _Request) -> Tuple[dict, bool]:
        """Run one grasp; returns (outcome document, whether the world was moved)."""
        if self._executor is None:
            return self._outcome_doc(request, False, 'no_scene: no sim/scene received yet'), False
        world, doc, pose = self._world, self._doc, request.pose
        p, q = pose.pose.position, pose.pose.orientation
        values = np.array([p.x, p.y, p.z, q.x, q.y, q.z, q.w])
        if not np.all(np.isfinite(values)) or np.linalg.norm(values[3:]) < 1e-6:
            return self._outcome_doc(
                request, False, 'invalid_pose: non-finite values or a zero quaternion'), False
        frame = pose.header.frame_id
        if frame == doc['frame_id']:
            position, rotation = pose_from_camera(
                [p.x, p.y, p.z], [q.x, q.y, q.z, q.w], np.asarray(doc['T_world_camera']))
        elif frame == self.get_parameter('world_frame').value:
            position, rotation = pose_from_camera(
                [p.x, p.y, p.z], [q.x, q.y, q.z, q.w], np.eye(4))
        else:
            return self._outcome_doc(
                request, False, f'wrong_frame: grasp in {frame!r}, expected '
                                f'{doc["frame_id"]!r} or '
                                f'{self.get_parameter("world_frame").value!r}'), False
        self._executor.config = replace(
            self._executor.config, frame_dt=1.0 / self.get_parameter('state_rate_hz').value)
        self._executor.reset()
        target = request.target_body
        if target is None:
            index = object_under_grasp(world, position,
                                       self.get_parameter('target_radius_m').value)
            target = f'obj_{index}' if index is not None else None
        hook = _GraspHook(self, request, self.get_parameter('real_time_factor').value)
        outcome = self._executor.execute(position, rotation, request.width_m, target,
                                         on_step=hook)
        self._publish_state(world.data.qpos)
        return self._outcome_doc(
            request, outcome.success, outcome.reason, target=outcome.target_body,
            lifted_height_m=outcome.lifted_height_m, held_s=outcome.held_s,
            grasp_world={'position': position.tolist(), 'rotation': rotation.tolist()},
            sim_s=outcome.timings.get('sim_s', 0.0)), True

    def _show_result(self) -> None:
        """Keep the final state for ``show_result_s`` wall seconds, then show the settled
        scene again (skipped on shutdown)."""
        if self._stop.wait(self.get_parameter('show_result_s').value):
            return
        apply_state(self._world, self._world.settled_qpos)
        self._publish_state(self._world.data.qpos)

    def close(self) -> None:
        """Stop the worker; a grasp in progress finishes unpaced (< 1 s) first. A queued
        grasp that never started fails with ``node_error`` so that no goal waits forever."""
        with self._lock:
            self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10.0)
        with self._lock:
            request = self._pending
        if request is not None and not request.done.is_set():
            self._finish(request, self._outcome_doc(
                request, False, 'node_error: the node is shutting down'))


def main(args: Optional[List[str]] = None) -> int:
    """Console script ``grasp_executor``."""
    # Multi-threaded: an action goal's execute callback blocks one thread for its grasp.
    return run_node(GraspExecutorNode, args,
                    executor_factory=partial(MultiThreadedExecutor, num_threads=4))


if __name__ == '__main__':
    raise SystemExit(main())
