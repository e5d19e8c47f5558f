"""``unipixel_node``: speech + RGB-D in; mask, overlay, cloud, grasp, markers and a reply out.

A LifecycleNode (``autostart`` configures and activates it without a lifecycle manager):
on_configure loads the predictor and creates lifecycle publishers, services and the tracking
action; on_activate subscribes and starts the worker; on_deactivate unsubscribes and stops it;
on_cleanup frees the engine. This module is wiring only: parameters (``parameters.py``),
message conversion (``conversions.py``, ``outputs.py``), statistics (``status.py``), the worker
(``worker.py``); the answer itself is :mod:`unipixel_ros.inference`.

Threads: a hidden intake node on its own executor thread (``camera_intake.py``) synchronises
the camera topics into a size-1 latest-frame slot; one worker thread (``worker.py``) answers the
command and one-off jobs on the newest frame and publishes; the node's multi-threaded executor
serves speech, clicks, parameters, lifecycle, the services and the action.

Topics (relative): camera/camera/{color/image_raw, aligned_depth_to_color/image_raw,
color/camera_info}, speech/text and clicked_point in; unipixel/{mask, overlay, cloud, grasp,
gripper_width, pick, markers, result, reply, status} and /diagnostics out (README, "ROS API").
Services: unipixel/segment (Segment), unipixel/describe (Describe); action: unipixel/track.
"""
from __future__ import annotations

import gc
import threading
import time

from geometry_msgs.msg import PointStamped
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.clock import Clock, ClockType, JumpThreshold
from rclpy.duration import Duration
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String

from unipixel_ros.engines import EngineUnavailable
from unipixel_ros.inference.session import CommandSession
from unipixel_ros.language import CommandAction, CommandError, parse_command

from . import parameters
from .camera_intake import camera_topics, subscribe_camera
from .carry_forward import ResultCarrier
from .frames import FrameError, TargetFrame
from .latest_slot import LatestSlot
from .diagnostics import build_diagnostic_array
from .outputs import RELIABLE, create_output_publishers, publish_unless_closed
from .query_services import Frame, QueryServices
from .status import PipelineStats
from .worker import FrameWorker
from .sync import TimeJumpDetector, stamp_ns


class UnipixelNode(LifecycleNode):
    """See the module docstring."""

    def __init__(self, **kwargs) -> None:
        super().__init__('unipixel_node', **kwargs)
        parameters.declare_parameters(self)
        self.add_on_set_parameters_callback(lambda ps: parameters.validate(ps, self._param))
        self.add_post_set_parameters_callback(lambda _ps: self._apply_decision_parameters())
        self._sensor_group = MutuallyExclusiveCallbackGroup()
        self._wait_group = ReentrantCallbackGroup()
        self._slot: LatestSlot[Frame] = LatestSlot()
        self._lock = threading.Lock()
        self._predictor = None
        self._tracker = None
        self._worker: threading.Thread | None = None
        self._running = False
        self._subs, self._pubs, self._intake, self._sync = [], {}, None, None
        self._queries = None     # not `_services`: rclpy.Node keeps its own list there
        self._session: CommandSession | None = None     # the followed command (worker only)
        self._pending_command: tuple[CommandAction, str] | None = None
        self._last_frame_geometry = None     # (intrinsics, frame_id) of the newest frame
        self._stats = PipelineStats()
        self._last_message = 'unconfigured'
        self._last_stamp_ns = -1            # colour stamp of the last synchronised frame, ns
        self._jumps: TimeJumpDetector | None = None
        self._clock_jump_handle = None
        self._restart_tracking = False      # set on a time jump, done by the worker
        self._closing = False               # no publishing once shutdown began
        self._commands_started = 0          # numbers the 'new command' status messages
        # Steady timers: on use_sim_time, ROS-time timers wait for /clock, and a node must come
        # up and report its status before (and while) a simulator publishes it.
        self._steady = Clock(clock_type=ClockType.STEADY_TIME)
        self._carrier = ResultCarrier.for_node(self)    # its timer republishes the last result
        if self._param('autostart'):
            self._autostart_timer = self.create_timer(0.0, self._autostart, clock=self._steady)

    def _param(self, name):
        return self.get_parameter(name).value

    def _apply_decision_parameters(self) -> None:
        """The next prediction uses the current thresholds and checks."""
        if self._predictor is not None:
            self._predictor.settings = parameters.decision_settings(self._param)

    # ---- lifecycle -----------------------------------------------------------------------------
    def _autostart(self) -> None:
        self._autostart_timer.cancel()
        if self.trigger_configure() == TransitionCallbackReturn.SUCCESS:
            self.trigger_activate()

    def _fail(self, message: str) -> TransitionCallbackReturn:
        self._last_message = message
        self.get_logger().error(message)
        return TransitionCallbackReturn.FAILURE

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        from unipixel_ros.inference.loading import LoadError, load_predictor
        from unipixel_ros.perception.cloud import set_geometry_threads
        from unipixel_ros.perception.pipeline import warm_up
        from unipixel_ros.perception.tracking import ObjectTracker

        engine = self._param('engine')
        # ONNX Runtime without busy-waiting threads: they would starve the camera intake thread
        kwargs = {'spin': False} if engine == 'onnxruntime' else {}
        if engine == 'triton':
            kwargs = {'url': self._param('triton_url'),
                      'timeout_s': self._param('triton_timeout_s')}
        try:
            if self._param('backend') == 'sam3':
                from unipixel_ros.inference.loading import load_sam3_referring
                model, self._predictor = load_sam3_referring(
                    self._param('model_path'), engine, parameters.decision_settings(self._param),
                    threads=self._param('threads'), device=self._param('device'), **kwargs)
            else:
                model, self._predictor = load_predictor(
                    engine, self._param('model_path') or None,
                    parameters.decision_settings(self._param), device=self._param('device'),
                    threads=self._param('threads'), **kwargs)
        except (LoadError, ValueError) as exc:   # the node stays alive and says why
            return self._fail(str(exc))
        set_geometry_threads(self._param('geometry_threads'))
        warm_up()
        try:  # load the text encoder now, not on the first spoken command (seconds when cold)
            self._predictor.encode_text('the object')
        except EngineUnavailable as exc:   # a model server may start after the node: retried
            self.get_logger().warning(f'{exc}; will retry on the first command')
        except Exception as exc:
            return self._fail(f'cannot encode text with the {engine} engine: {exc}')
        try:
            self._frames = TargetFrame(self, self._param('target_frame'),
                                       self._param('camera_to_target')
                                       if any(self._param('camera_to_target')) else [],
                                       self._param('tf_timeout_s'))
        except FrameError as exc:
            return self._fail(str(exc))
        self._tracker = ObjectTracker(mask_alpha=self._param('mask_alpha'),
                                      pose_alpha=self._param('pose_alpha'),
                                      max_misses=self._param('max_misses'))
        # The model and libraries are loaded: move their long-lived objects out of the cyclic
        # collector's reach, so a full collection during streaming scans only new objects.
        gc.collect()
        gc.freeze()
        self._pubs = create_output_publishers(self)
        self._queries = QueryServices(self, self._wait_group)
        self._status_timer = self.create_timer(1.0 / self._param('status_rate_hz'),
                                               self._publish_status, clock=self._steady)
        self._last_message = (f'configured: {self._param("backend")} backend, {engine} engine, '
                              f'model {model}')
        self.get_logger().info(self._last_message)
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        from .sync import create_time_sync

        reliability = (ReliabilityPolicy.RELIABLE if self._param('sensor_qos_reliable')
                       else ReliabilityPolicy.BEST_EFFORT)
        sensor_qos = QoSProfile(depth=5, history=HistoryPolicy.KEEP_LAST, reliability=reliability)
        self._sync = create_time_sync(self._param('exact_sync'), 3, self._param('queue_size'),
                                      self._param('slop'), self._on_synced)
        # a new timeline may start with this activation: forget the old stamps
        self._last_stamp_ns = -1
        self._jumps = TimeJumpDetector(3, self._param('time_jump_threshold_s'),
                                       self._param('time_jump_messages'))
        threshold = Duration(nanoseconds=self._jumps.threshold_ns)
        # rcl calls this when the ROS clock is set (use_sim_time and /clock) and jumps
        self._clock_jump_handle = self.get_clock().create_jump_callback(
            JumpThreshold(min_forward=threshold, min_backward=Duration(
                nanoseconds=-self._jumps.threshold_ns), on_clock_change=True),
            post_callback=self._on_clock_jump)
        g = self._sensor_group
        camera = camera_topics(self._param('color_topic'), self._param('depth_topic'),
                               self._param('camera_info_topic'), self._param('image_transport'),
                               self._on_input)
        self._subs, self._intake = subscribe_camera(self, camera, sensor_qos,
                                                    self._param('camera_executor'), g)
        self._subs += [
            self.create_subscription(String, self._param('speech_topic'), self._on_speech,
                                     RELIABLE, callback_group=g),
            self.create_subscription(PointStamped, self._param('clicked_point_topic'),
                                     self._on_clicked_point, RELIABLE, callback_group=g)]
        self._restart_tracking = False
        self._closing = False
        self._slot.reopen()
        self._running = True
        self._worker = FrameWorker(self).thread
        self._worker.start()
        self._activated_at = time.monotonic()
        self._last_message = 'active: waiting for a command'
        self.get_logger().info(self._last_message)
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.close()
        self._closing = False       # inactive, not shutting down: status still reports
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
        self.close()
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def close(self) -> None:
        """Stop the camera intake and the worker and wait for them (idempotent).

        Call it before the context shuts down: once this returns, no thread of this node
        publishes (the worker is joined; anything racing it drops its message, see
        :meth:`_publish_safely`).
        """
        self._closing = True
        if self._clock_jump_handle is not None:
            self._clock_jump_handle.unregister()
            self._clock_jump_handle = None
        if self._intake is not None:
            self._intake.close()
            self._intake = None
        self._running = False
        self._slot.close()
        if self._worker is not None:
            self._worker.join(timeout=10.0)
            if self._worker.is_alive():
                self.get_logger().error('the worker thread did not stop within 10 s')
            self._worker = None
        if self._queries is not None:
            self._queries.fail_pending('the node stopped (deactivated or shutting down)')
            if not self._queries.wait_idle(5.0):
                self.get_logger().error('a service or action callback did not end within 5 s')

    def _release(self) -> None:
        if getattr(self, '_status_timer', None) is not None:
            self.destroy_timer(self._status_timer)
            self._status_timer = None
        if self._queries is not None:
            self._queries.destroy()
            self._queries = None     # not `_services`: rclpy.Node keeps its own list there
        for pub in self._pubs.values():
            self.destroy_publisher(pub)
        self._pubs = {}
        if self._predictor is not None:
            self._predictor.engine.close()
            self._predictor = None

    # ---- inputs (camera intake thread; speech and clicks on the node's executor) -------------
    def _on_input(self, name: str, index: int, msg) -> None:
        self._stats.last_input[name] = time.monotonic()
        if isinstance(msg, Exception):      # a compressed frame that could not be decoded
            self._report(f'bad compressed {name} frame: {msg}', error=True)
            return
        sync, t = self._sync, stamp_ns(msg)
        back = self._jumps.check_message(index, t, sync.last_emitted_ns(index))
        if back is not None:
            self._time_jump(f'{name} stamps went back by {back * 1e-9:.3f} s '
                            f'for {self._jumps.confirm_messages} messages in a row')
        old = sync.dropped_old
        sync.add(index, msg)
        if sync.dropped_old > old:
            s = msg.header.stamp
            self._report(f'dropped a {name} message with an out-of-order stamp '
                         f'({s.sec}.{s.nanosec:09d} s is not newer than the last synchronised '
                         'frame)', error=True)

    def _on_synced(self, color: Image, depth: Image, info: CameraInfo) -> None:
        # runs in the camera intake thread, under the synchroniser's lock
        t, received = stamp_ns(color), time.monotonic()
        if t <= self._last_stamp_ns:
            self._report(f'dropped a frame with an out-of-order stamp ({t} ns <= '
                         f'{self._last_stamp_ns} ns)', error=True)
            return
        ahead = self._jumps.check_set(t, received)
        if ahead is not None:
            self._time_jump(f'stamps jumped ahead of the clock by {ahead * 1e-9:.3f} s',
                            reset_sync=False)   # this set is the new timeline: keep it
        self._last_stamp_ns = t
        self._stats.frame_in(1e-6 * (self.get_clock().now().nanoseconds - t))
        self._slot.put(Frame(color, depth, info, received))

    def _on_clock_jump(self, jump) -> None:
        """The ROS clock jumped by more than ``time_jump_threshold_s`` (use_sim_time: /clock
        went back, e.g. a simulator restart, or far ahead). Reset when the held stamps now
        belong to another timeline; when the camera stamps already told us (they may arrive
        before /clock), there is nothing left to do."""
        last = self._last_stamp_ns
        now = self.get_clock().now().nanoseconds
        if last >= 0 and abs(now - last) > self._jumps.threshold_ns:
            self._time_jump(f'the ROS clock jumped by {jump.delta.nanoseconds * 1e-9:+.3f} s')

    def _time_jump(self, what: str, reset_sync: bool = True) -> None:
        """Drop the state of the old timeline (synchroniser queues and last stamps, the frame
        waiting for the worker, the tracker) and say so once on unipixel/status."""
        if reset_sync:
            self._sync.reset()
            self._slot.discard()
        self._jumps.reset()
        self._last_stamp_ns = -1
        self._restart_tracking = True
        message = (f'time jump: {what}; dropped the synchronised frames, the last stamps and '
                   'the tracked target')
        self.get_logger().warning(message)
        self._report(message)

    def _on_speech(self, msg: String) -> None:
        try:
            cmd = parse_command(msg.data)
        except CommandError as exc:
            self._reply(f'Sorry, I could not use that command: {exc}.')
            self._report(f'rejected command: {exc}', error=True)
            return
        if cmd.action == CommandAction.STOP:
            self.request_command(CommandAction.STOP, '')
            self._reply('Okay, I stopped.')
            self._report('stopped by command')
        elif cmd.action == CommandAction.DESCRIBE:
            self._queries.describe_last_click()
        else:
            self.request_command(cmd.action, cmd.expression)
            if self._slot.peek() is None and self._stats.frames_in == 0:
                self._reply(f"I heard '{cmd.expression}', but I have no camera image yet.")
                self._report(f'command before any image: {cmd.text!r}', error=True)

    def _on_clicked_point(self, msg: PointStamped) -> None:
        self._queries.click(msg)

    def request_command(self, action: CommandAction, expression: str) -> None:
        """Start following ``expression`` (or stop, for STOP) on the worker's next loop."""
        with self._lock:
            self._pending_command = (action, expression)

    def _publish_safely(self, publish) -> bool:
        """``publish()`` unless the node is shutting down (see ``outputs.publish_unless_closed``)."""
        return publish_unless_closed(publish, lambda: self._closing or not self.context.ok())

    # ---- status ---------------------------------------------------------------------------------
    def _reply(self, text: str) -> None:
        pub = self._pubs.get('reply')
        if pub is not None:
            self._publish_safely(lambda: pub.publish(String(data=text)))

    def _report(self, message: str, error: bool = False) -> None:
        self._last_message = message
        if error:
            self._stats.error(message)
            self.get_logger().warning(message, throttle_duration_sec=2.0)
        self._publish_status()

    def _publish_status(self) -> None:
        pub = self._pubs.get('status')
        if pub is None:
            return
        silent = self._subs and self._stats.log_silent_inputs(
            self.get_logger(), getattr(self, '_activated_at', time.monotonic()),
            self._param('camera_info_timeout_s'),
            [self._param(f'{n}_topic') for n in ('color', 'depth', 'camera_info')])
        if silent:
            self._last_message = silent
        session = self._session
        query = session.query.text if session is not None else ''
        state = ('tracking' if query else 'idle') if self._subs else 'inactive'
        now = self.get_clock().now().to_msg()
        msg = self._stats.to_msg(now, state, query, self._last_message, self._slot.dropped)
        self._carrier.annotate(msg, self.get_clock().now().nanoseconds * 1e-9)
        diagnostics = build_diagnostic_array(
            self._stats.diagnostics(self._slot.dropped, self._param('engine'),
                                    self._param('device')),
            parameters.diagnostic_thresholds(self._param), node_name=self.get_name(),
            hardware_id=self._param('color_topic'), stamp=now)
        self._publish_safely(lambda: pub.publish(msg))
        self._publish_safely(lambda: self._pubs['diagnostics'].publish(diagnostics))


def main(args=None) -> int:
    from rclpy.executors import MultiThreadedExecutor

    from .runtime import run_node
    return run_node(UnipixelNode, args, executor_factory=lambda **kw: MultiThreadedExecutor(4, **kw))


if __name__ == '__main__':
    import sys
    sys.exit(main())
