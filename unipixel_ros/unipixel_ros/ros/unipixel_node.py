"""``unipixel_node``: speech + RGB-D in; mask, overlay, cloud, grasp, markers and a reply out.

A LifecycleNode (``autostart`` configures and activates it without a lifecycle manager):

* on_configure: load the engine (torch | onnxruntime | tensorrt), warm up, create publishers,
  services and the tracking action server;
* on_activate: subscribe to the camera and speech topics and start the inference worker;
* on_deactivate: unsubscribe, stop the worker; on_cleanup: destroy publishers, free the engine.

Threads: the camera topics are received on a hidden intake node (``_<name>_camera``) spun by its
own executor thread (``camera_executor``: rclpy's C++ EventsExecutor by default; see
``unipixel_ros.ros.camera_intake``), which only synchronises and hands over. Synchronised RGB-D
frames go into a size-1 latest-frame slot; one worker thread takes the newest frame, runs the
model on the cached text prompt (encoded once per command), the geometry, the tracker, and
publishes. The node's own multi-threaded executor serves speech, clicks, parameters, lifecycle,
the services and the action; services and the action wait for the worker in a reentrant callback
group, so parameter/lifecycle services and the speech topic stay responsive.

Topics (relative; see config/unipixel.yaml and the README API table):
  in : camera/camera/color/image_raw, camera/camera/aligned_depth_to_color/image_raw,
       camera/camera/color/camera_info (sensor QoS), speech/text (reliable),
       clicked_point (geometry_msgs/PointStamped, RViz "Publish Point" -> describe)
  out: unipixel/mask (mono8), unipixel/overlay (rgb8), unipixel/cloud (PointCloud2 x y z rgb),
       unipixel/grasp (PoseStamped), unipixel/gripper_width (Float32), unipixel/pick
       (PoseStamped, once per pick command when the grasp is stable), unipixel/markers
       (MarkerArray), unipixel/result (ReferringResult), unipixel/reply (String),
       unipixel/status (PipelineStatus)
Services: unipixel/segment (Segment), unipixel/describe (Describe); action: unipixel/track.
"""
from __future__ import annotations

import gc
import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import rclpy
from geometry_msgs.msg import Point, PointStamped, PoseStamped, Vector3
from rcl_interfaces.msg import ParameterDescriptor, SetParametersResult
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy,
                       qos_profile_sensor_data)
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, Image, PointCloud2
from std_msgs.msg import ColorRGBA, Float32, Header, String
from unipixel_msgs.action import TrackObject
from unipixel_msgs.msg import PipelineStatus, ReferringResult
from unipixel_msgs.srv import Describe, Segment
from visualization_msgs.msg import Marker, MarkerArray

from unipixel_ros.language import CommandAction, CommandError, parse_command
from unipixel_ros.model.predictor import (DEFAULT_EXISTS_THRESHOLD, DEFAULT_VERIFY_ATTRIBUTES,
                                         DEFAULT_VERIFY_MIN_PROB, VERIFIABLE_ATTRIBUTES,
                                         parse_attribute_list)
from unipixel_ros.perception import GeometryConfig, GeometryError, GripperConfig
from unipixel_ros.perception.pipeline import estimate_object_geometry
from unipixel_ros.ros.conversions import (MessageConversionError, build_result,
                                          camera_info_to_intrinsics, cloud_to_msg, color_to_rgb,
                                          image_to_numpy, numpy_to_image, pose_stamped)
from unipixel_ros.ros.camera_intake import CAMERA_EXECUTORS, CameraIntake
from unipixel_ros.ros.latest_slot import LatestSlot
from unipixel_ros.visualization import draw_overlay

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                      history=HistoryPolicy.KEEP_LAST)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
ENGINES = ('torch', 'onnxruntime', 'tensorrt')


@dataclass
class Frame:
    """One synchronised RGB-D frame as received (decoded lazily by the worker)."""

    color: Image
    depth: Image
    info: CameraInfo
    received: float                     # time.monotonic() at synchronisation
    taken: float = 0.0                  # time.monotonic() when the worker took it


@dataclass
class Job:
    """What the worker should do with the next frame."""

    kind: str                           # 'query' | 'point'
    query: str                          # referring expression ('' for point)
    action: CommandAction = CommandAction.FIND
    uv: tuple | None = None             # (u, v) pixel for 'point'
    done: threading.Event = field(default_factory=threading.Event)
    result: ReferringResult | None = None
    error: str = ''


class UnipixelNode(LifecycleNode):
    """See the module docstring."""

    def __init__(self, **kwargs) -> None:
        super().__init__('unipixel_node', **kwargs)
        self._declare_parameters()
        self.add_on_set_parameters_callback(self._validate_parameters)
        self.add_post_set_parameters_callback(lambda _params: self._apply_decision_parameters())
        self._sensor_group = MutuallyExclusiveCallbackGroup()
        self._wait_group = ReentrantCallbackGroup()
        self._slot: LatestSlot[Frame] = LatestSlot()
        self._lock = threading.Lock()
        self._engine = None
        self._predictor = None
        self._worker: threading.Thread | None = None
        self._running = False
        self._subs = []
        self._intake: CameraIntake | None = None
        self._pubs = {}
        self._query_services = []      # not `_services`: rclpy.Node keeps its own list there
        self._action = None
        self._sync = None
        self._active_query = ''             # referring expression being tracked
        self._active_action = CommandAction.FIND
        self._pending_command: tuple[CommandAction, str] | None = None
        self._jobs: deque[Job] = deque(maxlen=8)
        self._track_goal = None
        self._track_feedback: deque = deque(maxlen=1)
        self._tracker = None
        self._track_state = None
        self._last_reply_key = None
        self._stable_frames = 0
        self._pick_sent = False
        self._last_clicked: tuple | None = None
        self._last_frame_geometry = None     # (intrinsics, frame_id) of the newest frame
        self._last_input = {'color': 0.0, 'depth': 0.0, 'info': 0.0}
        self._stats = {'frames_in': 0, 'frames_processed': 0, 'errors': 0}
        self._latencies: deque = deque(maxlen=600)       # stamp -> result publish, ms
        self._input_delay_ms: deque = deque(maxlen=600)  # stamp -> synchronised, ms
        self._model_ms: deque = deque(maxlen=600)
        self._worker_overhead_ms: deque = deque(maxlen=60)
        self._queue_wait_ms: deque = deque(maxlen=60)
        self._out_times: deque = deque(maxlen=60)
        self._in_times: deque = deque(maxlen=60)
        self._last_message = 'unconfigured'
        self._last_stamp_ns = -1
        self._stale_inputs: list = []
        if self.get_parameter('autostart').value:
            self._autostart_timer = self.create_timer(0.0, self._autostart)

    # ---- parameters --------------------------------------------------------------------------
    def _declare_parameters(self) -> None:
        def p(name, default, description, read_only=False, constraints=''):
            self.declare_parameter(name, default, ParameterDescriptor(
                description=description, read_only=read_only, additional_constraints=constraints))

        p('autostart', True, 'Configure and activate on start (no lifecycle manager needed).', True)
        p('color_topic', 'camera/camera/color/image_raw', 'Color image (rgb8/bgr8).', True)
        p('depth_topic', 'camera/camera/aligned_depth_to_color/image_raw',
          'Depth aligned to color: 16UC1 millimetres or 32FC1 metres.', True)
        p('camera_info_topic', 'camera/camera/color/camera_info', 'CameraInfo of the color image.', True)
        p('speech_topic', 'speech/text', 'std_msgs/String commands from speech-to-text.', True)
        p('clicked_point_topic', 'clicked_point', 'RViz Publish Point -> describe.', True)
        p('queue_size', 10, 'Per-input synchroniser queue length.', True, '>= 1')
        p('slop', 0.05, 'Approximate-time tolerance between color, depth and info, s.', True, '> 0')
        p('exact_sync', False, 'Require identical stamps instead of approximate sync.', True)
        p('camera_info_timeout_s', 2.0, 'Report a missing input after this many seconds.', False, '> 0')
        p('sensor_qos_reliable', False, 'Camera subscriptions reliable instead of best effort.', True)
        p('camera_executor', 'events',
          'Executor of the camera subscriptions: events (rclpy C++ EventsExecutor on its own '
          'thread), single_threaded (rclpy Python executor on its own thread) or node (the '
          "node's own multi-threaded executor).", True)
        p('engine', 'onnxruntime', 'Inference back-end: torch | onnxruntime | tensorrt.', True)
        p('model_path', '', 'Checkpoint (.safetensors) or ONNX export dir; empty = shipped model.', True)
        p('device', 'cpu', 'cpu | cuda (torch, onnxruntime).', True)
        p('threads', 2, 'CPU threads of the engine (0 = library default).', True, '>= 0')
        p('geometry_threads', 1, 'CPU threads of the cloud filters (open3d; 0 = its default).',
          True, '>= 0')
        p('metric_attributes', 'auto',
          "Category and size of described objects re-decided with the measured 3D box: 'auto' "
          '(the head fitted for the model, <checkpoint>_metric_attributes.safetensors, if '
          "present), 'none', or a file from `unipixel-ros fit-attributes`.", True)
        p('exists_threshold', DEFAULT_EXISTS_THRESHOLD, 'Target-exists probability to report found.',
          False, '[0, 1]')
        p('uncertain_threshold', 0.3, 'Below exists_threshold but above this: ask which one.', False, '[0, 1]')
        p('mask_threshold', 0.5, 'Mask probability threshold.', False, '[0, 1]')
        p('verify_attributes', ','.join(DEFAULT_VERIFY_ATTRIBUTES) or 'none',
          'Attributes checked against the words (comma-separated from category,color,size, or '
          'none): a phrase naming one its selected object is unlikely to have is "not found".',
          False)
        p('verify_min_prob', DEFAULT_VERIFY_MIN_PROB,
          'verify_attributes rejects below this probability of the named attribute.', False,
          '[0, 1]')
        p('min_depth_m', 0.1, 'Closest valid depth, m.', False, '> 0')
        p('max_depth_m', 3.0, 'Farthest valid depth, m.', False, '> min_depth_m')
        p('voxel_size_m', 0.0075, 'Voxel grid of the cloud filter, m.', False, '(0, 0.05]')
        p('gripper_max_opening_m', 0.08, 'Parallel gripper maximum opening, m (Panda 0.08).', False, '(0, 0.5]')
        p('gripper_finger_depth_m', 0.04, 'Finger length that can wrap the object, m.', False, '> 0')
        p('publish_voxel_cloud', True, 'Publish the voxelised object cloud (lighter).', False)
        p('mask_alpha', 0.6, 'EMA weight of the newest mask probability (1 = no smoothing).', False, '(0, 1]')
        p('pose_alpha', 0.4, 'EMA weight of the newest grasp pose (1 = no smoothing).', False, '(0, 1]')
        p('max_misses', 5, 'Frames without the target before it is reported lost.', False, '>= 1')
        p('pick_stable_frames', 3, 'Consecutive found frames before unipixel/pick is sent.', False, '>= 1')
        p('status_rate_hz', 1.0, 'Rate of unipixel/status.', True, '> 0')

    def _validate_parameters(self, params) -> SetParametersResult:
        for prm in params:
            v = prm.value
            bad = None
            if prm.name in ('exists_threshold', 'uncertain_threshold', 'mask_threshold',
                            'verify_min_prob') and not 0 <= v <= 1:
                bad = 'must be in [0, 1]'
            elif prm.name == 'verify_attributes' and not set(parse_attribute_list(v)) <= set(
                    VERIFIABLE_ATTRIBUTES):
                bad = "must be 'none' or a comma-separated subset of category,color,size"
            elif prm.name in ('mask_alpha', 'pose_alpha') and not 0 < v <= 1:
                bad = 'must be in (0, 1]'
            elif prm.name in ('slop', 'camera_info_timeout_s', 'min_depth_m', 'status_rate_hz',
                              'gripper_finger_depth_m') and not v > 0:
                bad = 'must be > 0'
            elif prm.name == 'voxel_size_m' and not 0 < v <= 0.05:
                bad = 'must be in (0, 0.05]'
            elif prm.name == 'gripper_max_opening_m' and not 0 < v <= 0.5:
                bad = 'must be in (0, 0.5]'
            elif prm.name in ('queue_size', 'max_misses', 'pick_stable_frames') and v < 1:
                bad = 'must be >= 1'
            elif prm.name in ('threads', 'geometry_threads') and v < 0:
                bad = 'must be >= 0'
            elif prm.name == 'camera_executor' and v not in CAMERA_EXECUTORS:
                bad = f'must be one of {", ".join(CAMERA_EXECUTORS)}'
            elif prm.name == 'engine' and v not in ENGINES:
                bad = f'must be one of {", ".join(ENGINES)}'
            elif prm.name == 'max_depth_m' and v <= self.get_parameter('min_depth_m').value:
                bad = 'must be > min_depth_m'
            if bad:
                return SetParametersResult(successful=False, reason=f'{prm.name}={v!r}: {bad}')
        return SetParametersResult(successful=True)

    def _apply_decision_parameters(self) -> None:
        """Hand the predictor the current thresholds and verification settings (at configure and
        after every accepted parameter change, so the next prediction uses them)."""
        predictor = self._predictor
        if predictor is None:
            return
        predictor.exists_threshold = self._param('exists_threshold')
        predictor.mask_threshold = self._param('mask_threshold')
        predictor.verify_attributes = parse_attribute_list(self._param('verify_attributes'))
        predictor.verify_min_prob = self._param('verify_min_prob')

    def _param(self, name):
        return self.get_parameter(name).value

    # ---- lifecycle -----------------------------------------------------------------------------
    def _autostart(self) -> None:
        self._autostart_timer.cancel()
        if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        from unipixel_ros.cli import resolve_checkpoint
        from unipixel_ros.engines import create_engine
        from unipixel_ros.model.metric_attributes import resolve_metric_attributes
        from unipixel_ros.model.predictor import ReferringPredictor
        from unipixel_ros.perception.cloud import set_geometry_threads
        from unipixel_ros.perception.pipeline import warm_up
        from unipixel_ros.perception.tracking import ObjectTracker

        engine, path = self._param('engine'), self._param('model_path')
        if self._param('camera_executor') not in CAMERA_EXECUTORS:
            self._last_message = (f"camera_executor {self._param('camera_executor')!r} is not one "
                                  f"of {', '.join(CAMERA_EXECUTORS)}")
            self.get_logger().error(self._last_message)
            return TransitionCallbackReturn.FAILURE
        try:
            model = str(resolve_checkpoint(path or None))
            kwargs = {}
            if engine == 'onnxruntime':
                # no busy-waiting model threads: they would starve the executor thread that
                # receives the camera (see OnnxRuntimeEngine's ``spin``)
                kwargs['spin'] = False
                if self._param('threads'):
                    kwargs['threads'] = self._param('threads')
            if engine != 'tensorrt':
                kwargs['device'] = self._param('device')
            if engine == 'torch' and self._param('threads'):
                import torch
                torch.set_num_threads(self._param('threads'))
            self._engine = create_engine(engine, model, **kwargs)
        except Exception as exc:  # any loading failure must leave the node alive and say why
            self._last_message = f'cannot load the {engine} engine from {path or "the shipped model"}: {exc}'
            self.get_logger().error(self._last_message)
            return TransitionCallbackReturn.FAILURE
        try:  # a missing or corrupt head, or one fitted for another vocabulary, is refused
            self._predictor = ReferringPredictor(self._engine, metric_attributes=(
                resolve_metric_attributes(self._param('metric_attributes'), model)))
        except (FileNotFoundError, ValueError) as exc:
            self._last_message = f'cannot use the metric attribute head: {exc}'
            self.get_logger().error(self._last_message)
            self._engine.close()
            self._engine = None
            return TransitionCallbackReturn.FAILURE
        self._apply_decision_parameters()
        set_geometry_threads(self._param('geometry_threads'))
        warm_up()
        try:  # load the text encoder now, not on the first spoken command (seconds when cold)
            self._predictor.set_query('the object')
            self._predictor.clear()
        except Exception as exc:
            self._last_message = f'cannot encode text with the {engine} engine: {exc}'
            self.get_logger().error(self._last_message)
            return TransitionCallbackReturn.FAILURE
        self._tracker = ObjectTracker(mask_alpha=self._param('mask_alpha'),
                                      pose_alpha=self._param('pose_alpha'),
                                      max_misses=self._param('max_misses'))
        # The model and libraries are loaded: move their long-lived objects out of the cyclic
        # collector's reach, so a full collection during streaming scans only new objects.
        gc.collect()
        gc.freeze()
        qos_override = QoSOverridingOptions.with_default_policies()
        mk = self.create_publisher
        self._pubs = {
            'mask': mk(Image, 'unipixel/mask', qos_profile_sensor_data,
                       qos_overriding_options=qos_override),
            'overlay': mk(Image, 'unipixel/overlay', qos_profile_sensor_data,
                          qos_overriding_options=qos_override),
            'cloud': mk(PointCloud2, 'unipixel/cloud', qos_profile_sensor_data,
                        qos_overriding_options=qos_override),
            'grasp': mk(PoseStamped, 'unipixel/grasp', RELIABLE),
            'width': mk(Float32, 'unipixel/gripper_width', RELIABLE),
            'pick': mk(PoseStamped, 'unipixel/pick', RELIABLE),
            'markers': mk(MarkerArray, 'unipixel/markers', RELIABLE),
            'result': mk(ReferringResult, 'unipixel/result', RELIABLE,
                         qos_overriding_options=qos_override),
            'reply': mk(String, 'unipixel/reply', RELIABLE),
            'status': mk(PipelineStatus, 'unipixel/status', LATCHED),
        }
        self._query_services = [
            self.create_service(Segment, 'unipixel/segment', self._on_segment,
                                callback_group=self._wait_group),
            self.create_service(Describe, 'unipixel/describe', self._on_describe,
                                callback_group=self._wait_group),
        ]
        self._action = ActionServer(self, TrackObject, 'unipixel/track', self._execute_track,
                                    goal_callback=lambda _: GoalResponse.ACCEPT,
                                    cancel_callback=lambda _: CancelResponse.ACCEPT,
                                    callback_group=self._wait_group)
        self._status_timer = self.create_timer(1.0 / self._param('status_rate_hz'),
                                               self._publish_status)
        self._last_message = f'configured: {engine} engine, model {model}'
        self.get_logger().info(self._last_message)
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        from unipixel_ros.ros.sync import create_time_sync

        sensor_qos = QoSProfile(depth=5, history=HistoryPolicy.KEEP_LAST,
                                reliability=ReliabilityPolicy.RELIABLE
                                if self._param('sensor_qos_reliable') else ReliabilityPolicy.BEST_EFFORT)
        self._sync = create_time_sync(self._param('exact_sync'), 3, self._param('queue_size'),
                                      self._param('slop'), self._on_synced)
        g = self._sensor_group
        camera = [(Image, self._param('color_topic'), lambda m: self._on_input('color', 0, m)),
                  (Image, self._param('depth_topic'), lambda m: self._on_input('depth', 1, m)),
                  (CameraInfo, self._param('camera_info_topic'),
                   lambda m: self._on_input('info', 2, m))]
        executor = self._param('camera_executor')
        if executor == 'node':
            self._subs = [self.create_subscription(t, topic, cb, sensor_qos, callback_group=g)
                          for t, topic, cb in camera]
        else:
            self._subs = []
            self._intake = CameraIntake(
                self.context, f'_{self.get_name()}_camera',
                [(t, self.resolve_topic_name(topic), cb) for t, topic, cb in camera],
                sensor_qos, executor)
            if self._intake.executor_kind != executor:
                self.get_logger().warning(f'camera_executor {executor!r} is not available in this '
                                          f'rclpy; using {self._intake.executor_kind!r}')
        self._subs += [
            self.create_subscription(String, self._param('speech_topic'), self._on_speech, RELIABLE,
                                     callback_group=g),
            self.create_subscription(PointStamped, self._param('clicked_point_topic'),
                                     self._on_clicked_point, RELIABLE, callback_group=g),
        ]
        self._slot.reopen()
        self._running = True
        self._worker = threading.Thread(target=self._work, name='unipixel_worker', daemon=True)
        self._worker.start()
        self._activated_at = time.monotonic()
        self._last_message = 'active: waiting for a command'
        self.get_logger().info(self._last_message)
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._close_intake()
        self._stop_worker()
        for sub in self._subs:
            self.destroy_subscription(sub)
        self._subs = []
        self._last_message = 'inactive'
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._release()
        self._last_message = 'unconfigured'
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        self._close_intake()
        self._stop_worker()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def _close_intake(self) -> None:
        if self._intake is not None:
            self._intake.close()
            self._intake = None

    def _stop_worker(self) -> None:
        self._running = False
        self._slot.close()
        if self._worker is not None:
            self._worker.join(timeout=5.0)
            self._worker = None
        for job in list(self._jobs):
            job.error = 'node is shutting down'
            job.done.set()

    def _release(self) -> None:
        if self._action is not None:
            self._action.destroy()
            self._action = None
        for srv in self._query_services:
            self.destroy_service(srv)
        self._query_services = []
        for pub in self._pubs.values():
            self.destroy_publisher(pub)
        self._pubs = {}
        if self._engine is not None:
            self._engine.close()
            self._engine = self._predictor = None

    def close(self) -> None:
        """Stop the camera intake and the worker before the node is destroyed (process shutdown)."""
        self._close_intake()
        self._stop_worker()

    # ---- inputs (camera intake thread; speech and clicks on the node's executor) -------------
    def _on_input(self, name: str, index: int, msg) -> None:
        self._last_input[name] = time.monotonic()
        old = self._sync.dropped_old
        self._sync.add(index, msg)
        if self._sync.dropped_old > old:
            s = msg.header.stamp
            self._report(f'dropped a {name} message with an out-of-order stamp '
                         f'({s.sec}.{s.nanosec:09d} s is not newer than the last synchronised frame)',
                         error=True)

    def _on_synced(self, color: Image, depth: Image, info: CameraInfo) -> None:
        stamp_ns = color.header.stamp.sec * 1_000_000_000 + color.header.stamp.nanosec
        if stamp_ns <= self._last_stamp_ns:
            self._report(f'dropped a frame with an out-of-order stamp ({stamp_ns} ns <= '
                         f'{self._last_stamp_ns} ns)', error=True)
            return
        self._last_stamp_ns = stamp_ns
        self._stats['frames_in'] += 1
        self._in_times.append(time.monotonic())
        self._input_delay_ms.append(1e-6 * (self.get_clock().now().nanoseconds - stamp_ns))
        self._slot.put(Frame(color, depth, info, time.monotonic()))

    def _on_speech(self, msg: String) -> None:
        try:
            cmd = parse_command(msg.data)
        except CommandError as exc:
            self._reply(f'Sorry, I could not use that command: {exc}.')
            self._report(f'rejected command: {exc}', error=True)
            return
        if cmd.action == CommandAction.STOP:
            with self._lock:
                self._active_query, self._pending_command = '', None
            self._tracker.reset()
            self._last_reply_key = None
            self._reply('Okay, I stopped.')
            self._report('stopped by command')
            return
        if cmd.action == CommandAction.DESCRIBE:
            if self._last_clicked is None:
                self._reply('Point at something in RViz first, then ask me what it is.')
                return
            self._jobs.append(Job('point', '', CommandAction.DESCRIBE, uv=self._last_clicked))
            return
        with self._lock:
            self._pending_command = (cmd.action, cmd.expression)
        if self._slot.peek() is None and self._stats['frames_in'] == 0:
            self._reply(f"I heard '{cmd.expression}', but I have no camera image yet.")
            self._report(f'command before any image: {cmd.text!r}', error=True)

    def _on_clicked_point(self, msg: PointStamped) -> None:
        uv = self._project(msg)
        if uv is None:
            return
        self._last_clicked = uv
        self._jobs.append(Job('point', '', CommandAction.DESCRIBE, uv=uv))

    def _project(self, msg: PointStamped) -> tuple | None:
        geom = self._last_frame_geometry
        if geom is None:
            self._reply('I have no camera image to look at yet.')
            return None
        intr, frame_id = geom
        if msg.header.frame_id and msg.header.frame_id != frame_id:
            self._report(f'clicked point is in frame {msg.header.frame_id!r}, expected the camera '
                         f'frame {frame_id!r} (no tf2 here: publish it in the camera frame)', error=True)
            return None
        p = msg.point
        if p.z <= 0:
            self._report('clicked point is behind the camera', error=True)
            return None
        u, v = intr.fx * p.x / p.z + intr.cx, intr.fy * p.y / p.z + intr.cy
        if not (0 <= u < intr.width and 0 <= v < intr.height):
            self._report(f'clicked point projects outside the image ({u:.0f}, {v:.0f})', error=True)
            return None
        return (u, v)

    # ---- services and action (reentrant group, wait for the worker) ---------------------------
    def _wait_job(self, job: Job, timeout_s: float) -> Job:
        self._jobs.append(job)
        if not job.done.wait(timeout_s):
            job.error = f'no camera frame was processed within {timeout_s:.1f} s'
        return job

    def _on_segment(self, request, response):
        try:
            cmd = parse_command(request.query)
        except CommandError as exc:
            response.success, response.message = False, str(exc)
            return response
        if not cmd.expression:
            response.success, response.message = False, f'{request.query!r} names no object'
            return response
        job = self._wait_job(Job('query', cmd.expression, cmd.action), request.timeout_s or 5.0)
        response.success = not job.error
        response.message = job.error
        if job.result is not None:
            response.result = job.result
        return response

    def _on_describe(self, request, response):
        if request.use_point:
            uv = self._project(request.point)
            if uv is None:
                response.success, response.message = False, self._last_message
                return response
        else:
            uv = (float(request.u), float(request.v))
        job = self._wait_job(Job('point', '', CommandAction.DESCRIBE, uv=uv), 5.0)
        response.success = not job.error and job.result is not None and job.result.found
        response.message = job.error or ('' if response.success else 'no object at that point')
        if job.result is not None:
            response.result = job.result
            response.description = job.result.description
            attrs = getattr(job, 'attributes', None) or {}
            response.category = attrs.get('category', ('', 0))[0]
            response.color = attrs.get('color', ('', 0))[0]
            response.size = attrs.get('size', ('', 0))[0]
            response.score = float(job.result.score)
        return response

    def _execute_track(self, goal_handle):
        try:
            cmd = parse_command(goal_handle.request.query)
        except CommandError as exc:
            goal_handle.abort()
            return TrackObject.Result(success=False, message=str(exc))
        with self._lock:
            self._pending_command = (CommandAction.TRACK, cmd.expression)
            self._track_goal = goal_handle
        start, frames, last = time.monotonic(), 0, ReferringResult()
        limit = goal_handle.request.max_duration_s
        message, success = 'time limit reached', True
        while rclpy.ok() and self._running:
            if goal_handle.is_cancel_requested:
                with self._lock:
                    if self._track_goal is goal_handle:
                        self._active_query, self._track_goal = '', None
                goal_handle.canceled()
                return TrackObject.Result(success=True, message='canceled', frames_tracked=frames,
                                          last_result=last)
            with self._lock:
                superseded = self._track_goal is not goal_handle
            if superseded:
                message, success = 'superseded by a new command', False
                break
            if limit > 0 and time.monotonic() - start > limit:
                break
            if self._track_feedback:
                result, misses = self._track_feedback.popleft()
                last, frames = result, frames + 1
                goal_handle.publish_feedback(TrackObject.Feedback(result=result,
                                                                  consecutive_misses=misses))
            time.sleep(0.01)
        with self._lock:
            if self._track_goal is goal_handle:
                self._active_query, self._track_goal = '', None
        if success:
            goal_handle.succeed()
        else:
            goal_handle.abort()
        return TrackObject.Result(success=success, message=message, frames_tracked=frames,
                                  last_result=last)

    # ---- worker ---------------------------------------------------------------------------------
    def _work(self) -> None:
        while self._running:
            frame = self._slot.take(timeout=0.1)
            with self._lock:
                pending, self._pending_command = self._pending_command, None
            if pending is not None:
                self._start_command(*pending)
            if frame is None:
                continue
            try:
                self._process(frame)
            except Exception as exc:  # the worker must survive any single bad frame
                self._report(f'frame failed: {type(exc).__name__}: {exc}', error=True)

    def _start_command(self, action: CommandAction, expression: str) -> None:
        try:
            t0 = time.perf_counter()
            self._predictor.set_query(expression)
            encode_ms = (time.perf_counter() - t0) * 1e3
        except Exception as exc:
            self._reply(f'Sorry, I could not understand {expression!r}.')
            self._report(f'text encoding failed: {exc}', error=True)
            return
        with self._lock:
            self._active_query, self._active_action = expression, action
            if action != CommandAction.TRACK and self._track_goal is not None:
                self._track_goal = None   # a new command supersedes tracking
        self._tracker.reset()
        self._stable_frames, self._pick_sent = 0, False
        self._last_reply_key = None
        self._report(f'new command: {action.value} {expression!r} (text encoded in {encode_ms:.0f} ms)')

    def _decode(self, frame: Frame):
        intr = camera_info_to_intrinsics(frame.info)
        rgb = color_to_rgb(frame.color)
        depth = image_to_numpy(frame.depth)
        if frame.depth.encoding not in ('16UC1', 'mono16', '32FC1'):
            raise MessageConversionError(f'depth encoding {frame.depth.encoding!r} is not 16UC1 or 32FC1')
        if rgb.shape[:2] != depth.shape[:2]:
            raise MessageConversionError(f'color {rgb.shape[1]}x{rgb.shape[0]} and depth '
                                         f'{depth.shape[1]}x{depth.shape[0]} differ: depth must be '
                                         'aligned to color')
        if (intr.width, intr.height) != (rgb.shape[1], rgb.shape[0]):
            raise MessageConversionError(f'camera_info is {intr.width}x{intr.height} but the image '
                                         f'is {rgb.shape[1]}x{rgb.shape[0]}')
        return intr, rgb, depth

    def _process(self, frame: Frame) -> None:
        frame.taken = time.monotonic()
        try:
            intr, rgb, depth = self._decode(frame)
        except (MessageConversionError, GeometryError) as exc:
            self._report(f'bad input frame: {exc}', error=True)
            return
        header = frame.color.header
        self._last_frame_geometry = (intr, header.frame_id)
        # metres for the network only if it reads depth (the shipped model does not); the
        # geometry decodes its own crop of the raw image
        depth_m = None
        if getattr(self._engine, 'use_depth', True):
            depth_m = depth.astype(np.float32) / 1000.0 if depth.dtype == np.uint16 else depth

        jobs = []
        while self._jobs:
            jobs.append(self._jobs.popleft())
        for job in jobs:
            self._run_job(job, frame, intr, rgb, depth, depth_m, header)

        with self._lock:
            query, action = self._active_query, self._active_action
        if not query:
            return
        if self._predictor.query != query:
            self._predictor.set_query(query)
        t0 = time.perf_counter()
        pred = self._predictor.predict(rgb, depth_m)
        self._model_ms.append((time.perf_counter() - t0) * 1e3)
        result, geometry = self._answer(query, pred, depth, frame.depth.encoding, intr, rgb, header,
                                        track=True)
        self._publish(result, pred, geometry, rgb, header, frame, action)

    def _run_job(self, job, frame, intr, rgb, depth, depth_m, header) -> None:
        try:
            if job.kind == 'point':
                u, v = job.uv
                self._predictor.set_point(u, v, rgb.shape[1], rgb.shape[0])
                query_text = f'the object at pixel ({u:.0f}, {v:.0f})'
            else:
                self._predictor.set_query(job.query)
                query_text = job.query
            pred = self._predictor.predict(rgb, depth_m)
            job.result, _ = self._answer(query_text, pred, depth, frame.depth.encoding, intr, rgb,
                                         header, track=False, describe=job.kind == 'point')
            job.attributes = pred.attributes     # after _answer: refined by the measured box
            if job.kind == 'point' and not job.done.is_set():
                self._reply(job.result.description if job.result.found
                            else "I don't see an object there.")
        except Exception as exc:
            job.error = f'{type(exc).__name__}: {exc}'
        finally:
            self._predictor.clear()
            job.done.set()

    def _geometry_config(self) -> GeometryConfig:
        return GeometryConfig(min_depth=self._param('min_depth_m'), max_depth=self._param('max_depth_m'),
                              voxel_size=self._param('voxel_size_m'),
                              gripper=GripperConfig(max_opening=self._param('gripper_max_opening_m'),
                                                    finger_depth=self._param('gripper_finger_depth_m')))

    def _answer(self, query, pred, depth, encoding, intr, rgb, header, track: bool,
                describe: bool = False):
        """Prediction -> (ReferringResult, ObjectGeometry | None), tracking when ``track``."""
        mask, found, score = pred.mask, pred.found, pred.score
        geometry, status = None, 'ok'
        if found:
            try:
                geometry = estimate_object_geometry(mask, depth, '32FC1' if encoding == '32FC1' else '16UC1',
                                                    intr, rgb, self._geometry_config())
            except GeometryError as exc:
                status = f'geometry failed: {exc}'
        if not track:   # a one-shot answer or a description: category and size from the box too
            self._predictor.refine_attributes(pred, geometry)
        else:
            grasp = None if geometry is None else geometry.best_grasp
            state = self._tracker.update(
                found, mask_prob=pred.mask_prob if found else None,
                centroid=None if geometry is None else geometry.box.center,
                grasp_position=None if grasp is None else grasp.position,
                grasp_quaternion=None if grasp is None else grasp.quaternion,
                grasp_width=None if grasp is None else grasp.width,
                stamp_s=header.stamp.sec + header.stamp.nanosec * 1e-9)
            self._track_state = state
            if found and state.mask_prob is not None:
                mask = state.mask_prob > self._param('mask_threshold')
        description = self._describe(query, pred, geometry, describe)
        if pred.rejected:   # the words and the attribute heads disagree: not a "which one?"
            status = f'not found ({pred.rejected})'
        elif not found:
            status = 'not found' if pred.score < self._param('uncertain_threshold') else 'uncertain'
        voxel_cloud = (geometry is not None and self._param('publish_voxel_cloud')
                       and geometry.voxel_points is not None)
        result = build_result(header, query, found, score, mask if found else np.zeros_like(mask),
                              geometry, description=description, status=status,
                              with_cloud=not voxel_cloud)
        if voxel_cloud:
            result.cloud = cloud_to_msg(geometry.voxel_points, geometry.voxel_colors, header)
        if track and found and geometry is not None and geometry.best_grasp is not None:
            state = self._track_state
            if state is not None and state.grasp_position is not None:
                result.grasp = pose_stamped(state.grasp_position, state.grasp_quaternion, header)
                result.gripper_width = float(state.grasp_width)
        return result, geometry

    def _describe(self, query: str, pred, geometry, describe: bool) -> str:
        noun = pred.description()
        if not pred.found:
            return f"I don't see {query}." if not describe else "I don't see an object there."
        if geometry is None:
            return f'I see {noun}.' if describe else f'I see {query}.'
        distance_cm = 100.0 * float(np.linalg.norm(geometry.box.center))
        return (f'That is {noun}, {distance_cm:.0f} cm ahead.' if describe
                else f'I see {query}, {distance_cm:.0f} cm ahead.')

    def _publish(self, result: ReferringResult, pred, geometry, rgb, header, frame: Frame,
                 action: CommandAction) -> None:
        pubs = self._pubs
        if not pubs:
            return
        pubs['result'].publish(result)
        stamp = header.stamp.sec + header.stamp.nanosec * 1e-9
        self._latencies.append(1e3 * (self.get_clock().now().nanoseconds * 1e-9 - stamp))
        # The image-sized and RViz-only outputs are built only for topics somebody subscribes to
        # (lazy publishing, as image_transport does): drawing the overlay alone costs a few ms
        # per frame that the next frame would otherwise wait for.
        if self._has_subscribers('mask'):
            pubs['mask'].publish(result.mask)
        if self._has_subscribers('overlay'):
            label = (f'{result.query} {result.score:.2f}' if result.found
                     else f'{result.query}: not found')
            box = None
            if result.found and result.bbox.width:
                b = result.bbox
                box = (b.x_offset, b.y_offset, b.x_offset + b.width - 1, b.y_offset + b.height - 1)
            mask = image_to_numpy(result.mask) > 0 if result.found else None
            pubs['overlay'].publish(numpy_to_image(draw_overlay(rgb, mask, box, label), 'rgb8',
                                                   header))
        if result.found and geometry is not None:
            if self._has_subscribers('cloud'):
                pubs['cloud'].publish(result.cloud)
            if self._has_subscribers('markers'):
                pubs['markers'].publish(self._markers(result, header))
        if result.found and result.grasp_valid:
            pubs['grasp'].publish(result.grasp)
            pubs['width'].publish(Float32(data=float(result.gripper_width)))
        state = self._track_state
        if result.found:
            self._stable_frames += 1
        else:
            self._stable_frames = 0
        if action == CommandAction.PICK and result.grasp_valid and not self._pick_sent \
                and self._stable_frames >= self._param('pick_stable_frames'):
            pubs['pick'].publish(result.grasp)
            self._pick_sent = True
        self._maybe_reply(result, state)
        with self._lock:
            goal = self._track_goal
        if goal is not None:
            self._track_feedback.append((result, 0 if state is None else state.consecutive_misses))
        self._stats['frames_processed'] += 1
        now = time.monotonic()
        self._out_times.append(now)
        model_ms = self._model_ms[-1] if self._model_ms else 0.0
        self._stats['overhead_ms'] = 1e3 * (now - frame.received) - model_ms
        self._worker_overhead_ms.append(1e3 * (now - frame.taken) - model_ms)
        self._queue_wait_ms.append(1e3 * (frame.taken - frame.received))

    def _has_subscribers(self, output: str) -> bool:
        return self._pubs[output].get_subscription_count() > 0

    def _not_found_reply(self, result: ReferringResult) -> str:
        if result.status == 'uncertain':
            return f"I'm not sure I see {result.query}. Which one do you mean?"
        return result.description

    def _maybe_reply(self, result: ReferringResult, state) -> None:
        """Speak once per change: the first answer to a command, a change between found and
        not found, and a lost target; never once per frame."""
        lost = state is not None and state.lost
        key = (result.query, result.found, lost)
        if key == self._last_reply_key:
            return
        previous, self._last_reply_key = self._last_reply_key, key
        if lost and previous is not None and previous[0] == result.query and previous[1]:
            self._reply(f'I lost {result.query}.')
        elif result.found:
            self._reply(result.description)
        elif not lost or previous is None or previous[0] != result.query:
            self._reply(self._not_found_reply(result))

    def _markers(self, result: ReferringResult, header: Header) -> MarkerArray:
        box = Marker(header=header, ns='unipixel', id=0, type=Marker.CUBE, action=Marker.ADD)
        box.pose.position = result.centroid
        box.pose.orientation = result.box_orientation
        box.scale = Vector3(x=max(result.box_dimensions.x, 1e-3), y=max(result.box_dimensions.y, 1e-3),
                            z=max(result.box_dimensions.z, 1e-3))
        box.color = ColorRGBA(r=0.1, g=0.9, b=0.35, a=0.35)
        markers = [box]
        if result.grasp_valid:
            arrow = Marker(header=header, ns='unipixel', id=1, type=Marker.ARROW, action=Marker.ADD)
            q = result.grasp.pose.orientation
            from unipixel_ros.perception import matrix_from_quaternion
            approach = matrix_from_quaternion(np.array([q.x, q.y, q.z, q.w]))[:, 2]
            tip = result.grasp.pose.position
            tail = np.array([tip.x, tip.y, tip.z]) - 0.12 * approach
            arrow.points = [Point(x=float(tail[0]), y=float(tail[1]), z=float(tail[2])), tip]
            arrow.scale = Vector3(x=0.01, y=0.02, z=0.03)
            arrow.color = ColorRGBA(r=1.0, g=0.8, b=0.0, a=1.0)
            markers.append(arrow)
        text = Marker(header=header, ns='unipixel', id=2, type=Marker.TEXT_VIEW_FACING, action=Marker.ADD)
        text.pose.position = Point(x=result.centroid.x, y=result.centroid.y - 0.08, z=result.centroid.z)
        text.scale.z = 0.03
        text.color = ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0)
        text.text = result.description
        markers.append(text)
        return MarkerArray(markers=markers)

    # ---- status ---------------------------------------------------------------------------------
    def _reply(self, text: str) -> None:
        pub = self._pubs.get('reply')
        if pub is not None:
            pub.publish(String(data=text))

    def _report(self, message: str, error: bool = False) -> None:
        self._last_message = message
        if error:
            self._stats['errors'] += 1
            self.get_logger().warning(message, throttle_duration_sec=2.0)
        self._publish_status()

    def _publish_status(self) -> None:
        pub = self._pubs.get('status')
        if pub is None:
            return
        now = time.monotonic()
        if self._subs:
            timeout = self._param('camera_info_timeout_s')
            started = getattr(self, '_activated_at', now)
            # Only a partial outage is a fault: with no input at all the camera is simply off.
            stale = [n for n, t in self._last_input.items() if now - max(t, started) > timeout]
            stale = stale if 0 < len(stale) < 3 else []
            if stale and stale != self._stale_inputs:
                self._stats['errors'] += 1
                self._last_message = (f'no {", ".join(stale)} received for more than {timeout:.1f} s '
                                      f'while other camera topics arrive (topics: '
                                      f'{self._param("color_topic")}, {self._param("depth_topic")}, '
                                      f'{self._param("camera_info_topic")})')
                self.get_logger().warning(self._last_message)
            self._stale_inputs = stale

        def rate(times):
            recent = [t for t in times if now - t < 5.0]
            return len(recent) / 5.0 if recent else 0.0

        with self._lock:
            query = self._active_query
        msg = PipelineStatus()
        msg.header.stamp = self.get_clock().now().to_msg()
        msg.state = ('tracking' if query else 'idle') if self._subs else 'inactive'
        msg.query = query
        msg.message = self._last_message
        msg.input_rate_hz = rate(self._in_times)
        msg.output_rate_hz = rate(self._out_times)
        latencies = np.asarray(self._latencies) if self._latencies else np.zeros(1)
        msg.latency_ms_median = float(np.median(latencies))
        msg.latency_ms_p95 = float(np.percentile(latencies, 95))
        msg.input_delay_ms_median = (float(np.median(self._input_delay_ms))
                                     if self._input_delay_ms else 0.0)
        msg.model_ms_median = float(np.median(self._model_ms)) if self._model_ms else 0.0
        for name, values in (('worker_overhead_ms_median', self._worker_overhead_ms),
                             ('queue_wait_ms_median', self._queue_wait_ms)):
            setattr(msg, name, float(np.median(values)) if values else 0.0)
        msg.frames_in = self._stats['frames_in']
        msg.frames_processed = self._stats['frames_processed']
        msg.frames_dropped = self._slot.dropped
        msg.errors = self._stats['errors']
        pub.publish(msg)


def main(args=None) -> int:
    from rclpy.executors import MultiThreadedExecutor

    from unipixel_ros.ros.runtime import run_node
    return run_node(UnipixelNode, args, executor_factory=lambda **kw: MultiThreadedExecutor(4, **kw))


if __name__ == '__main__':
    import sys
    sys.exit(main())
