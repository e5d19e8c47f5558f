"""``unipixel_node``: speech + RGB-D in; mask, overlay, cloud, grasp, markers and a reply out.

A LifecycleNode (``autostart`` configures and activates it without a lifecycle manager):
on_configure loads the predictor and creates lifecycle publishers, services and the tracking
action; on_activate subscribes and starts the worker; on_deactivate unsubscribes and stops it;
on_cleanup frees the engine. This module is wiring only: parameters (``parameters.py``),
message conversion (``conversions.py``, ``outputs.py``), statistics (``status.py``); the
answer itself is :mod:`unipixel_ros.inference` (answer step, command session, predictor).

Threads: the camera topics are received on a hidden intake node spun by its own executor thread
(``camera_executor``, see ``camera_intake.py``), which only synchronises and hands frames to a
size-1 latest-frame slot. One worker thread takes the newest frame, answers the active command
and any one-off jobs (service calls, clicks), and publishes. The node's multi-threaded executor
serves speech, clicks, parameters, lifecycle, the services and the action.

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

from geometry_msgs.msg import PointStamped
from rclpy.callback_groups import MutuallyExclusiveCallbackGroup, ReentrantCallbackGroup
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
from rclpy.qos import HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import String
from unipixel_msgs.msg import ReferringResult

from unipixel_ros.engines import EngineUnavailable
from unipixel_ros.inference.answer import answer_frame
from unipixel_ros.inference.session import CommandSession, sentence_for
from unipixel_ros.language import CommandAction, CommandError, parse_command
from unipixel_ros.perception import GeometryError

from . import parameters
from .camera_intake import subscribe_camera
from .conversions import MessageConversionError, decode_rgbd
from .latest_slot import LatestSlot
from .outputs import RELIABLE, answer_to_result, create_output_publishers, publish_outputs
from .query_services import Frame, Job, QueryServices
from .status import PipelineStats



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
        self._last_stamp_ns = -1
        self._engine_down_since: float | None = None   # a remote engine's server went away
        if self._param('autostart'):
            self._autostart_timer = self.create_timer(0.0, self._autostart)

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
                                               self._publish_status)
        self._last_message = f'configured: {engine} engine, model {model}'
        self.get_logger().info(self._last_message)
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        from .sync import create_time_sync

        reliability = (ReliabilityPolicy.RELIABLE if self._param('sensor_qos_reliable')
                       else ReliabilityPolicy.BEST_EFFORT)
        sensor_qos = QoSProfile(depth=5, history=HistoryPolicy.KEEP_LAST, reliability=reliability)
        self._sync = create_time_sync(self._param('exact_sync'), 3, self._param('queue_size'),
                                      self._param('slop'), self._on_synced)
        g = self._sensor_group
        camera = [(Image, self._param('color_topic'), lambda m: self._on_input('color', 0, m)),
                  (Image, self._param('depth_topic'), lambda m: self._on_input('depth', 1, m)),
                  (CameraInfo, self._param('camera_info_topic'),
                   lambda m: self._on_input('info', 2, m))]
        self._subs, self._intake = subscribe_camera(self, camera, sensor_qos,
                                                    self._param('camera_executor'), g)
        self._subs += [
            self.create_subscription(String, self._param('speech_topic'), self._on_speech,
                                     RELIABLE, callback_group=g),
            self.create_subscription(PointStamped, self._param('clicked_point_topic'),
                                     self._on_clicked_point, RELIABLE, callback_group=g)]
        self._slot.reopen()
        self._running = True
        self._worker = threading.Thread(target=self._work, name='unipixel_worker', daemon=True)
        self._worker.start()
        self._activated_at = time.monotonic()
        self._last_message = 'active: waiting for a command'
        self.get_logger().info(self._last_message)
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        self.close()
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
        """Stop the camera intake and the worker (before the node or its context goes away)."""
        if self._intake is not None:
            self._intake.close()
            self._intake = None
        self._running = False
        self._slot.close()
        if self._worker is not None:
            self._worker.join(timeout=5.0)
            self._worker = None
        if self._queries is not None:
            self._queries.fail_pending('node is shutting down')

    def _release(self) -> None:
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
        old = self._sync.dropped_old
        self._sync.add(index, msg)
        if self._sync.dropped_old > old:
            s = msg.header.stamp
            self._report(f'dropped a {name} message with an out-of-order stamp '
                         f'({s.sec}.{s.nanosec:09d} s is not newer than the last synchronised '
                         'frame)', error=True)

    def _on_synced(self, color: Image, depth: Image, info: CameraInfo) -> None:
        stamp_ns = color.header.stamp.sec * 1_000_000_000 + color.header.stamp.nanosec
        if stamp_ns <= self._last_stamp_ns:
            self._report(f'dropped a frame with an out-of-order stamp ({stamp_ns} ns <= '
                         f'{self._last_stamp_ns} ns)', error=True)
            return
        self._last_stamp_ns = stamp_ns
        self._stats.frame_in(1e-6 * (self.get_clock().now().nanoseconds - stamp_ns))
        self._slot.put(Frame(color, depth, info, time.monotonic()))

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

    # ---- worker ---------------------------------------------------------------------------------
    def request_command(self, action: CommandAction, expression: str) -> None:
        """Start following ``expression`` (or stop, for STOP) on the worker's next loop."""
        with self._lock:
            self._pending_command = (action, expression)

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
            except EngineUnavailable as exc:   # the model server is down: say so, keep going
                self._engine_lost(exc)
            except Exception as exc:  # the worker must survive any single bad frame
                self._report(f'frame failed: {type(exc).__name__}: {exc}', error=True)

    def _start_command(self, action: CommandAction, expression: str) -> None:
        if action == CommandAction.STOP:
            self._session = None
            self._queries.stop_tracking()
            return
        try:
            t0 = time.perf_counter()
            query = self._predictor.encode_text(expression)
            encode_ms = (time.perf_counter() - t0) * 1e3
        except EngineUnavailable as exc:   # keep the command until the model server is back
            self._engine_lost(exc)
            with self._lock:
                if self._pending_command is None:   # unless a newer one arrived meanwhile
                    self._pending_command = (action, expression)
            return
        except Exception as exc:
            self._reply(f'Sorry, I could not understand {expression!r}.')
            self._report(f'text encoding failed: {exc}', error=True)
            return
        self._engine_back()
        self._session = CommandSession(action, query, self._tracker,
                                       self._param('pick_stable_frames'))
        if action != CommandAction.TRACK:
            self._queries.stop_tracking()   # a new command supersedes tracking
        self._report(f'new command: {action.value} {expression!r} (text encoded in '
                     f'{encode_ms:.0f} ms)')

    def _process(self, frame: Frame) -> None:
        frame.taken = time.monotonic()
        try:
            intr, rgb, depth_m = decode_rgbd(frame.color, frame.depth, frame.info)
        except (MessageConversionError, GeometryError) as exc:
            self._report(f'bad input frame: {exc}', error=True)
            return
        header = frame.color.header
        self._last_frame_geometry = (intr, header.frame_id)
        for job in self._queries.take_jobs():
            self._run_job(job, rgb, depth_m, intr, header)
        session = self._session
        if session is None:
            return
        step = session.step(self._predictor, rgb, depth_m, intr,
                            parameters.geometry_config(self._param),
                            stamp_s=header.stamp.sec + header.stamp.nanosec * 1e-9)
        self._engine_back()
        self._stats.model_ms.append(step.answer.prediction.timings['total_ms'])
        result = answer_to_result(step.answer, header, session.query.text, step.sentence,
                                  self._param('publish_voxel_cloud'))
        self._publish(result, step, rgb, header, frame)

    def _run_job(self, job: Job, rgb, depth_m, intr, header) -> None:
        try:
            if job.kind == 'point':
                query = self._predictor.encode_point(*job.uv, rgb.shape[1], rgb.shape[0])
                text = f'the object at pixel ({job.uv[0]:.0f}, {job.uv[1]:.0f})'
            else:
                query = self._predictor.encode_text(job.query)
                text = job.query
            answer = answer_frame(self._predictor, query, rgb, depth_m, intr,
                                  parameters.geometry_config(self._param))
            sentence = sentence_for(answer, describe=job.kind == 'point')
            job.result = answer_to_result(answer, header, text, sentence,
                                          self._param('publish_voxel_cloud'))
            job.attributes = answer.prediction.attributes   # refined by the measured box
            if job.kind == 'point':   # a description is also said
                self._reply(sentence if answer.found else "I don't see an object there.")
        except Exception as exc:
            job.error = f'{type(exc).__name__}: {exc}'
        finally:
            job.done.set()

    def _publish(self, result: ReferringResult, step, rgb, header, frame: Frame) -> None:
        pubs = self._pubs
        if not pubs:
            return
        pubs['result'].publish(result)
        stamp = header.stamp.sec + header.stamp.nanosec * 1e-9
        self._stats.latencies_ms.append(1e3 * (self.get_clock().now().nanoseconds * 1e-9 - stamp))
        publish_outputs(pubs, result, rgb, header, measured=step.answer.geometry is not None,
                        pick=step.pick)
        if step.reply is not None:
            self._reply(step.reply)
        track = step.answer.track
        self._queries.feedback(result, 0 if track is None else track.consecutive_misses)
        self._stats.frame_out(frame.received, frame.taken)

    def _engine_lost(self, exc: EngineUnavailable) -> None:
        """A remote engine's server is unreachable: reported once, then every failed try counts
        as an error and the status message says for how long (the worker retries every frame)."""
        now = time.monotonic()
        if self._engine_down_since is None:
            self._engine_down_since = now
            self._report(f'inference server unavailable, retrying on every frame: {exc}',
                         error=True)
        else:
            self._stats.errors += 1
            self._last_message = (f'inference server unavailable for '
                                  f'{now - self._engine_down_since:.0f} s, retrying on every '
                                  f'frame: {exc}')

    def _engine_back(self) -> None:
        """The engine answered again after :meth:`_engine_lost`: resumed, no restart."""
        if self._engine_down_since is not None:
            down_s = time.monotonic() - self._engine_down_since
            self._engine_down_since = None
            self._report(f'inference server back after {down_s:.1f} s: resumed')

    # ---- status ---------------------------------------------------------------------------------
    def _reply(self, text: str) -> None:
        pub = self._pubs.get('reply')
        if pub is not None:
            pub.publish(String(data=text))

    def _report(self, message: str, error: bool = False) -> None:
        self._last_message = message
        if error:
            self._stats.errors += 1
            self.get_logger().warning(message, throttle_duration_sec=2.0)
        self._publish_status()

    def _publish_status(self) -> None:
        pub = self._pubs.get('status')
        if pub is None:
            return
        if self._subs:
            stale = self._stats.stale_inputs(getattr(self, '_activated_at', time.monotonic()),
                                             self._param('camera_info_timeout_s'))
            if stale:
                self._last_message = (
                    f'no {", ".join(stale)} received for more than '
                    f'{self._param("camera_info_timeout_s"):.1f} s while other camera topics '
                    f'arrive (topics: {self._param("color_topic")}, {self._param("depth_topic")}, '
                    f'{self._param("camera_info_topic")})')
                self.get_logger().warning(self._last_message)
        session = self._session
        query = session.query.text if session is not None else ''
        state = ('tracking' if query else 'idle') if self._subs else 'inactive'
        pub.publish(self._stats.to_msg(self.get_clock().now().to_msg(), state, query,
                                       self._last_message, self._slot.dropped))


def main(args=None) -> int:
    from rclpy.executors import MultiThreadedExecutor

    from .runtime import run_node
    return run_node(UnipixelNode, args, executor_factory=lambda **kw: MultiThreadedExecutor(4, **kw))


if __name__ == '__main__':
    import sys
    sys.exit(main())
