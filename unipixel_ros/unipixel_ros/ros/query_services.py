"""One-off questions to ``unipixel_node``: the Segment and Describe services, the TrackObject
action, and RViz clicks. Each becomes a :class:`Job` the worker answers on its next frame (or
the followed command, for tracking); the service and action callbacks wait for it in a
reentrant callback group, so the node's executor stays free."""
from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

import rclpy
from geometry_msgs.msg import PointStamped
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from sensor_msgs.msg import CameraInfo, Image
from unipixel_msgs.action import TrackObject
from unipixel_msgs.msg import ReferringResult
from unipixel_msgs.srv import Describe, Segment

from unipixel_ros.inference.predictor import describe_confidence
from unipixel_ros.language import CommandAction, CommandError, parse_command


@dataclass
class Frame:
    """One synchronised RGB-D frame as received (decoded by the worker)."""

    color: Image
    depth: Image
    info: CameraInfo
    received: float                     # time.monotonic() at synchronisation
    taken: float = 0.0                  # time.monotonic() when the worker took it


@dataclass
class Job:
    """A one-off answer the worker gives on its next frame."""

    kind: str                           # 'query' | 'point'
    query: str = ''                     # referring expression ('' for point)
    uv: tuple | None = None             # (u, v) pixel for 'point'
    done: threading.Event = field(default_factory=threading.Event)
    result: ReferringResult | None = None
    attributes: dict = field(default_factory=dict)
    error: str = ''


class QueryServices:
    """The services, the action and the click handling of ``node`` (a UnipixelNode)."""

    def __init__(self, node, callback_group) -> None:
        self.node = node
        self._jobs: deque[Job] = deque(maxlen=8)
        self._lock = threading.Lock()
        self._track_goal = None
        self._track_feedback: deque = deque(maxlen=1)
        #: the session of the followed command; a goal takes feedback only from the session the
        #: worker started after the goal asked (a frame in flight belongs to the one before)
        self._track_session = None
        self._last_clicked: tuple | None = None
        self._busy = 0                      # service / action callbacks inside their wait
        self._idle = threading.Condition(self._lock)
        self._entities = [
            node.create_service(Segment, 'unipixel/segment', self._on_segment,
                                callback_group=callback_group),
            node.create_service(Describe, 'unipixel/describe', self._on_describe,
                                callback_group=callback_group)]
        self._action = ActionServer(node, TrackObject, 'unipixel/track', self._execute_track,
                                    goal_callback=lambda _: GoalResponse.ACCEPT,
                                    cancel_callback=lambda _: CancelResponse.ACCEPT,
                                    callback_group=callback_group)

    def wait_idle(self, timeout_s: float) -> bool:
        """Wait until no service or action callback is still waiting for the worker (call it
        after the worker stopped and :meth:`fail_pending`); False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._busy == 0, timeout_s)

    def _enter(self) -> None:
        with self._idle:
            self._busy += 1

    def _leave(self) -> None:
        with self._idle:
            self._busy -= 1
            self._idle.notify_all()

    def destroy(self) -> None:
        self._action.destroy()
        for srv in self._entities:
            self.node.destroy_service(srv)

    # ---- called by the worker -------------------------------------------------------------------
    def take_jobs(self) -> list[Job]:
        jobs = []
        while self._jobs:
            jobs.append(self._jobs.popleft())
        return jobs

    def fail_pending(self, why: str) -> None:
        for job in list(self._jobs):
            job.error = why
            job.done.set()

    def session_started(self, session) -> None:
        """The worker made ``session`` the followed command."""
        with self._lock:
            self._track_session = session

    def feedback(self, result: ReferringResult, misses: int, session) -> None:
        """A result of ``session``: feedback for the goal, if the goal's own session made it."""
        with self._lock:
            if self._track_goal is not None and session is self._track_session:
                self._track_feedback.append((result, misses))

    def stop_tracking(self) -> None:
        """A new command (or stop) ends the tracking goal, if any."""
        with self._lock:
            self._track_goal = None

    # ---- clicks ---------------------------------------------------------------------------------
    def click(self, msg: PointStamped) -> None:
        uv, why = self._project(msg)
        if uv is None:
            if self.node._last_frame_geometry is None:
                self.node._reply(f'{why[0].upper()}{why[1:]}.')
            self.node._report(f'clicked point ignored: {why}', error=True)
            return
        self._last_clicked = uv
        self._jobs.append(Job('point', uv=uv))

    def describe_last_click(self) -> None:
        if self._last_clicked is None:
            self.node._reply('Point at something in RViz first, then ask me what it is.')
        else:
            self._jobs.append(Job('point', uv=self._last_clicked))

    def _project(self, msg: PointStamped) -> tuple[tuple | None, str]:
        """((u, v) pixel, '') of a 3D point in the camera optical frame (metres) projected into
        the newest frame, or (None, why not)."""
        geom = self.node._last_frame_geometry
        if geom is None:
            return None, 'I have no camera image to look at yet'
        intr, frame_id = geom
        if msg.header.frame_id and msg.header.frame_id != frame_id:
            return None, (f'the point is in frame {msg.header.frame_id!r}, expected the camera '
                          f'frame {frame_id!r} (no tf2 here: publish it in the camera frame)')
        p = msg.point
        if p.z <= 0:
            return None, 'the point is behind the camera'
        u, v = intr.fx * p.x / p.z + intr.cx, intr.fy * p.y / p.z + intr.cy
        if not (0 <= u < intr.width and 0 <= v < intr.height):
            return None, f'the point projects outside the image ({u:.0f}, {v:.0f})'
        return (u, v), ''

    def _check_pixel(self, u: float, v: float) -> str:
        """Why pixel (u, v) cannot be described now ('' when it can)."""
        geom = self.node._last_frame_geometry
        if geom is None:
            return 'I have no camera image to look at yet'
        intr = geom[0]
        if not (0 <= u < intr.width and 0 <= v < intr.height):
            return (f'pixel ({u:.0f}, {v:.0f}) is outside the image '
                    f'({intr.width}x{intr.height})')
        return ''

    # ---- services and action (reentrant group: they wait for the worker) -------------------------
    def _wait_job(self, job: Job, timeout_s: float) -> Job:
        """Queue ``job`` for the worker and wait up to ``timeout_s`` seconds for its answer."""
        self._enter()
        try:
            if not self.node._running:
                job.error = 'the node is not active'
                return job
            self._jobs.append(job)
            if not job.done.wait(timeout_s):
                job.error = f'no camera frame was processed within {timeout_s:.1f} s'
            return job
        finally:
            self._leave()

    def _on_segment(self, request, response):
        try:
            cmd = parse_command(request.query)
        except CommandError as exc:
            response.success, response.message = False, str(exc)
            return response
        if not cmd.expression:
            response.success, response.message = False, f'{request.query!r} names no object'
            return response
        job = self._wait_job(Job('query', cmd.expression), request.timeout_s or 5.0)
        response.success = not job.error
        response.message = job.error
        if job.result is not None:
            response.result = job.result
        return response

    def _on_describe(self, request, response):
        if request.use_point:
            uv, why = self._project(request.point)
        else:
            uv = (float(request.u), float(request.v))
            why = self._check_pixel(*uv)
        if why:
            response.success, response.message = False, why
            return response
        job = self._wait_job(Job('point', uv=uv), 5.0)
        response.success = not job.error and job.result is not None and job.result.found
        response.message = job.error or ('' if response.success else 'no object at that point')
        if job.result is not None:
            response.result = job.result
            response.description = job.result.description
            for key in ('category', 'color', 'size'):
                setattr(response, key, job.attributes.get(key, ('', 0))[0])
            # how likely "category and colour are right", not the click's exists score (~1)
            response.score = describe_confidence(job.attributes)
        return response

    def _execute_track(self, goal_handle):
        try:
            cmd = parse_command(goal_handle.request.query)
        except CommandError as exc:
            goal_handle.abort()
            return TrackObject.Result(success=False, message=str(exc))
        if not cmd.expression:
            goal_handle.abort()
            return TrackObject.Result(success=False,
                                      message=f'{goal_handle.request.query!r} names no object')
        self._enter()
        try:
            return self._follow_goal(goal_handle, cmd)
        finally:
            self._leave()

    def _follow_goal(self, goal_handle, cmd):
        node = self.node
        with self._lock:     # before the request: the worker's next session is this goal's
            self._track_goal = goal_handle
            self._track_session = None
            self._track_feedback.clear()
        node.request_command(CommandAction.TRACK, cmd.expression)
        start, frames, last = time.monotonic(), 0, ReferringResult()
        limit = goal_handle.request.max_duration_s
        message, success, superseded = 'time limit reached', True, False
        while rclpy.ok() and node._running:
            if goal_handle.is_cancel_requested:
                self._end_goal(goal_handle)
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
        if not node._running and not superseded:
            message, success = 'the node stopped (deactivated or shutting down)', False
        self._end_goal(goal_handle)
        if success:
            goal_handle.succeed()
        else:
            goal_handle.abort()
        return TrackObject.Result(success=success, message=message, frames_tracked=frames,
                                  last_result=last)

    def _end_goal(self, goal_handle) -> None:
        """The goal is over: stop following its command unless a newer one replaced it."""
        with self._lock:
            mine = self._track_goal is goal_handle
            if mine:
                self._track_goal = None
        if mine:
            self.node.request_command(CommandAction.STOP, '')
