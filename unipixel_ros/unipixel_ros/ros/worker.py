"""The inference worker of ``unipixel_node``: one thread takes the newest synchronised frame,
answers the one-off jobs (service calls, clicks) and the followed command on it, and publishes.

It runs the core (:mod:`unipixel_ros.inference`) and converts its answers to messages; the node
owns the ROS entities, the parameters and the statistics it uses.
"""
from __future__ import annotations

import threading
import time

from std_msgs.msg import String
from unipixel_msgs.msg import ReferringResult

from unipixel_ros.engines import EngineUnavailable
from unipixel_ros.inference.answer import answer_frame
from unipixel_ros.inference.resolver import Viewpoint
from unipixel_ros.inference.session import CommandSession, sentence_for
from unipixel_ros.language import CommandAction
from unipixel_ros.perception import GeometryError

from . import parameters
from .conversions import MessageConversionError, decode_rgbd
from .frames import FrameError, transform_result
from .outputs import answer_to_result, publish_outputs
from .query_services import Frame, Job


class FrameWorker:
    """The worker thread of ``node`` (a UnipixelNode); see the module docstring."""

    def __init__(self, node) -> None:
        self.node = node
        self.thread = threading.Thread(target=self._work, name='unipixel_worker', daemon=True)
        self.engine_down_since: float | None = None   # a remote engine's server went away

    def engine_lost(self, exc: EngineUnavailable) -> None:
        """A remote engine's server is unreachable: reported once, then every failed try counts
        as an error and the status message says for how long (the worker retries every frame)."""
        now = time.monotonic()
        if self.engine_down_since is None:
            self.engine_down_since = now
            self.node._report(f'inference server unavailable, retrying on every frame: {exc}',
                         error=True)
        else:
            self.node._stats.errors += 1
            self.node._last_message = (f'inference server unavailable for '
                                  f'{now - self.engine_down_since:.0f} s, retrying on every '
                                  f'frame: {exc}')

    def engine_back(self) -> None:
        """The engine answered again after :meth:`engine_lost`: resumed, no restart."""
        if self.engine_down_since is not None:
            down_s = time.monotonic() - self.engine_down_since
            self.engine_down_since = None
            self.node._report(f'inference server back after {down_s:.1f} s: resumed')

    def _work(self) -> None:
        node = self.node
        while node._running:
            frame = node._slot.take(timeout=0.1)
            with node._lock:
                pending, node._pending_command = node._pending_command, None
            if pending is not None:
                self._start_command(*pending)
            if node._restart_tracking:
                node._restart_tracking = False
                node._carrier.forget()
                if node._session is not None:
                    node._session.restart_tracking()
            if frame is None:
                continue
            try:
                self._process(frame)
            except EngineUnavailable as exc:   # the model server is down: say so, keep going
                self.engine_lost(exc)
            except Exception as exc:  # the worker must survive any single bad frame
                node._report(f'frame failed: {type(exc).__name__}: {exc}', error=True)

    def _start_command(self, action: CommandAction, expression: str) -> None:
        node = self.node
        node._carrier.forget()
        if action == CommandAction.STOP:
            node._session = None
            node._queries.stop_tracking()
            return
        try:
            t0 = time.perf_counter()
            query = node._predictor.encode_text(expression)
            encode_ms = (time.perf_counter() - t0) * 1e3
        except EngineUnavailable as exc:   # keep the command until the model server is back
            self.engine_lost(exc)
            with node._lock:
                if node._pending_command is None:   # unless a newer one arrived meanwhile
                    node._pending_command = (action, expression)
            return
        except Exception as exc:
            node._reply(f'Sorry, I could not understand {expression!r}.')
            node._report(f'text encoding failed: {exc}', error=True)
            return
        self.engine_back()
        node._session = CommandSession(action, query, node._tracker,
                                       node._param('pick_stable_frames'))
        node._queries.session_started(node._session)
        if action != CommandAction.TRACK:
            node._queries.stop_tracking()   # a new command supersedes tracking
        node._commands_started += 1
        node._report(f'new command #{node._commands_started}: {action.value} {expression!r} '
                     f'(text encoded in {encode_ms:.0f} ms)')

    def _process(self, frame: Frame) -> None:
        node = self.node
        frame.taken = time.monotonic()
        try:
            intr, rgb, depth_m = decode_rgbd(frame.color, frame.depth, frame.info,
                                             node._param('depth_scale'))
        except (MessageConversionError, GeometryError) as exc:
            node._report(f'bad input frame: {exc}', error=True)
            return
        header = frame.color.header
        node._last_frame_geometry = (intr, header.frame_id)
        jobs, session = node._queries.take_jobs(), node._session
        if jobs or session is not None:
            self._set_viewpoint(header)
        for job in jobs:
            self._run_job(job, rgb, depth_m, intr, header)
        if session is None:     # the session is only replaced by this thread
            return
        step = session.step(node._predictor, rgb, depth_m, intr,
                            parameters.geometry_config(node._param),
                            stamp_s=header.stamp.sec + header.stamp.nanosec * 1e-9)
        self.engine_back()
        node._stats.model_ms.append(step.answer.prediction.timings['total_ms'])
        result = answer_to_result(step.answer, header, session.query.text, step.sentence,
                                  node._param('publish_voxel_cloud'))
        if self._to_target_frame(result):
            self._publish(result, step, rgb, header, frame, session)

    def _run_job(self, job: Job, rgb, depth_m, intr, header) -> None:
        node = self.node
        try:
            if job.kind == 'point':
                if not (0 <= job.uv[0] < rgb.shape[1] and 0 <= job.uv[1] < rgb.shape[0]):
                    job.error = (f'pixel ({job.uv[0]:.0f}, {job.uv[1]:.0f}) is outside the '
                                 f'image ({rgb.shape[1]}x{rgb.shape[0]})')
                    return
                query = node._predictor.encode_point(*job.uv, rgb.shape[1], rgb.shape[0])
                text = f'the object at pixel ({job.uv[0]:.0f}, {job.uv[1]:.0f})'
            else:
                query = node._predictor.encode_text(job.query)
                text = job.query
            answer = answer_frame(node._predictor, query, rgb, depth_m, intr,
                                  parameters.geometry_config(node._param))
            sentence = sentence_for(answer, describe=job.kind == 'point')
            job.result = answer_to_result(answer, header, text, sentence,
                                          node._param('publish_voxel_cloud'))
            if not self._to_target_frame(job.result):
                job.error = node._last_message
            job.attributes = answer.prediction.attributes   # refined by the measured box
            if job.kind == 'point':   # a description is also said
                node._reply(sentence if answer.found else "I don't see an object there.")
        except Exception as exc:
            job.error = f'{type(exc).__name__}: {exc}'
        finally:
            job.done.set()

    def _set_viewpoint(self, header) -> None:
        """A predictor that reasons in 3D (the SAM 3 resolver) takes left, right and closest
        from ``target_frame`` (e.g. the robot's base_link), not from the camera."""
        predictor = self.node._predictor
        if not hasattr(predictor, 'viewpoint'):
            return
        try:
            transform = self.node._frames.transform_for(header.frame_id, header.stamp)
        except FrameError:
            transform = None      # reported when the result is re-expressed
        predictor.viewpoint = (None if transform is None else
                               Viewpoint(transform.rotation, transform.translation))

    def _to_target_frame(self, result: ReferringResult) -> bool:
        """Re-express the result in ``target_frame``; False (reported) when that is impossible."""
        node = self.node
        try:
            transform = node._frames.transform_for(result.header.frame_id, result.header.stamp)
            if transform is not None:
                transform_result(result, transform, node._frames.target_frame)
            return True
        except FrameError as exc:
            node._report(str(exc), error=True)
            return False

    def _publish(self, result: ReferringResult, step, rgb, header, frame: Frame,
                 session) -> None:
        node = self.node
        pubs = node._pubs
        if not pubs:
            return

        def publish_all() -> None:
            now_s = node.get_clock().now().nanoseconds * 1e-9
            pubs['result'].publish(node._carrier.mark(result, now_s))
            node._stats.latencies_ms.append(1e3 * result.age_s)
            publish_outputs(pubs, result, rgb, header,
                            measured=step.answer.geometry is not None, pick=step.pick)
            if step.reply is not None:
                pubs['reply'].publish(String(data=step.reply))

        if not node._publish_safely(publish_all):
            return
        track = step.answer.track
        node._queries.feedback(result, 0 if track is None else track.consecutive_misses,
                               session)
        node._stats.frame_out(frame.received, frame.taken)

