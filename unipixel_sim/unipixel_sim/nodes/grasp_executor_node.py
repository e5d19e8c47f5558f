"""``grasp_executor``: executes grasp poses with the simulated Panda in the world of ``sim_camera``.

Subscriptions (relative names):
    sim/scene              std_msgs/String JSON (latched) from sim_camera; the world is rebuilt
                           from its scene spec and settled qpos whenever the scene changes.
    unipixel/grasp         geometry_msgs/PoseStamped grasp (gripper z = approach, y = jaw axis,
                           position = grasp centre, metres) in the camera optical frame of
                           sim/scene (or in ``world_frame``). Poses that arrive while a grasp
                           runs or its result is shown are dropped (logged): one grasp per pose.
    unipixel/gripper_width std_msgs/Float32, object width across the jaws, metres; the latest
                           value is used, ``default_width_m`` until one arrives.
Publications:
    sim/state              std_msgs/Float64MultiArray, full qpos (nq), reliable, keep last 1,
                           at ``state_rate_hz`` of simulated time while a grasp runs, then the
                           final state, then (after ``show_result_s``) the settled scene again.
    sim/grasp_outcome      std_msgs/String JSON: success, reason, target, lifted_height_m,
                           held_s, width_m, grasp_world, execution_s, sim_s, seed, pose_stamp.

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
from dataclasses import replace
from typing import List, Optional

import numpy as np
from geometry_msgs.msg import PoseStamped
from rcl_interfaces.msg import ParameterDescriptor, ParameterType, SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import Float32, Float64MultiArray, MultiArrayDimension, String

from ..grasp_executor import GraspExecutor, pose_from_camera
from ..panda import MAX_OPENING
from .runtime import run_node
from .sim_camera import SCENE_QOS, SCENE_TOPIC, STATE_QOS, STATE_TOPIC
from .world_state import World, apply_state, object_under_grasp, world_from_document

GRASP_TOPIC = 'unipixel/grasp'
WIDTH_TOPIC = 'unipixel/gripper_width'
OUTCOME_TOPIC = 'sim/grasp_outcome'
RELIABLE_10 = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


class _StateStreamer:
    """Publishes the simulated state while :class:`GraspExecutor` runs.

    It plugs into the executor's frame-recording hook (``renderer`` + ``record=True``, called
    every ``ExecutorConfig.frame_dt`` of simulated time with the state between two physics
    steps) and, instead of rendering, publishes ``qpos`` and sleeps to keep simulated time at
    ``real_time_factor`` x wall time (0 = as fast as possible). ``render`` returns an empty
    array, so the recorded "frames" cost nothing.
    """

    _EMPTY = np.empty(0, dtype=np.uint8)

    def __init__(self, publish_state, stop: threading.Event) -> None:
        self._publish_state = publish_state
        self._stop = stop
        self.real_time_factor = 1.0
        self._origin: Optional[tuple] = None

    def start(self, real_time_factor: float) -> None:
        """Begin a new paced segment at the next call."""
        self.real_time_factor = real_time_factor
        self._origin = None

    def update_scene(self, data, camera=None) -> None:
        if self._origin is None:
            self._origin = (time.monotonic(), data.time)
        elif self.real_time_factor > 0:
            wall0, sim0 = self._origin
            delay = wall0 + (data.time - sim0) / self.real_time_factor - time.monotonic()
            if delay > 0:
                self._stop.wait(delay)
        self._publish_state(data.qpos)

    def render(self) -> np.ndarray:
        return self._EMPTY


class GraspExecutorNode(Node):
    """Grasp server over topics; see the module docstring."""

    def __init__(self) -> None:
        super().__init__('grasp_executor')
        self.add_on_set_parameters_callback(self._on_set_parameters)
        P = ParameterType

        def declare(name, default, type_, description, constraints=''):
            self.declare_parameter(name, default, ParameterDescriptor(
                type=type_, description=description, additional_constraints=constraints))

        declare('default_width_m', 0.07, P.PARAMETER_DOUBLE,
                'Jaw width used until unipixel/gripper_width arrives, metres.',
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

        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._pending_doc: Optional[dict] = None
        self._pending_grasp: Optional[PoseStamped] = None
        self._busy = False
        self._width: Optional[float] = None
        self._doc: Optional[dict] = None
        self._world: Optional[World] = None
        self._executor: Optional[GraspExecutor] = None
        self._streamer = _StateStreamer(self._publish_state, self._stop)

        self._state_pub = self.create_publisher(Float64MultiArray, STATE_TOPIC, STATE_QOS)
        self._outcome_pub = self.create_publisher(String, OUTCOME_TOPIC, RELIABLE_10)
        self.create_subscription(String, SCENE_TOPIC, self._on_scene, SCENE_QOS)
        self.create_subscription(PoseStamped, GRASP_TOPIC, self._on_grasp, RELIABLE_10)
        self.create_subscription(Float32, WIDTH_TOPIC, self._on_width, RELIABLE_10)
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
        with self._lock:
            if self._busy or self._pending_grasp is not None:
                self.get_logger().warning('grasp pose dropped: a grasp is already running',
                                          throttle_duration_sec=2.0)
                return
            self._pending_grasp = msg
            self._busy = True
        self._wake.set()

    # ------------------------------------------------------------------ worker

    def _work(self) -> None:
        """Worker thread: (re)builds the world and runs grasps off the executor thread."""
        while not self._stop.is_set():
            self._wake.wait()
            self._wake.clear()
            with self._lock:
                doc, self._pending_doc = self._pending_doc, None
                grasp = self._pending_grasp
            if doc is not None:
                self._load(doc)
            if grasp is not None:
                try:
                    self._run_grasp(grasp)
                except Exception as exc:  # keep serving; report the failure as an outcome
                    self.get_logger().error(f'grasp failed with an exception: {exc!r}')
                    self._outcome(grasp, False, f'node_error: {exc!r}')
                finally:
                    with self._lock:
                        self._pending_grasp = None
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
        executor = GraspExecutor(world.model, world.data, renderer=self._streamer)
        self._world, self._executor, self._doc = world, executor, doc
        self.get_logger().info(f'world of scene seed {doc["seed"]} ready '
                               f'({time.perf_counter() - start:.2f} s)')

    def _publish_state(self, qpos: np.ndarray) -> None:
        msg = Float64MultiArray()
        msg.layout.dim = [MultiArrayDimension(label='qpos', size=int(qpos.size),
                                              stride=int(qpos.size))]
        msg.data = np.asarray(qpos, dtype=np.float64).tobytes()
        self._publish(self._state_pub, msg)

    def _publish(self, publisher, msg) -> None:
        try:
            publisher.publish(msg)
        except Exception:
            if self.context.ok():
                raise  # not a shutdown race: a real error

    def _outcome(self, pose: PoseStamped, success: bool, reason: str, **extra) -> None:
        doc = {'success': bool(success), 'reason': reason,
               'seed': self._doc['seed'] if self._doc else None,
               'pose_stamp': {'sec': pose.header.stamp.sec, 'nanosec': pose.header.stamp.nanosec},
               'frame_id': pose.header.frame_id}
        doc.update(extra)
        self._publish(self._outcome_pub, String(data=json.dumps(doc)))
        if success:
            self.get_logger().info(f'grasp outcome: success ({reason})')
        else:
            self.get_logger().warning(f'grasp outcome: failure ({reason})')

    def _run_grasp(self, pose: PoseStamped) -> None:
        start = time.perf_counter()
        if self._executor is None:
            self._outcome(pose, False, 'no_scene: no sim/scene received yet')
            return
        world, doc = self._world, self._doc
        p, q = pose.pose.position, pose.pose.orientation
        values = np.array([p.x, p.y, p.z, q.x, q.y, q.z, q.w])
        if not np.all(np.isfinite(values)) or np.linalg.norm(values[3:]) < 1e-6:
            self._outcome(pose, False, 'invalid_pose: non-finite values or a zero quaternion')
            return
        frame = pose.header.frame_id
        if frame == doc['frame_id']:
            position, rotation = pose_from_camera(
                [p.x, p.y, p.z], [q.x, q.y, q.z, q.w], np.asarray(doc['T_world_camera']))
        elif frame == self.get_parameter('world_frame').value:
            position, rotation = pose_from_camera(
                [p.x, p.y, p.z], [q.x, q.y, q.z, q.w], np.eye(4))
        else:
            self._outcome(pose, False, f'wrong_frame: grasp in {frame!r}, expected '
                                       f'{doc["frame_id"]!r} or '
                                       f'{self.get_parameter("world_frame").value!r}')
            return
        width = self._width if self._width is not None else \
            self.get_parameter('default_width_m').value
        self._executor.config = replace(
            self._executor.config, frame_dt=1.0 / self.get_parameter('state_rate_hz').value)
        self._executor.reset()
        index = object_under_grasp(world, position, self.get_parameter('target_radius_m').value)
        target = f'obj_{index}' if index is not None else None
        self._streamer.start(self.get_parameter('real_time_factor').value)
        outcome = self._executor.execute(position, rotation, width, target, record=True)
        self._publish_state(world.data.qpos)
        self._outcome(pose, outcome.success, outcome.reason, target=outcome.target_body,
                      lifted_height_m=outcome.lifted_height_m, held_s=outcome.held_s,
                      width_m=width,
                      grasp_world={'position': position.tolist(), 'rotation': rotation.tolist()},
                      execution_s=time.perf_counter() - start,
                      sim_s=outcome.timings.get('sim_s', 0.0))
        if self._stop.wait(self.get_parameter('show_result_s').value):
            return
        apply_state(world, world.settled_qpos)
        self._publish_state(world.data.qpos)

    def close(self) -> None:
        """Stop the worker; a grasp in progress finishes unpaced (< 1 s) first."""
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10.0)


def main(args: Optional[List[str]] = None) -> int:
    """Console script ``grasp_executor``."""
    return run_node(GraspExecutorNode, args)


if __name__ == '__main__':
    raise SystemExit(main())
