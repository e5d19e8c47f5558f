"""unipixel_node on simulated time: a simulator restart sends /clock back, and the node's ROS
clock jump callback drops the old timeline before the first new camera frame arrives."""
from __future__ import annotations

import pytest

rclpy = pytest.importorskip('rclpy')
from rosgraph_msgs.msg import Clock  # noqa: E402
from std_msgs.msg import String  # noqa: E402

from node_client import UNSAFE_OUTPUT, NodeClient, NodeProcess, publish_when_matched  # noqa: E402
from tiny_node_setup import save_tiny_checkpoint  # noqa: E402

pytestmark = pytest.mark.ros


def test_a_sim_time_reset_through_clock(tmp_path):
    """A simulator restart: /clock goes back from 100 s to 1 s, then the camera stamps follow.
    The clock's jump callback resets the node before the first new frame arrives."""
    node = NodeProcess(save_tiny_checkpoint(tmp_path), 'use_sim_time:=true',
                       ros_args=('-r', '__ns:=/simtime'))
    rclpy.init()
    c = NodeClient(namespace='/simtime', t0=100.0)
    clock = c.node.create_publisher(Clock, '/clock', 10)
    camera_frame = c.frame

    def tick(t: float) -> None:
        msg = Clock()
        msg.clock.sec, msg.clock.nanosec = divmod(int(round(t * 1e9)), 1_000_000_000)
        clock.publish(msg)

    def frame(kind: str = 'visible', t: float | None = None):
        """A simulator: /clock first, then the camera frame stamped with it."""
        h = c.header(t)
        t = h.stamp.sec + h.stamp.nanosec * 1e-9
        tick(t)
        return camera_frame(kind, t)

    c.frame = frame
    try:
        c.wait_up()
        publish_when_matched(c.node, c.speech, String(data='find the red box'))
        assert c.stream(60.0, lambda: bool(c.results)), 'no result on sim time'
        c.step()
        assert not c.status_events('time jump')
        tick(1.0)                                         # the simulator restarts
        assert c.spin(10.0, lambda: c.status_events('the ROS clock jumped')), \
            [s.message for s in c.statuses[-5:]]
        c.t = 1.0
        first = c.step()                                  # the first new frame is answered
        assert first.header.stamp.sec == 1
        assert len(c.status_events('time jump')) == 1      # said once
        assert c.serves()
    finally:
        c.destroy()
        rclpy.try_shutdown()
        code, out = node.stop()
    assert code == 0, out[-3000:]
    assert not [w for w in UNSAFE_OUTPUT if w in out], out[-3000:]
