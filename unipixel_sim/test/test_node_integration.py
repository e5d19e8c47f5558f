"""sim_camera + unipixel_node as separate processes, judged against the simulator's ground truth.

"pick up the red cup" on a scene with exactly one red cup must give, within 2 s, a mask with IoU
>= 0.8 against sim/instances, a cloud centred within 1.5 cm of the cup's true centre, a grasp
inside its true box and a reply naming it; "stop" ends the stream; an absent object gets a
not-found reply and no grasp; the Segment service and the TrackObject action agree with the
topic answer. Needs the trained checkpoint (the shipped one, or UNIPIXEL_TEST_CHECKPOINT).
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy')
from geometry_msgs.msg import PointStamped, PoseStamped  # noqa: E402
from rclpy.action import ActionClient  # noqa: E402
from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import String  # noqa: E402
from unipixel_msgs.action import TrackObject  # noqa: E402
from unipixel_msgs.msg import PipelineStatus, ReferringResult  # noqa: E402
from unipixel_msgs.srv import Describe, Segment  # noqa: E402

from unipixel_ros.inference.loading import DEFAULT_CHECKPOINT  # noqa: E402
from unipixel_ros.ros.conversions import image_to_numpy  # noqa: E402
from unipixel_ros.ros.status import is_active  # noqa: E402

pytestmark = pytest.mark.ros
CHECKPOINT = Path(os.environ.get('UNIPIXEL_TEST_CHECKPOINT', DEFAULT_CHECKPOINT))
RELIABLE = QoSProfile(depth=50, reliability=ReliabilityPolicy.RELIABLE)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)
BEST_EFFORT = QoSProfile(depth=30, reliability=ReliabilityPolicy.BEST_EFFORT)


def _seed_with_one(category: str, color: str) -> int:
    """First scene seed with exactly one ``color`` ``category`` that is graspable."""
    from unipixel_sim.scene import generate_scene
    for seed in range(500):
        objs = [o for o in generate_scene(seed).objects
                if o.category == category and o.color == color]
        if len(objs) == 1 and objs[0].graspable:
            return seed
    raise RuntimeError(f'no scene with one {color} {category} in 500 seeds')


@pytest.fixture(scope='module')
def stack():
    if not CHECKPOINT.is_file():
        pytest.skip(f'no trained checkpoint at {CHECKPOINT} (set UNIPIXEL_TEST_CHECKPOINT)')
    seed = _seed_with_one('cup', 'red')
    procs = [
        subprocess.Popen([sys.executable, '-m', 'unipixel_sim.nodes.sim_camera', '--ros-args',
                          '-p', f'seed:={seed}', '-p', 'rate_hz:=15.0'],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True),
        subprocess.Popen([sys.executable, '-m', 'unipixel_ros.ros.unipixel_node', '--ros-args',
                          '-p', f'model_path:={CHECKPOINT}', '-p', 'engine:=onnxruntime',
                          '-p', 'status_rate_hz:=2.0'],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True),
    ]
    rclpy.init()
    node = rclpy.create_node('integration_client')
    state = {'results': [], 'replies': [], 'grasps': [], 'status': [], 'scene': None,
             'instances': {}}
    # answers computed on a frame (not the last one carried forward between groundings)
    node.create_subscription(ReferringResult, 'unipixel/result', lambda m: None if m.carried_forward
                             else state['results'].append(m), RELIABLE)
    node.create_subscription(String, 'unipixel/reply', lambda m: state['replies'].append(
        (time.monotonic(), m.data)), RELIABLE)
    node.create_subscription(PoseStamped, 'unipixel/grasp', lambda m: state['grasps'].append(
        (time.monotonic(), m)), RELIABLE)
    node.create_subscription(PipelineStatus, 'unipixel/status', state['status'].append, RELIABLE)
    node.create_subscription(String, 'sim/scene', lambda m: state.update(scene=json.loads(m.data)),
                             LATCHED)

    def on_instances(msg: Image) -> None:
        key = (msg.header.stamp.sec, msg.header.stamp.nanosec)
        state['instances'][key] = image_to_numpy(msg).copy()
        if len(state['instances']) > 200:
            state['instances'].pop(next(iter(state['instances'])))

    node.create_subscription(Image, 'sim/instances', on_instances, BEST_EFFORT)
    speech = node.create_publisher(String, 'speech/text', RELIABLE)

    def spin(seconds, until=None):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            if until is not None and until():
                return True
            rclpy.spin_once(node, timeout_sec=0.02)
        return bool(until and until())

    # active, and the speech publisher matched (a message sent before that is dropped)
    ready = spin(180.0, until=lambda: state['scene'] is not None and any(
        is_active(s) for s in state['status'])
        and speech.get_subscription_count() > 0)
    if not ready:
        for p in procs:
            p.terminate()
        outs = [p.communicate(timeout=10)[0][-2000:] for p in procs]
        pytest.fail(f'stack did not come up: {outs}')
    yield node, state, speech, spin
    node.destroy_node()
    rclpy.shutdown()
    for p in procs:
        p.terminate()
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            p.kill()


def _truth(scene: dict, category: str, color: str) -> dict:
    objs = [o for o in scene['objects'] if o['category'] == category and o['color'] == color]
    assert len(objs) == 1
    return objs[0]


def _inside_box(point: np.ndarray, obj: dict, scene: dict, margin: float = 0.005) -> bool:
    """Camera-frame point inside the object's world box (T_world_object, extents)."""
    T_wc = np.asarray(scene['T_world_camera'])
    T_wo = np.asarray(obj['T_world_object'])
    p_world = T_wc[:3, :3] @ point + T_wc[:3, 3]
    local = T_wo[:3, :3].T @ (p_world - T_wo[:3, 3])
    ext = np.asarray(obj['extents'])
    # the body origin is the centre of the object's base
    return bool(np.all(np.abs(local[:2]) <= ext[:2] / 2 + margin)
                and -margin <= local[2] <= ext[2] + margin)


def test_pick_up_the_red_cup(stack):
    node, state, speech, spin = stack
    scene = state['scene']
    cup = _truth(scene, 'cup', 'red')
    index = [o['body'] for o in scene['objects']].index(cup['body'])
    n0 = len(state['results'])
    t0 = time.monotonic()
    speech.publish(String(data='pick up the red cup'))

    def good():
        for r in state['results'][n0:]:
            if r.found and (r.header.stamp.sec, r.header.stamp.nanosec) in state['instances']:
                return r
        return None

    assert spin(2.0, until=lambda: good() is not None), \
        f'no found result within 2 s: {[(r.found, r.status) for r in state["results"][n0:]]}'
    assert time.monotonic() - t0 <= 2.5
    res = good()
    gt = state['instances'][(res.header.stamp.sec, res.header.stamp.nanosec)] == index + 1
    mask = image_to_numpy(res.mask) > 0
    iou = (mask & gt).sum() / max((mask | gt).sum(), 1)
    assert iou >= 0.8, f'mask IoU {iou:.3f}'
    centre = np.asarray(cup['center_camera'])
    centroid = np.array([res.centroid.x, res.centroid.y, res.centroid.z])
    assert np.linalg.norm(centroid - centre) <= 0.015, f'centroid error {np.linalg.norm(centroid - centre):.4f} m'
    p = res.grasp.pose.position
    assert res.grasp_valid and _inside_box(np.array([p.x, p.y, p.z]), cup, scene)
    assert spin(2.0, until=lambda: any('red cup' in text for t, text in state['replies']
                                       if t >= t0))


def test_stop_ends_the_stream(stack):
    node, state, speech, spin = stack
    speech.publish(String(data='stop'))
    spin(1.0)
    n = len(state['results'])
    spin(1.5)
    assert len(state['results']) == n, 'results kept coming after "stop"'


def test_absent_object_is_not_found_and_gets_no_grasp(stack):
    node, state, speech, spin = stack
    present = {(o['color'], o['category']) for o in state['scene']['objects']}
    color, category = next((c, k) for c in ('purple', 'pink', 'orange', 'white')
                           for k in ('bowl', 'ball', 'box') if (c, k) not in present)
    t0 = time.monotonic()
    speech.publish(String(data=f'pick up the {color} {category}'))
    assert spin(3.0, until=lambda: any("don't see" in text for t, text in state['replies']
                                       if t >= t0))
    spin(1.0)
    assert not [g for t, g in state['grasps'] if t >= t0]
    speech.publish(String(data='stop'))
    spin(0.5)


def test_service_and_action_agree_with_the_topic(stack):
    node, state, speech, spin = stack
    cup = _truth(state['scene'], 'cup', 'red')
    client = node.create_client(Segment, 'unipixel/segment')
    assert client.wait_for_service(timeout_sec=10.0)
    future = client.call_async(Segment.Request(query='the red cup', timeout_s=5.0))
    rclpy.spin_until_future_complete(node, future, timeout_sec=10.0)
    resp = future.result()
    assert resp.success and resp.result.found
    c = resp.result.centroid
    assert np.linalg.norm(np.array([c.x, c.y, c.z]) - np.asarray(cup['center_camera'])) <= 0.015

    action = ActionClient(node, TrackObject, 'unipixel/track')
    assert action.wait_for_server(timeout_sec=10.0)
    feedback = []
    goal = action.send_goal_async(TrackObject.Goal(query='the red cup'),
                                  feedback_callback=lambda fb: feedback.append(fb.feedback))
    rclpy.spin_until_future_complete(node, goal, timeout_sec=10.0)
    handle = goal.result()
    assert handle.accepted
    assert spin(5.0, until=lambda: any(f.result.found for f in feedback))
    fb = next(f for f in feedback if f.result.found)
    c2 = fb.result.centroid
    assert np.linalg.norm(np.array([c2.x - c.x, c2.y - c.y, c2.z - c.z])) <= 0.015
    cancel = handle.cancel_goal_async()
    rclpy.spin_until_future_complete(node, cancel, timeout_sec=10.0)
    result = handle.get_result_async()
    rclpy.spin_until_future_complete(node, result, timeout_sec=10.0)
    assert result.result().result.frames_tracked >= 1


def test_describe_names_the_object_at_a_3d_point(stack):
    """Region -> words on the real node: the red cup's true centre, as RViz's Publish Point
    would send it, is described with the cup's true category, colour and size."""
    node, state, _speech, _spin = stack
    cup = _truth(state['scene'], 'cup', 'red')
    client = node.create_client(Describe, 'unipixel/describe')
    assert client.wait_for_service(timeout_sec=10.0)
    point = PointStamped()
    point.point.x, point.point.y, point.point.z = (float(v) for v in cup['center_camera'])
    future = client.call_async(Describe.Request(use_point=True, point=point))
    rclpy.spin_until_future_complete(node, future, timeout_sec=10.0)
    resp = future.result()
    assert resp is not None and resp.success, getattr(resp, 'message', 'no answer')
    assert (resp.category, resp.color, resp.size) == ('cup', 'red', cup['size'])
    assert resp.description.startswith(f"That is a {cup['size']} red cup, "), resp.description
    # the point-prompted mask's box centre lies in the cup (it measured 2.0 cm from the true
    # centre here: the region mask is looser than the text-prompted one, 1.5 cm in the tests above)
    c = resp.result.centroid
    assert _inside_box(np.array([c.x, c.y, c.z]), cup, state['scene'])
