"""unipixel_node in a robot's workspace, as a separate process: compressed camera input
(image_transport's wire formats), a depth scale other than millimetres, outputs in a target frame
from a static extrinsic, and /diagnostics. The tf2 lookup path needs tf2_ros (a ROS install,
not on PyPI) and is skipped where it is absent.

A tiny random checkpoint with zero thresholds makes every frame a "found" full-image mask, so the
geometry (and so the frames) of the red box in the crafted scene can be checked without a trained
model: the box's cloud lies at the depth the frames carry.
"""
from __future__ import annotations

import io
import struct
import subprocess
import sys
import time

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy')
from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus  # noqa: E402
from PIL import Image as PILImage  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, CompressedImage, Image  # noqa: E402
from std_msgs.msg import Header, String  # noqa: E402
from unipixel_msgs.msg import ReferringResult  # noqa: E402

from node_client import fresh_results, publish_when_matched  # noqa: E402
from tiny_node_setup import INTR, H, W, save_tiny_checkpoint  # noqa: E402
from unipixel_ros.perception import matrix_from_quaternion  # noqa: E402
from unipixel_ros.ros.conversions import (intrinsics_to_camera_info, msg_to_cloud,  # noqa: E402
                                          numpy_to_image)
from unipixel_ros.ros.frames import RigidTransform, transform_result  # noqa: E402

pytestmark = pytest.mark.ros
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
#: camera optical frame in base_link: 0.5 m up, looking down (optical z = -base z)
CAMERA_IN_BASE = [0.3, 0.0, 0.5, 1.0, 0.0, 0.0, 0.0]


def _start(ckpt, *params):
    return subprocess.Popen(
        [sys.executable, '-m', 'unipixel_ros.ros.unipixel_node', '--ros-args',
         '-p', 'engine:=torch', '-p', f'model_path:={ckpt}', '-p', 'threads:=1',
         '-p', 'exists_threshold:=0.0', '-p', 'uncertain_threshold:=0.0',
         '-p', 'mask_threshold:=0.0', '-p', 'status_rate_hz:=5.0',
         '-p', 'sensor_qos_reliable:=true', *[a for p in params for a in ('-p', p)]],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _stop(proc) -> str:
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out


def _scene(depth_units_per_m: float):
    """(rgb, depth as uint16 in the given units): a red box 0.65 m away on a 0.70 m table."""
    rgb = np.full((H, W, 3), 120, np.uint8)
    rgb[40:80, 60:100] = (200, 30, 30)
    depth = np.full((H, W), 0.70, np.float64)
    depth[40:80, 60:100] = 0.65
    return rgb, np.round(depth * depth_units_per_m).astype(np.uint16)


def _jpeg(rgb: np.ndarray, header: Header) -> CompressedImage:
    buf = io.BytesIO()
    PILImage.fromarray(rgb).save(buf, format='JPEG', quality=95)
    return CompressedImage(header=header, format='rgb8; jpeg compressed bgr8', data=buf.getvalue())


def _compressed_depth(depth: np.ndarray, header: Header) -> CompressedImage:
    """compressed_depth_image_transport's 16UC1 format: a 12-byte ConfigHeader (int32 format,
    float32 depthParam[2]; format 0 = INV_DEPTH, as the plugin writes it) then a 16-bit PNG."""
    buf = io.BytesIO()
    PILImage.fromarray(depth.astype(np.uint16)).save(buf, format='PNG')
    return CompressedImage(header=header, format='16UC1; compressedDepth png',
                           data=struct.pack('<iff', 0, 0.0, 0.0) + buf.getvalue())


class Client:
    def __init__(self, name: str, compressed: bool = False) -> None:
        self.node = n = rclpy.create_node(name)
        if compressed:
            self.color = n.create_publisher(CompressedImage,
                                            'camera/camera/color/image_raw/compressed', RELIABLE)
            self.depth = n.create_publisher(
                CompressedImage, 'camera/camera/aligned_depth_to_color/image_raw/compressedDepth',
                RELIABLE)
        else:
            self.color = n.create_publisher(Image, 'camera/camera/color/image_raw', RELIABLE)
            self.depth = n.create_publisher(Image, 'camera/camera/aligned_depth_to_color/image_raw',
                                            RELIABLE)
        self.info = n.create_publisher(CameraInfo, 'camera/camera/color/camera_info', RELIABLE)
        self.speech = n.create_publisher(String, 'speech/text', RELIABLE)
        self.results: list[ReferringResult] = []
        self.diagnostics: list[DiagnosticArray] = []
        n.create_subscription(ReferringResult, 'unipixel/result', fresh_results(self.results),
                              RELIABLE)
        n.create_subscription(DiagnosticArray, '/diagnostics', self.diagnostics.append, RELIABLE)
        self.t = 500.0

    def spin(self, seconds: float, until=None) -> bool:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if until is not None and until():
                return True
            rclpy.spin_once(self.node, timeout_sec=0.02)
        return bool(until and until())

    def send(self, color, depth, header) -> None:
        self.color.publish(color)
        self.depth.publish(depth)
        self.info.publish(intrinsics_to_camera_info(INTR, header))

    def header(self) -> Header:
        self.t += 0.1
        h = Header(frame_id='camera_color_optical_frame')
        h.stamp.sec, h.stamp.nanosec = int(self.t), int(round((self.t % 1) * 1e9))
        return h

    def ready(self, timeout: float = 90.0) -> bool:
        """The node is active: it listens to speech (its subscription is made on activation)."""
        return self.spin(timeout, until=lambda: self.node.count_subscribers('speech/text') > 0)

    def answered(self, make_frame, timeout: float = 60.0) -> ReferringResult | None:
        """Publish frames (``make_frame(header) -> (color, depth)``) until a found result."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            h = self.header()
            self.send(*make_frame(h), h)
            if self.spin(0.3, until=lambda: any(r.found for r in self.results)):
                return next(r for r in self.results if r.found)
        return None


@pytest.fixture(scope='module')
def ckpt(tmp_path_factory):
    return save_tiny_checkpoint(tmp_path_factory.mktemp('model'))


@pytest.fixture()
def ros_context():
    rclpy.init()
    yield
    rclpy.shutdown()


def _cloud_depths(result: ReferringResult) -> np.ndarray:
    points, _ = msg_to_cloud(result.cloud)
    return points[:, 2]


def test_compressed_input_with_a_depth_scale_and_outputs_in_a_static_target_frame(ckpt,
                                                                                 ros_context):
    """JPEG colour + compressedDepth PNG in 0.1 mm units; outputs in base_link."""
    proc = _start(ckpt, 'image_transport:=compressed', 'depth_scale:=0.0001',
                  'target_frame:=base_link',
                  'camera_to_target:=[' + ', '.join(map(str, CAMERA_IN_BASE)) + ']')
    client = Client('workspace_client_compressed', compressed=True)
    try:
        rgb, depth = _scene(10000.0)                              # 0.1 mm per unit
        assert client.ready(), 'unipixel_node did not come up'
        publish_when_matched(client.node, client.speech, String(data='find the red box'))
        result = client.answered(lambda h: (_jpeg(rgb, h), _compressed_depth(depth, h)))
        assert result is not None, f'no found result from compressed input: {client.results[-3:]}'
        assert result.header.frame_id == 'base_link'
        assert result.mask.header.frame_id == 'camera_color_optical_frame'
        z_base = _cloud_depths(result)
        # optical z 0.65-0.70 m below a camera 0.5 m up, looking down: base z in [-0.2, -0.15]
        assert np.all(z_base < -0.14) and np.all(z_base > -0.21), (z_base.min(), z_base.max())
        if result.grasp_valid:
            assert result.grasp.header.frame_id == 'base_link'
            assert result.grasp.pose.position.z < 0.0
    finally:
        client.node.destroy_node()
        out = _stop(proc)
    assert 'Traceback' not in out, out[-3000:]


def test_diagnostics_report_rate_latency_and_engine(ckpt, ros_context):
    proc = _start(ckpt, 'expected_rate_hz:=10.0')
    client = Client('workspace_client_diagnostics')
    try:
        rgb, depth = _scene(1000.0)
        assert client.ready(), 'unipixel_node did not come up'
        publish_when_matched(client.node, client.speech, String(data='find the red box'))
        assert client.answered(lambda h: (numpy_to_image(rgb, 'rgb8', h),
                                          numpy_to_image(depth, '16UC1', h))) is not None
        assert client.spin(10.0, until=lambda: len(client.diagnostics) >= 2)
        status = client.diagnostics[-1].status[0]
        values = {kv.key: kv.value for kv in status.values}
        assert status.name.startswith('unipixel_node')
        assert values.get('Engine') == 'torch' and values.get('Backend') == 'cpu'
        assert any('latency' in k.lower() for k in values), values
        assert any('rate' in k.lower() or 'frequency' in k.lower() for k in values), values
        # frames stopped: the rate check falls below the expected 10 Hz within the window
        assert client.spin(15.0, until=lambda: client.diagnostics[-1].status[0].level
                           != DiagnosticStatus.OK)
    finally:
        client.node.destroy_node()
        out = _stop(proc)
    assert 'Traceback' not in out, out[-3000:]


def _read_until(proc, text: str, timeout: float) -> str:
    """The process's output up to the first line holding ``text`` (or all of it at timeout)."""
    import threading
    lines: list[str] = []
    seen = threading.Event()

    def read() -> None:
        for line in proc.stdout:
            lines.append(line)
            if text in line:
                seen.set()
                return
    threading.Thread(target=read, daemon=True).start()
    seen.wait(timeout)
    return ''.join(lines)


def test_a_target_frame_without_extrinsic_or_tf2_is_refused_with_the_reason(ckpt):
    try:
        import tf2_ros  # noqa: F401
        pytest.skip('tf2_ros is installed here: the tf2 path is used instead')
    except ImportError:
        pass
    proc = _start(ckpt, 'target_frame:=base_link')
    try:
        out = _read_until(proc, 'needs tf2_ros', 90.0)
    finally:
        proc.kill()
        proc.wait()
    assert 'needs tf2_ros' in out and 'camera_to_target' in out, out[-3000:]


def test_static_transform_of_a_result_moves_points_and_poses_consistently():
    """transform_result on a crafted result: the cloud, centroid and grasp move together."""
    from geometry_msgs.msg import Point, Quaternion
    from unipixel_ros.ros.conversions import cloud_to_msg, pose_stamped

    tf = RigidTransform.from_pose(CAMERA_IN_BASE)
    result = ReferringResult(found=True, grasp_valid=True)
    result.header.frame_id = 'cam'
    result.centroid = Point(x=0.1, y=0.0, z=0.6)
    result.box_orientation = Quaternion(w=1.0)
    points = np.array([[0.1, 0.0, 0.6], [0.0, 0.1, 0.7]], np.float32)
    result.cloud = cloud_to_msg(points, np.zeros((2, 3), np.uint8), result.header)
    result.grasp = pose_stamped(np.array([0.1, 0.0, 0.6]), np.array([0.0, 0.0, 0.0, 1.0]),
                                result.header)
    transform_result(result, tf, 'base_link')
    expected = points @ matrix_from_quaternion(CAMERA_IN_BASE[3:]).T + CAMERA_IN_BASE[:3]
    got, _ = msg_to_cloud(result.cloud)
    np.testing.assert_allclose(got, expected, atol=1e-6)
    np.testing.assert_allclose([result.centroid.x, result.centroid.y, result.centroid.z],
                               expected[0], atol=1e-6)
    g = result.grasp.pose
    np.testing.assert_allclose([g.position.x, g.position.y, g.position.z], expected[0], atol=1e-6)
    q = [g.orientation.x, g.orientation.y, g.orientation.z, g.orientation.w]
    np.testing.assert_allclose(np.abs(q), [1.0, 0.0, 0.0, 0.0], atol=1e-9)   # approach flipped
    assert result.header.frame_id == result.grasp.header.frame_id == 'base_link'
    with pytest.raises(Exception, match='7 numbers'):
        RigidTransform.from_pose([0.0, 1.0])


def test_target_frame_from_a_published_tf(ckpt, ros_context):
    """With camera_to_target all zeros the node looks camera -> base_link up in tf2 at the image
    stamp; a static transform published on /tf_static gives the same frames as the extrinsic."""
    tf2_ros = pytest.importorskip('tf2_ros', reason='tf2_ros is not on PyPI; it comes with a ROS '
                                                    'install')
    from geometry_msgs.msg import TransformStamped

    proc = _start(ckpt, 'target_frame:=base_link')
    client = Client('workspace_client_tf2')
    try:
        broadcaster = tf2_ros.StaticTransformBroadcaster(client.node)
        tf = TransformStamped()
        tf.header.frame_id, tf.child_frame_id = 'base_link', 'camera_color_optical_frame'
        x, y, z, qx, qy, qz, qw = CAMERA_IN_BASE
        tf.transform.translation.x, tf.transform.translation.y = x, y
        tf.transform.translation.z = z
        r = tf.transform.rotation
        r.x, r.y, r.z, r.w = qx, qy, qz, qw
        broadcaster.sendTransform(tf)
        rgb, depth = _scene(1000.0)
        assert client.ready(), 'unipixel_node did not come up'
        publish_when_matched(client.node, client.speech, String(data='find the red box'))
        result = client.answered(lambda h: (numpy_to_image(rgb, 'rgb8', h),
                                            numpy_to_image(depth, '16UC1', h)))
        assert result is not None and result.header.frame_id == 'base_link'
        z_base = _cloud_depths(result)
        assert np.all(z_base < -0.14) and np.all(z_base > -0.21)
    finally:
        client.node.destroy_node()
        _stop(proc)
