"""unipixel_node under bad input, as a separate process fed with crafted messages.

Each bad input must be answered by a readable status (unipixel/status) or reply
(unipixel/reply) while the node keeps serving: after every bad input a valid frame still
produces a unipixel/result. The model is a small randomly initialised checkpoint: these tests
are about robustness, not accuracy; thresholds are 0 so every frame yields a full-image "mask"
and exercises the geometry path too.
"""
from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy')
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from std_msgs.msg import Header, String  # noqa: E402
from unipixel_msgs.msg import PipelineStatus, ReferringResult  # noqa: E402

from node_client import fresh_results, publish_when_matched  # noqa: E402
from tiny_node_setup import INTR, H, W, save_tiny_checkpoint  # noqa: E402
from unipixel_ros.ros.conversions import intrinsics_to_camera_info, numpy_to_image  # noqa: E402

pytestmark = pytest.mark.ros
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


@pytest.fixture(scope='module')
def node_process(tmp_path_factory):
    ckpt = save_tiny_checkpoint(tmp_path_factory.mktemp('model'))
    proc = subprocess.Popen(
        [sys.executable, '-m', 'unipixel_ros.ros.unipixel_node', '--ros-args',
         '-p', 'engine:=torch', '-p', f'model_path:={ckpt}', '-p', 'threads:=1',
         '-p', 'exists_threshold:=0.0', '-p', 'uncertain_threshold:=0.0',
         '-p', 'mask_threshold:=0.0', '-p', 'camera_info_timeout_s:=1.0',
         '-p', 'status_rate_hz:=5.0', '-p', 'sensor_qos_reliable:=true'],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    yield proc
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    assert proc.returncode in (0, -15), f'node exited with {proc.returncode}:\n{out[-3000:]}'


class Client:
    """Test-side publishers and subscribers."""

    def __init__(self) -> None:
        self.node = rclpy.create_node('bad_input_client')
        n = self.node
        self.color = n.create_publisher(Image, 'camera/camera/color/image_raw', RELIABLE)
        self.depth = n.create_publisher(Image, 'camera/camera/aligned_depth_to_color/image_raw', RELIABLE)
        self.info = n.create_publisher(CameraInfo, 'camera/camera/color/camera_info', RELIABLE)
        self.speech = n.create_publisher(String, 'speech/text', RELIABLE)
        self.results: list[ReferringResult] = []
        self.replies: list[str] = []
        self.statuses: list[PipelineStatus] = []
        n.create_subscription(ReferringResult, 'unipixel/result', fresh_results(self.results),
                              RELIABLE)
        n.create_subscription(String, 'unipixel/reply', lambda m: self.replies.append(m.data), RELIABLE)
        n.create_subscription(PipelineStatus, 'unipixel/status', self.statuses.append,
                              QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE))
        self.t = 1000.0

    def spin(self, seconds: float, until=None) -> bool:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if until is not None and until():
                return True
            rclpy.spin_once(self.node, timeout_sec=0.02)
        return bool(until and until())

    def header(self, dt: float = 0.1) -> Header:
        self.t += dt
        h = Header(frame_id='camera_color_optical_frame')
        h.stamp.sec, h.stamp.nanosec = int(self.t), int((self.t % 1) * 1e9)
        return h

    def frame(self, color=None, depth=None, info=True, header=None) -> None:
        header = header or self.header()
        rgb = np.full((H, W, 3), 120, np.uint8)
        rgb[40:80, 60:100] = (200, 30, 30)
        color = color if color is not None else numpy_to_image(rgb, 'rgb8', header)
        if depth is None:
            d = np.full((H, W), 700, np.uint16)
            d[40:80, 60:100] = 650
            depth = numpy_to_image(d, '16UC1', header)
        color.header = depth.header = header
        self.color.publish(color)
        self.depth.publish(depth)
        if info:
            self.info.publish(intrinsics_to_camera_info(INTR, header))

    def status_contains(self, text: str) -> bool:
        return any(text in s.message for s in self.statuses)

    def valid_frame_answered(self, timeout: float = 10.0) -> bool:
        """Publish valid frames until a new result with a later stamp arrives."""
        before = len(self.results)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            self.frame()
            if self.spin(0.3, until=lambda: len(self.results) > before):
                return True
        return False


@pytest.fixture(scope='module')
def client(node_process):
    rclpy.init()
    c = Client()
    # the node is up once its latched status arrives
    assert c.spin(60.0, until=lambda: bool(c.statuses)), 'unipixel_node did not come up'
    yield c
    c.node.destroy_node()
    rclpy.shutdown()


def test_command_before_any_image(client):
    publish_when_matched(client.node, client.speech, String(data='find the red box'))
    assert client.spin(10.0, until=lambda: any('no camera image yet' in r for r in client.replies))
    assert client.valid_frame_answered(), 'the first valid frame after the command got no result'
    assert client.results[-1].query == 'the red box'


@pytest.mark.parametrize('make,expected', [
    (lambda c, h: (Image(header=h, height=H, width=W, encoding='yuv422', step=2 * W,
                         data=bytes(2 * W * H)), None), "color image encoding 'yuv422'"),
    (lambda c, h: (Image(header=h, height=H, width=W, encoding='rgb8', step=3 * W,
                         data=bytes(3 * W * H - 7)), None), 'expected height*step'),
    (lambda c, h: (Image(header=h, height=H, width=W, encoding='rgb8', step=W, data=bytes(W * H)),
                   None), 'smaller than one row'),
    (lambda c, h: (Image(header=h, height=0, width=0, encoding='rgb8', step=0), None), 'zero-size'),
    (lambda c, h: (None, numpy_to_image(np.zeros((H, W, 3), np.uint8), 'rgb8', h)),
     'is not 16UC1 or 32FC1'),
    (lambda c, h: (None, numpy_to_image(np.full((H // 2, W // 2), 700, np.uint16), '16UC1', h)),
     'depth must be aligned to color'),
])
def test_bad_frames_are_reported_and_the_node_keeps_serving(client, make, expected):
    header = client.header()
    color, depth = make(client, header)
    client.frame(color=color, depth=depth, header=header)
    assert client.spin(5.0, until=lambda: client.status_contains(expected)), \
        f'no status containing {expected!r}; last: {[s.message for s in client.statuses[-3:]]}'
    assert client.valid_frame_answered()


def test_all_nan_depth_gives_a_geometry_status(client):
    header = client.header()
    client.frame(depth=numpy_to_image(np.full((H, W), np.nan, np.float32), '32FC1', header),
                 header=header)
    assert client.spin(5.0, until=lambda: any(r.header.stamp == header.stamp for r in client.results))
    res = [r for r in client.results if r.header.stamp == header.stamp][0]
    assert 'invalid' in res.status and not res.grasp_valid
    assert client.valid_frame_answered()


def test_out_of_order_stamps_are_dropped(client):
    client.frame()
    client.spin(0.5)
    client.frame(header=client.header(dt=-5.0))
    assert client.spin(5.0, until=lambda: client.status_contains('out-of-order'))
    client.t += 10.0
    assert client.valid_frame_answered()


def test_missing_camera_info_is_reported(client):
    end = time.monotonic() + 3.0
    while time.monotonic() < end:
        client.frame(info=False)
        client.spin(0.1)
    assert client.spin(3.0, until=lambda: client.status_contains('no info received'))
    assert client.valid_frame_answered()
    # once camera_info is back, the status stops naming it as silent
    end = time.monotonic() + 5.0
    while time.monotonic() < end and not client.status_contains('all camera topics arrive again'):
        client.frame()
        client.spin(0.1)
    assert client.status_contains('all camera topics arrive again'), client.statuses[-1].message


@pytest.mark.parametrize('text,expected', [
    ('', 'empty'),
    ('x' * 1_000_000, 'limit is'),
    # (a NUL cannot cross DDS at all: strings are NUL-terminated on the wire)
    ('pick up the \x1b[31mred\x07 cup', 'control character'),
    ('pick it up', 'does not say which object'),
])
def test_bad_commands_get_a_readable_reply(client, text, expected):
    before = len(client.replies)
    publish_when_matched(client.node, client.speech, String(data=text))
    assert client.spin(10.0, until=lambda: any(expected in r for r in client.replies[before:]))
    # a valid command is served
    publish_when_matched(client.node, client.speech, String(data='find the red box'))
    assert client.valid_frame_answered()


def _set_parameter(client, name, value):
    """SetParameters on unipixel_node -> rcl_interfaces/SetParametersResult."""
    from rcl_interfaces.srv import SetParameters
    from rclpy.parameter import Parameter

    service = client.node.create_client(SetParameters, '/unipixel_node/set_parameters')
    try:
        assert service.wait_for_service(timeout_sec=10.0), 'no parameter services on unipixel_node'
        future = service.call_async(SetParameters.Request(
            parameters=[Parameter(name, value=value).to_parameter_msg()]))
        assert client.spin(10.0, until=future.done), 'set_parameters timed out'
        return future.result().results[0]
    finally:
        client.node.destroy_client(service)


@pytest.mark.parametrize('name, value, accepted', [
    ('verify_attributes', 'shape', False),
    ('verify_min_prob', 1.5, False),
    ('exists_threshold', -0.1, False),
    ('verify_attributes', 'category,color', True),
    ('verify_attributes', 'none', True),
])
def test_decision_parameters_are_validated(client, name, value, accepted):
    result = _set_parameter(client, name, value)
    assert result.successful == accepted, result.reason
    if not accepted:
        assert name in result.reason
    publish_when_matched(client.node, client.speech, String(data='show me the red box'))
    client.spin(0.5)
    assert client.valid_frame_answered(), 'the node stopped serving after a parameter change'


def test_lifecycle_state_service_answers(client):
    """The lifecycle services are served (the node once hid them and its parameter services
    from the executor by reusing rclpy.Node's ``_services`` attribute)."""
    from lifecycle_msgs.srv import GetState

    service = client.node.create_client(GetState, '/unipixel_node/get_state')
    try:
        assert service.wait_for_service(timeout_sec=10.0)
        future = service.call_async(GetState.Request())
        assert client.spin(10.0, until=future.done), 'get_state timed out'
        assert future.result().current_state.label == 'active'
    finally:
        client.node.destroy_client(service)


def test_a_new_exists_threshold_applies_to_the_next_frame(client):
    """The node runs a random model with exists_threshold 0: everything is found. At 1.0 nothing
    can be (the exists probability is below 1); back at 0.0 it is found again."""
    publish_when_matched(client.node, client.speech, String(data='show me the red box'))
    client.spin(0.5)
    try:
        assert _set_parameter(client, 'exists_threshold', 1.0).successful
        before = len(client.results)
        assert client.valid_frame_answered()
        assert not client.results[before:][-1].found
    finally:
        assert _set_parameter(client, 'exists_threshold', 0.0).successful
    before = len(client.results)
    assert client.valid_frame_answered()
    assert client.results[before:][-1].found
