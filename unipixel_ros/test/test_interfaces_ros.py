"""Every unipixel_msgs interface of unipixel_node, round-tripped with the real node in its own
process: the result topic, the Segment and Describe services and the TrackObject action.

The node runs the tiny random checkpoint (``tiny_node_setup``) with ``mask_threshold`` 0, so the
"object" is the whole 160x120 frame: a red box 0.65 m away in front of a grey wall at 0.70 m.
The checks are about what crosses the process boundary (headers, mask, box, cloud, grasp, the
messages a client reads), decoded and compared with the frame that was sent.

The first test runs before any camera frame was sent (pytest keeps file order).
"""
from __future__ import annotations

import time

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy')
from geometry_msgs.msg import PointStamped  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from unipixel_msgs.msg import ReferringResult  # noqa: E402
from unipixel_msgs.srv import Describe, Segment  # noqa: E402

from node_client import (FRAME_ID, UNSAFE_OUTPUT, GoalStatus, NodeClient,  # noqa: E402
                         NodeProcess, publish_when_matched)
from tiny_node_setup import INTR, H, W, save_tiny_checkpoint  # noqa: E402
from unipixel_ros.ros.conversions import image_to_numpy, msg_to_cloud  # noqa: E402

pytestmark = pytest.mark.ros


@pytest.fixture(scope='module')
def client(tmp_path_factory):
    node = NodeProcess(save_tiny_checkpoint(tmp_path_factory.mktemp('model')))
    rclpy.init()
    c = NodeClient()
    try:
        c.wait_up()
        yield c
    finally:
        c.destroy()
        rclpy.try_shutdown()
        code, out = node.stop()
    assert code == 0, out[-3000:]
    assert not [w for w in UNSAFE_OUTPUT if w in out], out[-3000:]


def check_result(res: ReferringResult, query: str) -> None:
    """Decode every field that crossed the process boundary and compare with the frame sent."""
    assert res.query == query
    assert res.found and res.status == 'ok', res.status
    assert res.header.frame_id == FRAME_ID
    for sub in (res.mask.header, res.cloud.header):
        assert sub.frame_id == FRAME_ID and sub.stamp == res.header.stamp
    mask = image_to_numpy(res.mask) > 0
    assert res.mask.encoding == 'mono8' and mask.shape == (H, W) and mask.any()
    ys, xs = np.nonzero(mask)
    assert (res.bbox.x_offset, res.bbox.y_offset) == (xs.min(), ys.min())
    assert (res.bbox.width, res.bbox.height) == (xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
    points, colors = msg_to_cloud(res.cloud)
    assert len(points) > 20 and colors is not None and colors.shape == points.shape
    # every point lies on the box (0.65 m) or the wall (0.70 m) and projects into the mask's box
    assert np.all((points[:, 2] > 0.64) & (points[:, 2] < 0.71)), points[:, 2].min()
    u = INTR.fx * points[:, 0] / points[:, 2] + INTR.cx
    v = INTR.fy * points[:, 1] / points[:, 2] + INTR.cy
    assert np.all((u > xs.min() - 3) & (u < xs.max() + 3) & (v > ys.min() - 3) & (v < ys.max() + 3))
    centroid = np.array([res.centroid.x, res.centroid.y, res.centroid.z])
    assert np.all(centroid >= points.min(0) - 0.01) and np.all(centroid <= points.max(0) + 0.01)
    dims = np.array([res.box_dimensions.x, res.box_dimensions.y, res.box_dimensions.z])
    assert np.all(dims > 0)
    if res.grasp_valid:
        assert res.grasp.header.frame_id == FRAME_ID and 0 < res.gripper_width <= 0.08
        q = res.grasp.pose.orientation
        assert abs(np.linalg.norm([q.x, q.y, q.z, q.w]) - 1.0) < 1e-6
    assert 'cm ahead' in res.description


def test_before_the_first_frame(client):
    """No camera frame yet: each question gets a reason, not a stale or empty answer."""
    c = client
    assert c.frames_sent == 0, 'this test must run before any frame is sent (file order)'
    pixel = c.call(c.describe, Describe.Request(u=10, v=10))
    assert not pixel.success and pixel.message == 'I have no camera image to look at yet'
    point = PointStamped()
    point.header.frame_id = FRAME_ID
    point.point.z = 0.5
    by_point = c.call(c.describe, Describe.Request(use_point=True, point=point))
    assert not by_point.success and by_point.message == pixel.message
    t0 = time.monotonic()
    seg = c.call(c.segment, Segment.Request(query='the red box', timeout_s=1.0))
    assert time.monotonic() - t0 >= 1.0
    assert not seg.success and seg.message == 'no camera frame was processed within 1.0 s'
    assert not seg.result.found
    c.clicks.publish(point)
    assert c.spin(10.0, lambda: 'I have no camera image to look at yet.' in c.replies_since(t0))
    publish_when_matched(c.node, c.speech, String(data='what is this'))
    assert c.spin(10.0, lambda: any(r.startswith('Point at something') for r in
                                    c.replies_since(t0)))
    publish_when_matched(c.node, c.speech, String(data='find the red box'))
    assert c.spin(10.0, lambda: any('no camera image yet' in r for r in c.replies_since(t0)))


def test_result_message_over_topic(client):
    c = client
    publish_when_matched(c.node, c.speech, String(data='pick up the red box'))
    before = len(c.results)
    assert c.stream(30.0, lambda: len(c.results) > before + 2)
    check_result(c.results[-1], 'the red box')


def test_segment_service(client):
    c = client
    resp = c.call_while_streaming(c.segment, Segment.Request(query='pick up the red box'))
    assert resp.success, resp.message
    check_result(resp.result, 'the red box')
    nothing = c.call(c.segment, Segment.Request(query='stop'))
    assert not nothing.success and nothing.message == "'stop' names no object"
    pronoun = c.call(c.segment, Segment.Request(query='pick it up'))
    assert not pronoun.success and 'does not say which object' in pronoun.message
    c.set_params(exists_threshold=1.0, uncertain_threshold=1.0)   # nothing can be found
    try:
        absent = c.call_while_streaming(c.segment, Segment.Request(query='the banana'))
    finally:
        c.set_params(exists_threshold=0.0, uncertain_threshold=0.0)
    assert absent.success and not absent.result.found and not absent.result.grasp_valid
    assert absent.result.status == 'not found' and absent.result.cloud.width == 0
    assert "don't see the banana" in absent.result.description


def test_track_action_feedback_and_cancel(client):
    c = client
    feedback: list = []
    handle = c.send_track('the red box', feedback=feedback)
    assert c.stream(20.0, lambda: len(feedback) >= 3), f'{len(feedback)} feedback messages'
    stamps = [(f.result.header.stamp.sec, f.result.header.stamp.nanosec) for f in feedback[:3]]
    assert stamps == sorted(stamps) and len(set(stamps)) == 3       # one result per frame
    check_result(feedback[0].result, 'the red box')
    assert feedback[0].consecutive_misses == 0
    cancel = handle.cancel_goal_async()
    assert c.stream(20.0, cancel.done)
    assert len(cancel.result().goals_canceling) == 1
    status, result = c.track_result(handle)
    assert status == GoalStatus.STATUS_CANCELED
    assert result.frames_tracked >= 3 and result.message == 'canceled'
    # cancel really stops the stream: no feedback arrives while the node takes 3 more frames
    n_after = len(feedback)
    taken = c.statuses[-1].frames_in
    assert c.stream(10.0, lambda: c.statuses[-1].frames_in >= taken + 3)
    assert len(feedback) == n_after


def test_describe_service_pixel_and_point(client):
    c = client
    by_pixel = c.call_while_streaming(c.describe, Describe.Request(u=80, v=60))
    assert by_pixel.success, by_pixel.message
    assert by_pixel.description == by_pixel.result.description
    assert by_pixel.description.startswith('That is') and 'cm ahead' in by_pixel.description
    assert by_pixel.category and by_pixel.color and by_pixel.size
    assert 0.0 <= by_pixel.score <= 1.0
    check_result(by_pixel.result, 'the object at pixel (80, 60)')

    point = PointStamped()
    point.header.frame_id = FRAME_ID
    point.point.x, point.point.y, point.point.z = 0.0, 0.0, 0.65     # the image centre
    by_point = c.call_while_streaming(c.describe, Describe.Request(use_point=True, point=point))
    assert by_point.success and by_point.category == by_pixel.category

    outside = c.call(c.describe, Describe.Request(u=5000, v=1))
    assert not outside.success and 'outside the image' in outside.message
    point.header.frame_id = 'map'
    other_frame = c.call(c.describe, Describe.Request(use_point=True, point=point))
    assert not other_frame.success and 'expected the camera frame' in other_frame.message
