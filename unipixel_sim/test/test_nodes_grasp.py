"""sim_camera + grasp_executor as processes: a ground-truth grasp sent over ROS succeeds, and the
camera stream shows the motion while it runs."""
from __future__ import annotations

import json
import time

import numpy as np
import pytest

rclpy = pytest.importorskip('rclpy')
from geometry_msgs.msg import PoseStamped  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Float32, Header, String  # noqa: E402

from node_helpers import node_process, spin_until  # noqa: E402
from unipixel_ros.ros.conversions import image_to_numpy, pose_stamped  # noqa: E402
from unipixel_sim.grasp_check import ground_truth_grasp  # noqa: E402
from unipixel_sim.nodes.grasp_executor_node import (GRASP_TOPIC, OUTCOME_TOPIC,  # noqa: E402
                                                    WIDTH_TOPIC)
from unipixel_sim.nodes.sim_camera import COLOR_TOPIC, SCENE_QOS, SCENE_TOPIC  # noqa: E402
from unipixel_sim.scene import SceneSpec  # noqa: E402

pytestmark = pytest.mark.ros
SEED = 3
RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)


def camera_frame_grasp(scene: dict, index: int):
    """grasp-check's top-down ground-truth grasp of object ``index``, in the camera optical
    frame: ((3,) position m, (3, 3) rotation, width m)."""
    obj = SceneSpec.from_dict(scene['scene']).objects[index]
    position, rotation, width = ground_truth_grasp(obj)
    t_cw = np.linalg.inv(np.array(scene['T_world_camera']))
    return t_cw[:3, :3] @ position + t_cw[:3, 3], t_cw[:3, :3] @ rotation, width


def test_ground_truth_grasp_through_ros(tmp_path):
    t_start = time.monotonic()
    with node_process('unipixel_sim.nodes.sim_camera', [f'seed:={SEED}'], tmp_path), \
            node_process('unipixel_sim.nodes.grasp_executor_node', [], tmp_path):
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
            spin_until(rclpy, node, lambda: False, 2.5)
            grasp_pub.publish(pose_stamped(position, rotation, Header(frame_id='map')))
            assert spin_until(rclpy, node, lambda: len(outcomes) == 2, 20.0)
            assert not outcomes[1]['success']
            assert outcomes[1]['reason'].startswith('wrong_frame:'), outcomes[1]['reason']
        finally:
            node.destroy_node()
            rclpy.shutdown()
