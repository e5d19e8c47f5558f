"""unipixel_node's lifecycle, remaps and shutdown, driven from outside like a lifecycle manager.

The camera subscriptions live on a hidden intake node with its own executor
(``unipixel_ros.ros.camera_intake``). These tests check what that must not break: a launch
file's ``__node``/``__ns`` remaps and camera-topic remaps, deactivate (no more results) and
re-activate (results again), and a clean exit on SIGINT, for each ``camera_executor``.
"""
from __future__ import annotations

import signal
import subprocess
import sys
import time

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy')
from lifecycle_msgs.msg import Transition  # noqa: E402
from lifecycle_msgs.srv import ChangeState, GetState  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from std_msgs.msg import Header, String  # noqa: E402
from unipixel_msgs.msg import ReferringResult  # noqa: E402

from node_client import fresh_results, publish_when_matched  # noqa: E402
from tiny_node_setup import INTR, H, W, save_tiny_checkpoint  # noqa: E402
from unipixel_ros.ros.conversions import intrinsics_to_camera_info, numpy_to_image  # noqa: E402

pytestmark = pytest.mark.ros
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
NS, NAME = '/robot', 'perception'


@pytest.fixture(scope='module')
def tiny_checkpoint(tmp_path_factory):
    return save_tiny_checkpoint(tmp_path_factory.mktemp('model'))


def _start(checkpoint, camera_executor: str) -> subprocess.Popen:
    """The node as a launch file would start it: renamed, namespaced, camera topics remapped."""
    return subprocess.Popen(
        [sys.executable, '-m', 'unipixel_ros.ros.unipixel_node', '--ros-args',
         '-r', f'__node:={NAME}', '-r', f'__ns:={NS}',
         '-r', 'camera/camera/color/image_raw:=/cam/color',
         '-r', 'camera/camera/aligned_depth_to_color/image_raw:=/cam/depth',
         '-r', 'camera/camera/color/camera_info:=/cam/info',
         '-p', 'autostart:=false', '-p', 'engine:=torch', '-p', f'model_path:={checkpoint}',
         '-p', 'threads:=1', '-p', 'exists_threshold:=0.0', '-p', 'uncertain_threshold:=0.0',
         '-p', 'sensor_qos_reliable:=true', '-p', f'camera_executor:={camera_executor}'],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


class Manager:
    """A lifecycle manager and a camera, in this process."""

    def __init__(self) -> None:
        n = self.node = rclpy.create_node('lifecycle_test_client')
        self.change = n.create_client(ChangeState, f'{NS}/{NAME}/change_state')
        self.get = n.create_client(GetState, f'{NS}/{NAME}/get_state')
        self.color = n.create_publisher(Image, '/cam/color', RELIABLE)
        self.depth = n.create_publisher(Image, '/cam/depth', RELIABLE)
        self.info = n.create_publisher(CameraInfo, '/cam/info', RELIABLE)
        self.speech = n.create_publisher(String, f'{NS}/speech/text', RELIABLE)
        self.results: list[ReferringResult] = []
        n.create_subscription(ReferringResult, f'{NS}/unipixel/result',
                              fresh_results(self.results), RELIABLE)
        self.t = 1000.0

    def call(self, client, request, timeout_s: float = 60.0, attempts: int = 1):
        """Call a service; an idempotent request may be sent ``attempts`` times: a response can
        be lost when the request arrives before the server has matched the client's response
        reader (a known DDS discovery race right after ``wait_for_service``)."""
        assert client.wait_for_service(timeout_sec=60.0), f'{client.srv_name} never appeared'
        for _ in range(attempts):
            future = client.call_async(request)
            rclpy.spin_until_future_complete(self.node, future, timeout_sec=timeout_s / attempts)
            if future.done():
                return future.result()
            client.remove_pending_request(future)
        raise AssertionError(f'{client.srv_name} did not answer in {timeout_s} s')

    def transition(self, transition_id: int) -> bool:
        return self.call(self.change, ChangeState.Request(
            transition=Transition(id=transition_id))).success

    def state(self) -> str:
        return self.call(self.get, GetState.Request(), attempts=3).current_state.label

    def frame(self) -> None:
        self.t += 0.1
        h = Header(frame_id='camera_color_optical_frame')
        h.stamp.sec, h.stamp.nanosec = int(self.t), int((self.t % 1) * 1e9)
        rgb = np.full((H, W, 3), 120, np.uint8)
        rgb[40:80, 60:100] = (200, 30, 30)
        depth = np.full((H, W), 700, np.uint16)
        self.color.publish(numpy_to_image(rgb, 'rgb8', h))
        self.depth.publish(numpy_to_image(depth, '16UC1', h))
        self.info.publish(intrinsics_to_camera_info(INTR, h))

    def stream(self, seconds: float) -> int:
        """Publish frames at 10 Hz for ``seconds``; returns how many results arrived meanwhile."""
        before = len(self.results)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.frame()
            t_next = time.monotonic() + 0.1
            while time.monotonic() < t_next:
                rclpy.spin_once(self.node, timeout_sec=0.02)
        return len(self.results) - before


@pytest.mark.parametrize('camera_executor', ['events', 'single_threaded', 'node'])
def test_lifecycle_remaps_and_sigint(tiny_checkpoint, camera_executor):
    proc = _start(tiny_checkpoint, camera_executor)
    rclpy.init()
    m = Manager()
    try:
        assert m.state() == 'unconfigured'
        assert m.transition(Transition.TRANSITION_CONFIGURE)
        assert m.transition(Transition.TRANSITION_ACTIVATE)
        assert m.state() == 'active'
        # the launch file's __node remap names one node, not the hidden intake node too
        names = m.node.get_node_names_and_namespaces()
        assert names.count((NAME, NS)) == 1, names
        publish_when_matched(m.node, m.speech, String(data='find the red box'))
        assert m.stream(3.0) > 0, 'no result through the remapped camera topics'

        assert m.transition(Transition.TRANSITION_DEACTIVATE)
        assert m.state() == 'inactive'
        m.stream(0.5)      # results already in flight
        assert m.stream(1.5) == 0, 'an inactive node still published results'

        assert m.transition(Transition.TRANSITION_ACTIVATE)
        publish_when_matched(m.node, m.speech, String(data='find the red box'))
        assert m.stream(3.0) > 0, 'no result after re-activation'
        m.stream(0.2)
    finally:
        m.node.destroy_node()
        rclpy.try_shutdown()
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            pytest.fail(f'unipixel_node did not exit within 15 s of SIGINT:\n{out[-3000:]}')
    assert proc.returncode == 0, f'exit status {proc.returncode}:\n{out[-3000:]}'
    assert 'Traceback' not in out, out[-3000:]
