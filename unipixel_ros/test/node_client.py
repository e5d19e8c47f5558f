"""The real unipixel_node as a separate process, and a client process side that talks to it the
way a robot's task layer, a camera driver and RViz would: camera frames, speech, clicks,
parameters, lifecycle transitions, the Segment / Describe services and the TrackObject action.

Used by the node tests (test_interfaces_ros.py, test_node_behaviour.py, test_node_shutdown.py).
The node runs the tiny random checkpoint of ``tiny_node_setup`` on 160x120 frames: these tests
are about the node, not about accuracy. Two frames tell "the target is visible" from "hidden"
because the random model scores them differently (0.474 vs 0.469 for seed 0); the tests measure
both scores through the node's own Segment service and put ``exists_threshold`` between them.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import rclpy
from action_msgs.msg import GoalStatus
from geometry_msgs.msg import PointStamped
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from rcl_interfaces.srv import SetParametersAtomically
from rclpy.action import ActionClient
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header, String
from unipixel_msgs.action import TrackObject
from unipixel_msgs.msg import PipelineStatus, ReferringResult
from unipixel_msgs.srv import Describe, Segment

from tiny_node_setup import INTR, H, W
from unipixel_ros.ros.conversions import intrinsics_to_camera_info, numpy_to_image

RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
FRAME_ID = 'camera_color_optical_frame'
#: what the tests' node is started with (thresholds are set per test through parameters)
BASE_PARAMS = ('engine:=torch', 'threads:=1', 'sensor_qos_reliable:=true', 'status_rate_hz:=5.0',
               'exists_threshold:=0.0', 'uncertain_threshold:=0.0', 'mask_threshold:=0.0',
               'max_misses:=3')
UNSAFE_OUTPUT = ('Traceback', 'RCLError')


def fresh_results(store: list):
    """A ``unipixel/result`` callback that keeps only answers computed on a frame: results
    carried forward between groundings (``carried_forward``, see ros/carry_forward.py) repeat
    an earlier answer and would let "a new result arrived" pass without one."""
    return lambda msg: None if msg.carried_forward else store.append(msg)


def publish_when_matched(node, publisher, msg, timeout_s: float = 20.0) -> None:
    """Spin ``node`` until ``publisher`` has matched a subscription, then publish ``msg``.

    A reliable, volatile message published before discovery has matched the receiving
    subscription is dropped; the node's (earlier) status reaching the client does not mean the
    other direction has matched yet, and a subscription made on activation is matched later still.
    """
    end = time.monotonic() + timeout_s
    while publisher.get_subscription_count() == 0 and time.monotonic() < end:
        rclpy.spin_once(node, timeout_sec=0.02)
    assert publisher.get_subscription_count() > 0, \
        f'no subscription on {publisher.topic_name} after {timeout_s} s'
    publisher.publish(msg)


class NodeProcess:
    """``python -m unipixel_ros.ros.unipixel_node`` with a log file (a pipe nobody reads while
    the test runs would block the node once 64 KiB of log filled it)."""

    def __init__(self, checkpoint: Path, *params: str, ros_args: tuple = ()) -> None:
        self.log = tempfile.NamedTemporaryFile('w+', prefix='unipixel_node_test_', suffix='.log',
                                               delete=False)
        cmd = [sys.executable, '-m', 'unipixel_ros.ros.unipixel_node', '--ros-args',
               *ros_args, '-p', f'model_path:={checkpoint}']
        for p in (*BASE_PARAMS, *params):
            cmd += ['-p', p]
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT, text=True,
                                     env=dict(os.environ))

    def output(self) -> str:
        return Path(self.log.name).read_text()

    def stop(self, sig: int = signal.SIGINT, timeout_s: float = 20.0) -> tuple[int, str]:
        """Send ``sig``, wait for the exit: (exit status, everything the node printed)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                raise AssertionError(f'unipixel_node did not exit within {timeout_s} s of '
                                     f'signal {sig}:\n{self.output()[-3000:]}')
        self.log.close()
        out = self.output()
        os.unlink(self.log.name)
        return self.proc.returncode, out


def frame_images(kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(rgb (H, W, 3) uint8, depth (H, W) uint16 mm) of a crafted frame: 'visible' (a large red
    box 5 cm in front of a grey wall at 0.70 m) or 'hidden' (the wall only)."""
    rgb = np.full((H, W, 3), 120, np.uint8)
    depth = np.full((H, W), 700, np.uint16)
    if kind == 'visible':
        rgb[10:110, 20:140] = (200, 30, 30)
        depth[10:110, 20:140] = 650
    elif kind != 'hidden':
        raise ValueError(kind)
    return rgb, depth


class NodeClient:
    """Publishers, subscribers and clients of the node under test, in this process.

    Args:
        namespace: the node's namespace ('' = root); names below are relative to it.
        node_name: the node's name (for its parameter and lifecycle services).
        t0: the first camera stamp, s (the client's own camera clock, advanced per frame).
    """

    def __init__(self, namespace: str = '', node_name: str = 'unipixel_node',
                 t0: float = 1000.0) -> None:
        self.node = n = rclpy.create_node('unipixel_test_client', namespace=namespace or '/')
        self.target = f'{namespace}/{node_name}'
        self.color = n.create_publisher(Image, 'camera/camera/color/image_raw', RELIABLE)
        self.depth = n.create_publisher(Image, 'camera/camera/aligned_depth_to_color/image_raw',
                                        RELIABLE)
        self.info = n.create_publisher(CameraInfo, 'camera/camera/color/camera_info', RELIABLE)
        self.speech = n.create_publisher(String, 'speech/text', RELIABLE)
        self.clicks = n.create_publisher(PointStamped, 'clicked_point', RELIABLE)
        self.results: list[ReferringResult] = []
        self.replies: list[tuple[float, str]] = []          # (time.monotonic(), text)
        self.statuses: list[PipelineStatus] = []
        n.create_subscription(ReferringResult, 'unipixel/result', fresh_results(self.results),
                              RELIABLE)
        n.create_subscription(String, 'unipixel/reply',
                              lambda m: self.replies.append((time.monotonic(), m.data)), RELIABLE)
        n.create_subscription(PipelineStatus, 'unipixel/status', self.statuses.append,
                              QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE))
        self.segment = n.create_client(Segment, 'unipixel/segment')
        self.describe = n.create_client(Describe, 'unipixel/describe')
        self.track = ActionClient(n, TrackObject, 'unipixel/track')
        self.t = t0
        self.frames_sent = 0
        self._sent_at: dict = {}
        self._images = {k: frame_images(k) for k in ('visible', 'hidden')}

    def destroy(self) -> None:
        self.track.destroy()
        self.node.destroy_node()

    # ---- waiting --------------------------------------------------------------------------------
    def spin(self, timeout_s: float, until=None) -> bool:
        """Spin until ``until()`` holds (True) or ``timeout_s`` passed (False; None: just spin)."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            if until is not None and until():
                return True
            rclpy.spin_once(self.node, timeout_sec=0.02)
        return bool(until and until())

    def stream(self, timeout_s: float, until, kind: str = 'visible', period_s: float = 0.1) -> bool:
        """Publish ``kind`` frames every ``period_s`` until ``until()`` holds or the time is up."""
        end = time.monotonic() + timeout_s
        while time.monotonic() < end:
            self.frame(kind)
            if self.spin(period_s, until):
                return True
        return bool(until())

    def wait_up(self, timeout_s: float = 90.0) -> None:
        """Wait for the node's latched status (it is configured) and its services."""
        assert self.spin(timeout_s, lambda: bool(self.statuses)), 'unipixel_node did not come up'
        assert self.segment.wait_for_service(timeout_sec=30.0)

    # ---- camera ---------------------------------------------------------------------------------
    def header(self, t: float | None = None) -> Header:
        """A header stamped ``t`` s, or the client's camera clock advanced by 0.1 s."""
        if t is None:
            self.t += 0.1
            t = self.t
        h = Header(frame_id=FRAME_ID)
        h.stamp.sec, h.stamp.nanosec = divmod(int(round(t * 1e9)), 1_000_000_000)
        return h

    def frame(self, kind: str = 'visible', t: float | None = None) -> Header:
        """Publish colour, depth and camera_info of one crafted frame; returns its header."""
        h = self.header(t)
        rgb, depth = self._images[kind]
        self.color.publish(numpy_to_image(rgb, 'rgb8', h))
        self.depth.publish(numpy_to_image(depth, '16UC1', h))
        self.info.publish(intrinsics_to_camera_info(INTR, h))
        self.frames_sent += 1
        # a test may send a stamp again (time jumps): only results that came after count
        self._sent_at[(h.stamp.sec, h.stamp.nanosec)] = len(self.results)
        return h

    def result_for(self, header: Header) -> ReferringResult | None:
        """The result for the frame last sent with this header's stamp, if it came."""
        since = self._sent_at.get((header.stamp.sec, header.stamp.nanosec), 0)
        return next((r for r in self.results[since:] if r.header.stamp == header.stamp), None)

    def step(self, kind: str = 'visible', t: float | None = None,
             timeout_s: float = 10.0) -> ReferringResult:
        """Publish one frame and wait for its result (every frame is answered: no frame is
        dropped by the latest-frame slot while the client waits)."""
        h = self.frame(kind, t)
        assert self.spin(timeout_s, lambda: self.result_for(h) is not None), \
            f'no result for the {kind} frame stamped {h.stamp.sec}.{h.stamp.nanosec:09d}'
        return self.result_for(h)

    def serves(self, command: str = 'find the red box', timeout_s: float = 10.0) -> bool:
        """Say ``command`` and stream valid frames until a result for it arrives."""
        publish_when_matched(self.node, self.speech, String(data=command))
        before = len(self.results)
        return self.stream(timeout_s, lambda: len(self.results) > before)

    # ---- status and replies ---------------------------------------------------------------------
    def status_events(self, text: str) -> list[str]:
        """Status messages containing ``text``, each counted once (the status repeats its last
        message every period until a newer one replaces it)."""
        events, previous = [], None
        for s in self.statuses:
            if s.message != previous and text in s.message:
                events.append(s.message)
            previous = s.message
        return events

    def replies_since(self, t: float) -> list[str]:
        return [text for when, text in self.replies if when >= t]

    # ---- services, parameters, lifecycle --------------------------------------------------------
    def call(self, client, request, timeout_s: float = 30.0):
        assert client.wait_for_service(timeout_sec=30.0), f'{client.srv_name} is not served'
        future = client.call_async(request)
        assert self.spin(timeout_s, future.done), f'{client.srv_name} did not answer'
        return future.result()

    def call_while_streaming(self, client, request, kind: str = 'visible',
                             timeout_s: float = 30.0):
        """Call a service that waits for the next camera frame, streaming frames meanwhile."""
        assert client.wait_for_service(timeout_sec=30.0), f'{client.srv_name} is not served'
        future = client.call_async(request)
        assert self.stream(timeout_s, future.done, kind), f'{client.srv_name} did not answer'
        return future.result()

    def set_params(self, **values) -> None:
        """Set parameters atomically: the node never runs on half of them (rclpy applies a
        plain SetParameters request one parameter at a time)."""
        client = self.node.create_client(SetParametersAtomically,
                                         f'{self.target}/set_parameters_atomically')
        try:
            res = self.call(client, SetParametersAtomically.Request(parameters=[
                Parameter(k, value=v).to_parameter_msg() for k, v in values.items()]))
            assert res.result.successful, res.result.reason
        finally:
            self.node.destroy_client(client)

    def transition(self, transition_id: int) -> bool:
        client = self.node.create_client(ChangeState, f'{self.target}/change_state')
        try:
            return self.call(client, ChangeState.Request(
                transition=Transition(id=transition_id)), timeout_s=60.0).success
        finally:
            self.node.destroy_client(client)

    def state(self) -> str:
        client = self.node.create_client(GetState, f'{self.target}/get_state')
        try:
            return self.call(client, GetState.Request()).current_state.label
        finally:
            self.node.destroy_client(client)

    def calibrate(self) -> tuple[float, float]:
        """Scores of 'the red box' on the visible and the hidden frame, measured by the node's
        Segment service; sets ``exists_threshold`` half way between them so that the target is
        found exactly on visible frames. Returns (visible score, hidden score)."""
        self.set_params(exists_threshold=0.0, uncertain_threshold=0.0)
        scores = {}
        for kind in ('visible', 'hidden'):
            resp = self.call_while_streaming(
                self.segment, Segment.Request(query='the red box', timeout_s=5.0), kind)
            assert resp.success, resp.message
            scores[kind] = resp.result.score
        assert scores['visible'] - scores['hidden'] > 1e-3, scores
        self.set_params(exists_threshold=(scores['visible'] + scores['hidden']) / 2)
        return scores['visible'], scores['hidden']

    # ---- the action -----------------------------------------------------------------------------
    def send_track(self, query: str, max_duration_s: float = 0.0, feedback: list | None = None):
        """Send a TrackObject goal; returns its accepted goal handle."""
        assert self.track.wait_for_server(timeout_sec=30.0)
        future = self.track.send_goal_async(
            TrackObject.Goal(query=query, max_duration_s=max_duration_s),
            feedback_callback=None if feedback is None else (
                lambda fb: feedback.append(fb.feedback)))
        assert self.spin(30.0, future.done)
        handle = future.result()
        assert handle is not None and handle.accepted
        return handle

    def track_result(self, handle, timeout_s: float = 30.0, kind: str = 'visible'):
        """(GoalStatus, TrackObject.Result) of a goal, streaming frames until it ends."""
        future = handle.get_result_async()
        assert self.stream(timeout_s, future.done, kind), 'the track goal did not end'
        wrapped = future.result()
        return wrapped.status, wrapped.result


__all__ = ['NodeProcess', 'NodeClient', 'GoalStatus', 'FRAME_ID', 'UNSAFE_OUTPUT',
           'frame_images', 'Transition']
