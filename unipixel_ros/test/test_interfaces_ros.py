"""Every unipixel_msgs interface round-trips between two processes with real rclpy.

The peer process (interface_peer.py) serves a topic pair, the Segment and Describe services and
the TrackObject action over an analytic scene; this process is the client and checks the decoded
geometry against the scene's ground truth.
"""
from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy')
from action_msgs.msg import GoalStatus  # noqa: E402
from geometry_msgs.msg import PointStamped  # noqa: E402
from rclpy.action import ActionClient  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from unipixel_msgs.action import TrackObject  # noqa: E402
from unipixel_msgs.msg import ReferringResult  # noqa: E402
from unipixel_msgs.srv import Describe, Segment  # noqa: E402

from interface_peer import FRAME_ID, peer_scene  # noqa: E402
from unipixel_ros.ros.conversions import image_to_numpy, msg_to_cloud  # noqa: E402

pytestmark = pytest.mark.ros
PEER = Path(__file__).with_name('interface_peer.py')


@pytest.fixture(scope='module')
def scene():
    return peer_scene()


@pytest.fixture(scope='module')
def peer():
    proc = subprocess.Popen([sys.executable, str(PEER)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if line.strip() != 'READY':
        proc.kill()
        pytest.fail(f'interface peer did not start: {line!r} {proc.stderr.read()[-2000:]}')
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope='module')
def node(peer):
    rclpy.init()
    n = rclpy.create_node('interface_client')
    yield n
    n.destroy_node()
    rclpy.shutdown()


def spin_until(node, predicate, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if predicate():
            return True
        rclpy.spin_once(node, timeout_sec=0.05)
    return predicate()


def call(node, client, request, timeout_s=20.0):
    assert client.wait_for_service(timeout_sec=20.0), f'{client.srv_name} not available'
    future = client.call_async(request)
    rclpy.spin_until_future_complete(node, future, timeout_sec=timeout_s)
    assert future.done(), f'{client.srv_name} did not answer within {timeout_s} s'
    return future.result()


def check_found_result(res: ReferringResult, scene, index: int) -> None:
    """Decode every field that crossed the process boundary and compare with ground truth."""
    truth = scene.truths[index]
    assert res.found and res.status == 'ok'
    assert res.header.frame_id == FRAME_ID
    for sub in (res.mask.header, res.cloud.header, res.grasp.header):
        assert sub.frame_id == FRAME_ID and sub.stamp == res.header.stamp
    mask = image_to_numpy(res.mask)
    assert res.mask.encoding == 'mono8' and mask.shape == scene.masks[index].shape
    np.testing.assert_array_equal(mask > 0, scene.masks[index])
    ys, xs = np.nonzero(mask)
    assert (res.bbox.x_offset, res.bbox.y_offset) == (xs.min(), ys.min())
    assert (res.bbox.width, res.bbox.height) == (xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
    points, colors = msg_to_cloud(res.cloud)
    assert len(points) > 100 and colors is not None and colors.shape == points.shape
    assert truth.contains(points, margin=0.01).mean() > 0.95
    centroid = np.array([res.centroid.x, res.centroid.y, res.centroid.z])
    # accuracy itself is tested in test_perception_*; here: the geometry survived the trip
    assert np.linalg.norm(centroid - truth.center) < 0.01
    dims = np.array([res.box_dimensions.x, res.box_dimensions.y, res.box_dimensions.z])
    assert np.allclose(np.sort(dims), np.sort(truth.dimensions), atol=0.01)
    assert res.grasp_valid and 0 < res.gripper_width <= 0.08
    p = res.grasp.pose.position
    assert truth.contains(np.array([[p.x, p.y, p.z]]))[0]
    q = res.grasp.pose.orientation
    assert abs(np.linalg.norm([q.x, q.y, q.z, q.w]) - 1.0) < 1e-6
    assert 'cm ahead' in res.description


def test_result_message_over_topic(node, scene):
    received: list[ReferringResult] = []
    reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
    sub = node.create_subscription(ReferringResult, 'result', received.append, reliable)
    pub = node.create_publisher(String, 'query', reliable)
    try:
        deadline = time.monotonic() + 30.0
        while not received and time.monotonic() < deadline:
            pub.publish(String(data='pick up the red box'))  # repeat until discovery completes
            spin_until(node, lambda: bool(received), 0.5)
        assert received, 'no ReferringResult came back over the topic'
        assert received[0].query == 'pick up the red box'
        check_found_result(received[0], scene, 0)
    finally:
        node.destroy_subscription(sub)
        node.destroy_publisher(pub)


def test_segment_service(node, scene):
    client = node.create_client(Segment, 'segment')
    try:
        resp = call(node, client, Segment.Request(query='the blue cylinder'))
        assert resp.success
        check_found_result(resp.result, scene, 1)
        absent = call(node, client, Segment.Request(query='the banana'))
        assert absent.success and not absent.result.found and not absent.result.grasp_valid
        assert 'banana' in absent.result.status and absent.result.cloud.width == 0
    finally:
        node.destroy_client(client)


def test_track_action_feedback_and_cancel(node, scene):
    client = ActionClient(node, TrackObject, 'track')
    feedback: list = []
    try:
        assert client.wait_for_server(timeout_sec=20.0)
        goal_future = client.send_goal_async(TrackObject.Goal(query='the box'),
                                             feedback_callback=lambda fb: feedback.append(fb.feedback))
        rclpy.spin_until_future_complete(node, goal_future, timeout_sec=20.0)
        handle = goal_future.result()
        assert handle is not None and handle.accepted
        assert spin_until(node, lambda: len(feedback) >= 3, 20.0), f'{len(feedback)} feedback msgs'
        stamps = [(f.result.header.stamp.sec, f.result.header.stamp.nanosec) for f in feedback[:3]]
        assert stamps == sorted(stamps) and len(set(stamps)) == 3  # one result per frame
        check_found_result(feedback[0].result, scene, 0)

        cancel_future = handle.cancel_goal_async()
        rclpy.spin_until_future_complete(node, cancel_future, timeout_sec=20.0)
        assert len(cancel_future.result().goals_canceling) == 1
        result_future = handle.get_result_async()
        rclpy.spin_until_future_complete(node, result_future, timeout_sec=20.0)
        wrapped = result_future.result()
        assert wrapped.status == GoalStatus.STATUS_CANCELED
        assert wrapped.result.frames_tracked >= 3 and wrapped.result.message == 'canceled'
        # cancel really stops the stream: no feedback arrives once the goal has ended
        n_after = len(feedback)
        spin_until(node, lambda: False, 0.5)
        assert len(feedback) == n_after
    finally:
        client.destroy()


def test_describe_service_pixel_and_point(node, scene):
    client = node.create_client(Describe, 'describe')
    try:
        ys, xs = np.nonzero(scene.true_masks[0])
        i = len(xs) // 2
        by_pixel = call(node, client, Describe.Request(u=int(xs[i]), v=int(ys[i])))
        assert by_pixel.success and by_pixel.category == 'box' and by_pixel.color == 'red'
        assert by_pixel.description == 'a small red box'
        check_found_result(by_pixel.result, scene, 0)

        c = scene.truths[1].center  # the cylinder's centre projects onto the cylinder
        point = PointStamped()
        point.header.frame_id = FRAME_ID
        point.point.x, point.point.y, point.point.z = (float(v) for v in c)
        by_point = call(node, client, Describe.Request(use_point=True, point=point))
        assert by_point.success and by_point.category == 'cylinder'

        table = call(node, client, Describe.Request(u=5, v=475))
        assert not table.success and 'no object' in table.message
        outside = call(node, client, Describe.Request(u=5000, v=1))
        assert not outside.success and 'outside the image' in outside.message
    finally:
        node.destroy_client(client)
