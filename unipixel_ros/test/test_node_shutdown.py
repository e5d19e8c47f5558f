"""unipixel_node stops cleanly: Ctrl-C in the middle of a stream, on every camera executor, and
the lifecycle's cleanup and shutdown transitions.

The fault this guards against: rclpy's signal handler shut the context down while the worker
was publishing a frame's outputs, and its error handler then published a status on the dead
context ("RCLError: Failed to publish: publisher's context is invalid", in 2 of 5 launches).
Now the signal only ends the spin loop and the node joins its threads before the context shuts
down. Each run here sends SIGINT while frames stream in, a command is followed and a tracking
goal is open, and asserts exit status 0 and no traceback.
"""
from __future__ import annotations

import signal
import time

import pytest

rclpy = pytest.importorskip('rclpy')
from std_msgs.msg import String  # noqa: E402
from unipixel_msgs.srv import Segment  # noqa: E402

from node_client import (UNSAFE_OUTPUT, NodeClient, NodeProcess, Transition,  # noqa: E402
                         publish_when_matched)
from tiny_node_setup import save_tiny_checkpoint  # noqa: E402

pytestmark = pytest.mark.ros


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    return save_tiny_checkpoint(tmp_path_factory.mktemp('model'))


@pytest.mark.parametrize('camera_executor', ['events', 'single_threaded', 'node'])
def test_sigint_while_streaming(checkpoint, camera_executor):
    node = NodeProcess(checkpoint, f'camera_executor:={camera_executor}')
    rclpy.init()
    c = NodeClient()
    try:
        c.wait_up()
        assert c.serves(timeout_s=60.0), 'the node never answered a command'
        feedback: list = []
        c.send_track('the red box', feedback=feedback)
        assert c.stream(20.0, lambda: len(feedback) >= 2)
        publish_when_matched(c.node, c.speech, String(data='track the red box'))
        pending = c.segment.call_async(Segment.Request(query='the red box', timeout_s=10.0))
        # the node is now answering frames, a goal and a service call: interrupt it
        before = len(c.results)
        assert c.stream(10.0, lambda: len(c.results) >= before + 3)
        node.proc.send_signal(signal.SIGINT)
        t0 = time.monotonic()
        c.stream(10.0, lambda: node.proc.poll() is not None, period_s=0.03)
        exit_s = time.monotonic() - t0
        del pending
    finally:
        c.destroy()
        rclpy.try_shutdown()
        code, out = node.stop()
    assert code == 0, f'exit status {code}:\n{out[-3000:]}'
    assert not [w for w in UNSAFE_OUTPUT if w in out], out[-3000:]
    assert exit_s < 10.0, f'the node took {exit_s:.1f} s to stop'


def test_cleanup_and_shutdown_transitions(checkpoint):
    node = NodeProcess(checkpoint, 'autostart:=false')
    rclpy.init()
    c = NodeClient()
    try:
        assert c.state() == "unconfigured"
        for t in (Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE):
            assert c.transition(t)
        assert c.serves(timeout_s=60.0)
        # cleanup frees the engine and the services; configure + activate bring them back
        assert c.transition(Transition.TRANSITION_DEACTIVATE)
        assert c.transition(Transition.TRANSITION_CLEANUP)
        assert c.state() == 'unconfigured'
        assert c.spin(10.0, lambda: not c.segment.service_is_ready())
        for t in (Transition.TRANSITION_CONFIGURE, Transition.TRANSITION_ACTIVATE):
            assert c.transition(t)
        assert c.state() == 'active'
        assert c.serves(timeout_s=30.0), 'no result after cleanup and configure'
        resp = c.call_while_streaming(c.segment, Segment.Request(query='the red box'))
        assert resp.success and resp.result.found
        # shutdown from active: the node stops answering and says so, and the process still
        # exits cleanly on SIGINT afterwards
        assert c.transition(Transition.TRANSITION_ACTIVE_SHUTDOWN)
        assert c.state() == 'finalized'
        taken = len(c.results)
        publish_when_matched(c.node, c.speech, String(data='find the red box'))
        for _ in range(5):
            c.frame()
        assert c.spin(10.0, lambda: not c.segment.service_is_ready())
        assert len(c.results) == taken
    finally:
        c.destroy()
        rclpy.try_shutdown()
        code, out = node.stop()
    assert code == 0, f'exit status {code}:\n{out[-3000:]}'
    assert not [w for w in UNSAFE_OUTPUT if w in out], out[-3000:]
