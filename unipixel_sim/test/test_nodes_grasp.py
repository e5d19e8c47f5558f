"""sim_camera + grasp_executor as processes: a ground-truth grasp sent over ROS succeeds, and the
camera stream shows the motion while it runs; the same through the execute_grasp action, with its
feedback phases, the rejection of a second goal while one runs, a wrong frame and a cancel."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy')
from action_msgs.msg import GoalStatus  # noqa: E402
from geometry_msgs.msg import PoseStamped  # noqa: E402
from rclpy.action import ActionClient  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Float32, Header, String  # noqa: E402

from node_helpers import node_process, spin_until  # noqa: E402
from unipixel_ros.ros.conversions import image_to_numpy, pose_stamped  # noqa: E402
from unipixel_sim.grasp_check import ground_truth_grasp  # noqa: E402
from unipixel_msgs.action import ExecuteGrasp  # noqa: E402
from unipixel_sim.nodes.grasp_executor_node import (ACTION_NAME, GRASP_TOPIC,  # noqa: E402
                                                    OUTCOME_TOPIC, WIDTH_TOPIC)
from unipixel_sim.nodes.sim_camera import COLOR_TOPIC, SCENE_QOS, SCENE_TOPIC  # noqa: E402
from unipixel_sim.scene import SceneSpec  # noqa: E402

pytestmark = pytest.mark.ros
SEED = 3
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
SHOW_RESULT_S = 0.5
PHASES = ['plan', 'move', 'approach', 'close', 'lift', 'hold']


def camera_frame_grasp(scene: dict, index: int):
    """grasp-check's top-down ground-truth grasp of object ``index``, in the camera optical
    frame: ((3,) position m, (3, 3) rotation, width m)."""
    obj = SceneSpec.from_dict(scene['scene']).objects[index]
    position, rotation, width = ground_truth_grasp(obj)
    t_cw = np.linalg.inv(np.array(scene['T_world_camera']))
    return t_cw[:3, :3] @ position + t_cw[:3, 3], t_cw[:3, :3] @ rotation, width


def send_goal(node, client, goal):
    """Send ``goal``; returns (ClientGoalHandle, the feedback messages as they arrive)."""
    feedback = []
    future = client.send_goal_async(goal, feedback_callback=lambda m: feedback.append(m.feedback))
    assert spin_until(rclpy, node, future.done, 10.0), 'no goal response'
    return future.result(), feedback


def wait_result(node, handle, timeout_s: float):
    """The GetResult response (status, result) of an accepted goal."""
    future = handle.get_result_async()
    assert spin_until(rclpy, node, future.done, timeout_s), 'no action result'
    return future.result()


def test_ground_truth_grasp_through_ros(tmp_path):
    t_start = time.monotonic()
    with node_process('unipixel_sim.nodes.sim_camera', [f'seed:={SEED}'], tmp_path), \
            node_process('unipixel_sim.nodes.grasp_executor_node',
                         [f'show_result_s:={SHOW_RESULT_S}'], tmp_path):
        rclpy.init()
        node = rclpy.create_node('grasp_test')
        try:
            scene, outcomes, frames = {}, [], []
            node.create_subscription(String, SCENE_TOPIC,
                                     lambda m: scene.update(json.loads(m.data)), SCENE_QOS)
            node.create_subscription(String, OUTCOME_TOPIC,
                                     lambda m: outcomes.append(json.loads(m.data)), RELIABLE)
            node.create_subscription(
                Image, COLOR_TOPIC, lambda m: frames.append(image_to_numpy(m).copy()),
                QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT))
            grasp_pub = node.create_publisher(PoseStamped, GRASP_TOPIC, RELIABLE)
            width_pub = node.create_publisher(Float32, WIDTH_TOPIC, RELIABLE)
            assert spin_until(rclpy, node, lambda: bool(scene) and bool(frames)
                              and grasp_pub.get_subscription_count() > 0
                              and width_pub.get_subscription_count() > 0, 60.0), \
                'sim/scene, a color frame or the grasp_executor subscriptions did not appear'
            # The executor builds its world after sim/scene arrives; its log says when.
            spin_until(rclpy, node, lambda: False, 3.0)

            index = next(o['index'] for o in scene['objects']
                         if o['graspable'] and o['visible_pixels'] > 0)
            position, rotation, width = camera_frame_grasp(scene, index)
            initial = frames[-1]
            frames.clear()
            width_pub.publish(Float32(data=float(width)))
            spin_until(rclpy, node, lambda: False, 0.2)
            sent = time.monotonic()
            grasp_pub.publish(pose_stamped(position, rotation,
                                           Header(stamp=node.get_clock().now().to_msg(),
                                                  frame_id=scene['frame_id'])))
            assert spin_until(rclpy, node, lambda: bool(outcomes), 90.0), 'no grasp outcome'
            through_ros_s = time.monotonic() - sent
            outcome = outcomes[0]
            changed = sum(float(np.abs(f.astype(np.int16) - initial).mean()) > 0.5
                          for f in frames)
            print(f"\ngrasp of obj_{index} ({scene['objects'][index]['category']}): "
                  f"{outcome['success']} ({outcome['reason']}), lifted "
                  f"{outcome['lifted_height_m'] * 100:.1f} cm, held {outcome['held_s']:.2f} s; "
                  f"{through_ros_s:.2f} s from pose to outcome through ROS "
                  f"(executor {outcome['execution_s']:.2f} s for {outcome['sim_s']:.2f} s "
                  f"simulated); {changed}/{len(frames)} camera frames differ from the initial "
                  f"one; test {time.monotonic() - t_start:.1f} s")
            assert outcome['success'], outcome['reason']
            assert outcome['target'] == f'obj_{index}'
            assert outcome['lifted_height_m'] >= 0.10
            assert changed >= 3, 'the camera stream did not show the robot moving'

            # After the result is shown, the next pose is served; one in an unknown frame fails.
            spin_until(rclpy, node, lambda: False, SHOW_RESULT_S + 0.5)
            grasp_pub.publish(pose_stamped(position, rotation, Header(frame_id='map')))
            assert spin_until(rclpy, node, lambda: len(outcomes) == 2, 20.0)
            assert not outcomes[1]['success']
            assert outcomes[1]['reason'].startswith('wrong_frame:'), outcomes[1]['reason']

            client = ActionClient(node, ExecuteGrasp, ACTION_NAME)
            assert client.wait_for_server(timeout_sec=10.0), 'no execute_grasp action server'
            goal = ExecuteGrasp.Goal(grasp=pose_stamped(position, rotation, Header(
                frame_id=scene['frame_id'])), width=float(width))
            t_action = time.monotonic()
            handle, feedback = send_goal(node, client, goal)
            assert handle.accepted
            assert spin_until(rclpy, node, lambda: bool(feedback), 10.0), 'no feedback'
            busy, _ = send_goal(node, client, goal)
            assert not busy.accepted, 'a second goal was accepted while a grasp runs'
            response = wait_result(node, handle, 30.0)
            result = response.result
            phases = [f.phase for k, f in enumerate(feedback)
                      if k == 0 or feedback[k - 1].phase != f.phase]
            print(f'action grasp: {result.success} ({result.reason}), lifted '
                  f'{result.lifted_height * 100:.1f} cm, held {result.held_time:.2f} s, '
                  f'{result.execution_time:.2f} s wall, {len(feedback)} feedback messages, '
                  f'goal to result {time.monotonic() - t_action:.2f} s')
            assert response.status == GoalStatus.STATUS_SUCCEEDED, result.reason
            assert result.success and result.reason == 'ok'
            assert result.target_body == f'obj_{index}'
            assert result.lifted_height >= 0.10 and result.held_time >= 0.99
            assert phases == PHASES
            assert all(b.sim_time >= a.sim_time for a, b in zip(feedback, feedback[1:]))
            assert outcomes[-1]['source'] == 'action' and outcomes[-1]['success']

            # A goal in an unknown frame ends ABORTED with the reason in its result.
            spin_until(rclpy, node, lambda: False, SHOW_RESULT_S + 0.5)
            wrong = ExecuteGrasp.Goal(grasp=pose_stamped(position, rotation,
                                                         Header(frame_id='map')))
            handle, _ = send_goal(node, client, wrong)
            assert handle.accepted
            response = wait_result(node, handle, 10.0)
            assert response.status == GoalStatus.STATUS_ABORTED
            assert response.result.reason.startswith('wrong_frame:'), response.result.reason

            # Cancel during the approach: the grasp stops there and the goal ends CANCELED.
            handle, feedback = send_goal(node, client, goal)
            assert handle.accepted
            assert spin_until(rclpy, node,
                              lambda: any(f.phase == 'approach' for f in feedback), 10.0)
            cancel = handle.cancel_goal_async()
            assert spin_until(rclpy, node, cancel.done, 5.0)
            assert len(cancel.result().goals_canceling) == 1
            response = wait_result(node, handle, 10.0)
            assert response.status == GoalStatus.STATUS_CANCELED
            assert response.result.reason.startswith('canceled:'), response.result.reason
            assert not response.result.success
            assert {f.phase for f in feedback}.isdisjoint({'lift', 'hold'})
        finally:
            node.destroy_node()
            rclpy.shutdown()


def test_action_only_without_a_scene(tmp_path):
    """execute_on_grasp_topic:=false leaves the action as the only trigger; a goal before any
    sim/scene ends ABORTED with reason no_scene."""
    with node_process('unipixel_sim.nodes.grasp_executor_node',
                      ['execute_on_grasp_topic:=false'], tmp_path):
        rclpy.init()
        node = rclpy.create_node('grasp_action_only_test')
        try:
            client = ActionClient(node, ExecuteGrasp, ACTION_NAME)
            assert client.wait_for_server(timeout_sec=20.0), 'no execute_grasp action server'
            assert node.count_subscribers(GRASP_TOPIC) == 0
            assert node.count_subscribers(WIDTH_TOPIC) == 0
            handle, _ = send_goal(node, client, ExecuteGrasp.Goal(grasp=pose_stamped(
                [0.5, 0.0, 0.05], np.diag([1.0, -1.0, -1.0]), Header(frame_id='world'))))
            assert handle.accepted
            response = wait_result(node, handle, 10.0)
            assert response.status == GoalStatus.STATUS_ABORTED
            assert response.result.reason.startswith('no_scene:'), response.result.reason
        finally:
            node.destroy_node()
            rclpy.shutdown()
