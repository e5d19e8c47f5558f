"""sim_camera as a separate process, received with real rclpy: rate, stamps, encodings, ground
truth, and parameter validation."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy')
from rcl_interfaces.srv import SetParameters  # noqa: E402
from rclpy.parameter import Parameter  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from node_helpers import node_process, spin_until  # noqa: E402
from unipixel_ros.ros.conversions import image_to_numpy  # noqa: E402
from unipixel_sim.nodes.sim_camera import (COLOR_TOPIC, DEPTH_TOPIC, INFO_TOPIC,  # noqa: E402
                                           INSTANCES_TOPIC, SCENE_QOS, SCENE_TOPIC)

pytestmark = pytest.mark.ros
RATE_HZ = 15.0
WINDOW_S = 5.0
FRAME_ID = 'camera_color_optical_frame'
SENSOR_QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)


class Receiver:
    """Latest message per topic and the stamps seen per topic while ``recording``."""

    def __init__(self, node):
        self.latest = {}
        self.stamps = {t: set() for t in (COLOR_TOPIC, DEPTH_TOPIC, INFO_TOPIC, INSTANCES_TOPIC)}
        self.recording = False
        self.scene = None
        for topic, typ in ((COLOR_TOPIC, Image), (DEPTH_TOPIC, Image), (INFO_TOPIC, CameraInfo),
                           (INSTANCES_TOPIC, Image)):
            node.create_subscription(typ, topic, self._callback(topic), SENSOR_QOS)
        node.create_subscription(String, SCENE_TOPIC, self._on_scene, SCENE_QOS)

    def _callback(self, topic):
        def on_msg(msg):
            self.latest[topic] = msg
            if self.recording:
                self.stamps[topic].add((msg.header.stamp.sec, msg.header.stamp.nanosec))
        return on_msg

    def _on_scene(self, msg):
        self.scene = json.loads(msg.data)


@pytest.fixture(scope='module')
def camera(tmp_path_factory):
    with node_process('unipixel_sim.nodes.sim_camera', ['seed:=3', f'rate_hz:={RATE_HZ}'],
                      tmp_path_factory.mktemp('logs')) as proc:
        rclpy.init()
        node = rclpy.create_node('sim_camera_test')
        receiver = Receiver(node)
        try:
            yield proc, node, receiver
        finally:
            node.destroy_node()
            rclpy.shutdown()


def test_stream_rate_stamps_and_content(camera):
    proc, node, rx = camera
    t0 = time.monotonic()
    assert spin_until(rclpy, node, lambda: COLOR_TOPIC in rx.latest and rx.scene is not None,
                      60.0), 'no color frame or sim/scene within 60 s of starting sim_camera'
    startup_s = time.monotonic() - t0
    rx.recording = True
    spin_until(rclpy, node, lambda: False, WINDOW_S)
    rx.recording = False
    expected = WINDOW_S * RATE_HZ
    counts = {t: len(s) for t, s in rx.stamps.items()}
    common = set.intersection(*rx.stamps.values())
    print(f'\nsim_camera: first frame {startup_s:.1f} s after start; in {WINDOW_S:.0f} s at '
          f'{RATE_HZ:.0f} Hz (expected {expected:.0f}): {counts}, stamps on all four topics: '
          f'{len(common)}')
    for topic, n in counts.items():
        assert n >= 0.9 * expected, f'{topic}: {n} frames, expected >= {0.9 * expected:.0f}'
    assert len(common) >= 0.9 * expected, f'only {len(common)} stamps common to all topics'

    color, depth, info, inst = (rx.latest[t] for t in (COLOR_TOPIC, DEPTH_TOPIC, INFO_TOPIC,
                                                       INSTANCES_TOPIC))
    for msg in (color, depth, info, inst):
        assert msg.header.frame_id == FRAME_ID
        assert (msg.width, msg.height) == (640, 480)
    assert (color.encoding, depth.encoding, inst.encoding) == ('rgb8', '16UC1', 'mono16')
    k = np.array(info.k).reshape(3, 3)
    assert k[0, 0] > 0 and k[1, 1] > 0 and k[0, 2] > 0 and k[1, 2] > 0 and k[2, 2] == 1

    scene = rx.scene
    assert scene['seed'] == 3 and scene['frame_id'] == FRAME_ID
    np.testing.assert_allclose(np.array(scene['K']), k, rtol=1e-9)
    assert len(scene['objects']) == len(scene['scene']['objects'])
    t_wc = np.array(scene['T_world_camera'])
    np.testing.assert_allclose(t_wc[:3, :3] @ t_wc[:3, :3].T, np.eye(3), atol=1e-9)

    depth_m = image_to_numpy(depth).astype(np.float32) / 1000.0
    instances = image_to_numpy(inst)
    seen = 0
    for obj in scene['objects']:
        x, y, z = obj['center_camera']
        u, v = int(round(k[0, 0] * x / z + k[0, 2])), int(round(k[1, 1] * y / z + k[1, 2]))
        if not (0 <= u < 640 and 0 <= v < 480) or obj['visible_pixels'] == 0:
            continue
        seen += 1
        mask = instances == obj['index'] + 1
        assert mask.sum() == obj['visible_pixels']
        d = float(np.median(depth_m[mask]))
        assert 0.3 <= d <= 1.5, f"{obj['body']}: median depth {d:.3f} m"
        assert abs(d - z) < 0.1, f"{obj['body']}: depth {d:.3f} m vs centre z {z:.3f} m"
    assert seen >= 2
    assert proc.poll() is None


def _set(node, client, name, value):
    request = SetParameters.Request(parameters=[Parameter(name, value=value).to_parameter_msg()])
    future = client.call_async(request)
    assert spin_until(rclpy, node, future.done, 10.0), f'set_parameters {name} timed out'
    return future.result().results[0]


def test_bad_parameters_rejected_and_node_keeps_running(camera):
    proc, node, rx = camera
    client = node.create_client(SetParameters, '/sim_camera/set_parameters')
    assert client.wait_for_service(timeout_sec=20.0)

    result = _set(node, client, 'rate_hz', -1.0)
    assert not result.successful and 'rate_hz must be in (0, 60]' in result.reason
    result = _set(node, client, 'depth_encoding', 'bgr8')
    assert not result.successful and "depth_encoding must be one of 16UC1, 32FC1" in result.reason

    reference = image_to_numpy(rx.latest[DEPTH_TOPIC]).astype(np.float32) / 1000.0
    assert _set(node, client, 'depth_encoding', '32FC1').successful
    assert spin_until(rclpy, node, lambda: rx.latest[DEPTH_TOPIC].encoding == '32FC1', 10.0)
    metres = image_to_numpy(rx.latest[DEPTH_TOPIC])
    assert metres.dtype == np.float32
    np.testing.assert_allclose(metres, reference, atol=0.0006)

    # Sensor noise and holes: new ones every frame, also while the cached frame is re-published.
    assert _set(node, client, 'depth_noise_m', 0.005).successful
    assert _set(node, client, 'depth_hole_fraction', 0.1).successful
    noisy = []

    def collect_noisy_frames():
        latest = rx.latest[DEPTH_TOPIC]
        if not noisy or latest is not noisy[-1]:
            noisy.append(latest)
        return len(noisy) >= 4
    assert spin_until(rclpy, node, collect_noisy_frames, 10.0)
    a, b = (image_to_numpy(m) for m in noisy[-2:])
    both = (a > 0) & (b > 0) & (metres > 0)
    diff = (a - b)[both]
    assert 0.004 < float(np.std(diff)) / np.sqrt(2) < 0.006  # the difference of two N(0, 5 mm)
    holes = float(np.mean((a == 0) & (metres > 0)))
    assert 0.08 < holes < 0.12, holes
    assert proc.poll() is None, 'sim_camera exited after a rejected parameter'
