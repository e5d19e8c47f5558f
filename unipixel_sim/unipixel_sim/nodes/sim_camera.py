"""``sim_camera``: owns the simulated scene and publishes its head RGB-D camera like a RealSense.

Publications (relative names, remap in launch):
    camera/camera/color/image_raw                 sensor_msgs/Image rgb8
    camera/camera/aligned_depth_to_color/image_raw sensor_msgs/Image 16UC1 mm | 32FC1 m
    camera/camera/color/camera_info               sensor_msgs/CameraInfo
    sim/instances                                  sensor_msgs/Image mono16, 0 = background,
                                                   i + 1 = object i (if publish_instances)
  all with one identical header (stamp, frame_id) per frame; QoS best effort (``reliable`` to
  change), keep last ``qos_depth``, overridable through ``qos_overrides.*`` parameters.
    sim/scene   std_msgs/String JSON ground truth (see world_state.scene_document), reliable,
                transient local (latched), re-published whenever the world state changes.
Subscription:
    sim/state   std_msgs/Float64MultiArray, the full ``qpos`` (nq values) to show, published
                by grasp_executor while the robot moves.

Rendering one frame costs ~160 ms on 2 cores (rgb ~125, depth ~18, seg ~23 ms), so the camera
renders only when the world state changes and otherwise re-publishes the cached frame with a
new stamp: the static world looks exactly the same, which keeps ``rate_hz`` honest; while the
state changes, frames come at the render rate. The achieved rate is logged on shutdown.
"""
from __future__ import annotations

import json
import threading
import time
from typing import List, Optional

import numpy as np
from rcl_interfaces.msg import ParameterDescriptor, ParameterType, SetParametersResult
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy)
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Float64MultiArray, Header, String

from unipixel_ros.ros.conversions import intrinsics_to_camera_info, numpy_to_image

from ..render import SceneRenderer
from ..scene import MAX_RENDER_SIZE
from .runtime import run_node
from .world_state import (DEPTH_ENCODINGS, apply_state, build_world, degrade_depth, encode_depth,
                          scene_document)

COLOR_TOPIC = 'camera/camera/color/image_raw'
DEPTH_TOPIC = 'camera/camera/aligned_depth_to_color/image_raw'
INFO_TOPIC = 'camera/camera/color/camera_info'
INSTANCES_TOPIC = 'sim/instances'
SCENE_TOPIC = 'sim/scene'
STATE_TOPIC = 'sim/state'

#: QoS of sim/scene: late joiners (the grasp executor, evaluators) get the last document.
SCENE_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                       durability=DurabilityPolicy.TRANSIENT_LOCAL,
                       history=HistoryPolicy.KEEP_LAST)
#: QoS of sim/state: only the newest state matters, but none may be lost silently mid-stream.
STATE_QOS = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                       history=HistoryPolicy.KEEP_LAST)


def _descriptor(type_: int, description: str, constraints: str = '',
                read_only: bool = False) -> ParameterDescriptor:
    return ParameterDescriptor(type=type_, description=description,
                               additional_constraints=constraints, read_only=read_only)


class SimCamera(Node):
    """Scene owner and RGB-D camera; see the module docstring for topics and QoS."""

    def __init__(self) -> None:
        super().__init__('sim_camera')
        # Registered before declaring so that bad startup values are rejected the same way.
        self.add_on_set_parameters_callback(self._on_set_parameters)
        P = ParameterType
        self.declare_parameter('seed', 0, _descriptor(
            P.PARAMETER_INTEGER, 'Scene seed (unipixel_sim.scene.generate_scene).', '>= 0', True))
        self.declare_parameter('rate_hz', 15.0, _descriptor(
            P.PARAMETER_DOUBLE, 'Publish rate of the camera topics, Hz.', '0 < rate_hz <= 60'))
        self.declare_parameter('width', 640, _descriptor(
            P.PARAMETER_INTEGER, 'Image width, pixels.', f'1..{MAX_RENDER_SIZE[0]}', True))
        self.declare_parameter('height', 480, _descriptor(
            P.PARAMETER_INTEGER, 'Image height, pixels.', f'1..{MAX_RENDER_SIZE[1]}', True))
        self.declare_parameter('camera', 'head', _descriptor(
            P.PARAMETER_STRING, 'MuJoCo camera to render.', '', True))
        self.declare_parameter('frame_id', 'camera_color_optical_frame', _descriptor(
            P.PARAMETER_STRING, 'frame_id of all image headers (ROS optical frame).', 'non-empty',
            True))
        self.declare_parameter('depth_encoding', '16UC1', _descriptor(
            P.PARAMETER_STRING, 'Depth image encoding: 16UC1 millimetres or 32FC1 metres.',
            ' | '.join(DEPTH_ENCODINGS)))
        self.declare_parameter('depth_noise_m', 0.0, _descriptor(
            P.PARAMETER_DOUBLE, 'Std of Gaussian depth noise, metres, new noise every frame.',
            '0..0.1'))
        self.declare_parameter('depth_hole_fraction', 0.0, _descriptor(
            P.PARAMETER_DOUBLE, 'Fraction of depth pixels dropped (0 = no reading) per frame.',
            '0..1'))
        self.declare_parameter('publish_instances', True, _descriptor(
            P.PARAMETER_BOOL, 'Publish the instance-id image on sim/instances.', '', True))
        self.declare_parameter('reliable', False, _descriptor(
            P.PARAMETER_BOOL, 'Camera topics reliable instead of best effort.', '', True))
        self.declare_parameter('qos_depth', 2, _descriptor(
            P.PARAMETER_INTEGER, 'History depth (keep last) of the camera topics.', '1..5', True))

        gp = self.get_parameter
        self._frame_id = gp('frame_id').value
        self._camera = gp('camera').value
        self._publish_instances = bool(gp('publish_instances').value)
        qos = QoSProfile(
            depth=int(gp('qos_depth').value), history=HistoryPolicy.KEEP_LAST,
            reliability=(ReliabilityPolicy.RELIABLE if gp('reliable').value
                         else ReliabilityPolicy.BEST_EFFORT))
        overrides = QoSOverridingOptions.with_default_policies()
        self._color_pub = self.create_publisher(Image, COLOR_TOPIC, qos,
                                                qos_overriding_options=overrides)
        self._depth_pub = self.create_publisher(Image, DEPTH_TOPIC, qos,
                                                qos_overriding_options=overrides)
        self._info_pub = self.create_publisher(CameraInfo, INFO_TOPIC, qos,
                                               qos_overriding_options=overrides)
        self._instances_pub = (self.create_publisher(Image, INSTANCES_TOPIC, qos,
                                                     qos_overriding_options=overrides)
                               if self._publish_instances else None)
        self._scene_pub = self.create_publisher(String, SCENE_TOPIC, SCENE_QOS)

        start = time.perf_counter()
        self._world = build_world(int(gp('seed').value))
        nq = self._world.model.nq
        self.get_logger().info(
            f'scene seed {self._world.spec.seed}: {len(self._world.spec.objects)} objects, '
            f'nq={nq}, built in {time.perf_counter() - start:.2f} s')

        self._state_lock = threading.Lock()
        self._pending_state: Optional[np.ndarray] = None
        self.create_subscription(Float64MultiArray, STATE_TOPIC, self._on_state, STATE_QOS)

        self._rng = np.random.default_rng()
        self._stop = threading.Event()
        self._published = 0
        self._renders = 0
        self._t_first: Optional[float] = None
        self._t_last = 0.0
        self._thread = threading.Thread(target=self._loop, name='sim_camera_render', daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ parameters

    def _on_set_parameters(self, params: List[Parameter]) -> SetParametersResult:
        for p in params:
            v = p.value
            if p.name == 'rate_hz' and not (isinstance(v, float) and 0.0 < v <= 60.0):
                return SetParametersResult(
                    successful=False, reason=f'rate_hz must be in (0, 60] Hz, got {v}')
            if p.name == 'depth_encoding' and v not in DEPTH_ENCODINGS:
                return SetParametersResult(
                    successful=False,
                    reason=f'depth_encoding must be one of {", ".join(DEPTH_ENCODINGS)}, '
                           f'got {v!r}')
            if p.name == 'depth_noise_m' and not (isinstance(v, float) and 0.0 <= v <= 0.1):
                return SetParametersResult(
                    successful=False, reason=f'depth_noise_m must be in [0, 0.1] m, got {v}')
            if p.name == 'depth_hole_fraction' and not (isinstance(v, float) and 0.0 <= v <= 1.0):
                return SetParametersResult(
                    successful=False, reason=f'depth_hole_fraction must be in [0, 1], got {v}')
            if p.name == 'seed' and v < 0:
                return SetParametersResult(successful=False, reason=f'seed must be >= 0, got {v}')
            if p.name in ('width', 'height'):
                limit = MAX_RENDER_SIZE[0 if p.name == 'width' else 1]
                if not 0 < v <= limit:
                    return SetParametersResult(
                        successful=False, reason=f'{p.name} must be in 1..{limit}, got {v}')
            if p.name == 'qos_depth' and not 1 <= v <= 5:
                return SetParametersResult(
                    successful=False, reason=f'qos_depth must be in 1..5, got {v}')
            if p.name == 'frame_id' and not v:
                return SetParametersResult(successful=False, reason='frame_id must not be empty')
        return SetParametersResult(successful=True)

    # ------------------------------------------------------------------ world state

    def _on_state(self, msg: Float64MultiArray) -> None:
        qpos = np.frombuffer(msg.data, dtype=np.float64)
        if qpos.size != self._world.model.nq:
            self.get_logger().warning(
                f'ignoring sim/state with {qpos.size} values (model nq={self._world.model.nq}); '
                'is grasp_executor running another scene?', throttle_duration_sec=5.0)
            return
        with self._state_lock:
            self._pending_state = qpos.copy()

    def _take_state(self) -> Optional[np.ndarray]:
        with self._state_lock:
            state, self._pending_state = self._pending_state, None
        return state

    # ------------------------------------------------------------------ render/publish loop

    def _loop(self) -> None:
        """Render thread (owns the GL context): render on state change, publish at rate_hz."""
        world = self._world
        width, height = (int(self.get_parameter(n).value) for n in ('width', 'height'))
        renderer = SceneRenderer(world.model, width, height, scene=world.spec)
        cached = None
        state_version = 0
        next_t = time.monotonic()
        try:
            while not self._stop.is_set() and self.context.ok():
                state = self._take_state()
                if state is not None:
                    apply_state(world, state)
                    state_version += 1
                stamp = self.get_clock().now().to_msg()
                if state is not None or cached is None:
                    frame = renderer.render(world.data, self._camera)
                    self._renders += 1
                    cached = self._on_render(frame, stamp, state_version)
                if not self._publish(cached, stamp):
                    break
                next_t += 1.0 / self.get_parameter('rate_hz').value
                now = time.monotonic()
                # After an overrun (a render), start a new cadence instead of bursting.
                next_t = max(next_t, now)
                self._stop.wait(next_t - now)
        finally:
            renderer.close()

    def _on_render(self, frame, stamp, state_version: int) -> dict:
        """Announce the ground truth of a new frame on sim/scene; return its messages (headers
        are set per publish)."""
        cached = {
            'depth_m': frame.depth,
            'color': numpy_to_image(frame.rgb, 'rgb8'),
            'info': intrinsics_to_camera_info(frame.intrinsics),
            'instances': (numpy_to_image(frame.instances.astype(np.uint16), 'mono16')
                          if self._instances_pub is not None else None),
            'depth': {},
        }
        doc = scene_document(self._world, frame, self._frame_id,
                             {'sec': stamp.sec, 'nanosec': stamp.nanosec}, state_version)
        try:
            self._scene_pub.publish(String(data=json.dumps(doc)))
        except Exception:
            if self.context.ok():
                raise  # not a shutdown race: a real error
        return cached

    def _depth_msg(self, cached: dict) -> Image:
        encoding = self.get_parameter('depth_encoding').value
        noise = self.get_parameter('depth_noise_m').value
        holes = self.get_parameter('depth_hole_fraction').value
        if noise > 0 or holes > 0:
            depth = degrade_depth(cached['depth_m'], noise, holes, self._rng)
            return numpy_to_image(encode_depth(depth, encoding), encoding)
        if encoding not in cached['depth']:
            cached['depth'][encoding] = numpy_to_image(
                encode_depth(cached['depth_m'], encoding), encoding)
        return cached['depth'][encoding]

    def _publish(self, cached: dict, stamp) -> bool:
        """Publish one frame with ``stamp``; False once the context is shut down."""
        msgs = [(self._color_pub, cached['color']), (self._depth_pub, self._depth_msg(cached)),
                (self._info_pub, cached['info'])]
        if self._instances_pub is not None:
            msgs.append((self._instances_pub, cached['instances']))
        try:
            for pub, msg in msgs:
                msg.header = Header(stamp=stamp, frame_id=self._frame_id)
                pub.publish(msg)
        except Exception:
            if self.context.ok():
                raise
            return False  # shut down by a signal while publishing
        now = time.monotonic()
        if self._t_first is None:
            self._t_first = now
        self._t_last = now
        self._published += 1
        return True

    def achieved_rate_hz(self) -> float:
        """Frames published per second since the first frame."""
        span = self._t_last - (self._t_first or 0.0)
        return (self._published - 1) / span if self._published > 1 and span > 0 else 0.0

    def close(self) -> None:
        """Stop the render thread and log the achieved rate."""
        self._stop.set()
        self._thread.join(timeout=5.0)
        self.get_logger().info(
            f'published {self._published} frames ({self._renders} rendered) at '
            f'{self.achieved_rate_hz():.2f} Hz (target '
            f'{self.get_parameter("rate_hz").value:.2f} Hz)')


def main(args: Optional[List[str]] = None) -> int:
    """Console script ``sim_camera``."""
    return run_node(SimCamera, args)


if __name__ == '__main__':
    raise SystemExit(main())
