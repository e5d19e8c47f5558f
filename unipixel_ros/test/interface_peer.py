"""A second ROS 2 process that serves every unipixel_msgs interface, for round-trip tests.

It answers queries about a deterministic analytic scene (a red box and a blue cylinder on a
table, ``peer_scene()``) with the real geometry core and the real message conversion, so the
client can check the geometry that crossed the process boundary against ground truth.

Interfaces (all relative names):
  sub  query    std_msgs/String            -> pub result unipixel_msgs/ReferringResult
  srv  segment  unipixel_msgs/srv/Segment
  srv  describe unipixel_msgs/srv/Describe
  act  track    unipixel_msgs/action/TrackObject (feedback every 50 ms until canceled)

Run: python interface_peer.py  (prints READY on stdout once everything is advertised)
"""
from __future__ import annotations

import sys
import time

import numpy as np
import rclpy
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from std_msgs.msg import Header, String
from unipixel_msgs.action import TrackObject
from unipixel_msgs.msg import ReferringResult
from unipixel_msgs.srv import Describe, Segment

from unipixel_ros.perception import estimate_object_geometry
from unipixel_ros.perception.synthetic import SceneObject, render_scene
from unipixel_ros.ros.conversions import build_result

FRAME_ID = 'camera_color_optical_frame'
NAMES = ('box', 'cylinder')
COLORS = ('red', 'blue')


def peer_scene():
    """The scene both processes agree on: [red box, blue cylinder], 2 mm noise, 3 px bleed."""
    return render_scene([SceneObject.box((-0.07, 0.0), 0.06, 0.04, 0.08, yaw_deg=20.0),
                         SceneObject.cylinder((0.08, 0.02), 0.05, 0.10)],
                        noise_sigma=0.002, invalid_fraction=0.05, mask_dilation_px=3, seed=7)


class InterfacePeer(Node):
    def __init__(self) -> None:
        super().__init__('interface_peer')
        self.scene = peer_scene()
        self.seq = 0
        group = ReentrantCallbackGroup()
        reliable = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE)
        self.result_pub = self.create_publisher(ReferringResult, 'result', reliable)
        self.create_subscription(String, 'query', self.on_query, reliable, callback_group=group)
        self.create_service(Segment, 'segment', self.on_segment, callback_group=group)
        self.create_service(Describe, 'describe', self.on_describe, callback_group=group)
        self.track_server = ActionServer(
            self, TrackObject, 'track', execute_callback=self.execute_track,
            goal_callback=lambda goal: GoalResponse.ACCEPT,
            cancel_callback=lambda goal_handle: CancelResponse.ACCEPT, callback_group=group)

    def header(self) -> Header:
        self.seq += 1
        return Header(stamp=self.get_clock().now().to_msg(), frame_id=FRAME_ID)

    def answer(self, query: str) -> ReferringResult:
        header = self.header()
        hits = [i for i, n in enumerate(NAMES) if n in query.lower()]
        if not hits:
            return build_result(header, query, False, 0.02, status=f'no object matches {query!r}',
                                description=f'I do not see {query}.')
        i = hits[0]
        s = self.scene
        geometry = estimate_object_geometry(s.masks[i], s.depth_mm, '16UC1', s.intrinsics, s.rgb)
        distance_cm = 100.0 * float(np.linalg.norm(geometry.box.center))
        return build_result(header, query, True, 0.97, s.masks[i], geometry,
                            description=f'I see the {COLORS[i]} {NAMES[i]}, {distance_cm:.0f} cm ahead')

    def on_query(self, msg: String) -> None:
        self.result_pub.publish(self.answer(msg.data))

    def on_segment(self, request, response):
        response.result = self.answer(request.query)
        response.success = True
        return response

    def on_describe(self, request, response):
        s = self.scene
        u, v = int(request.u), int(request.v)
        if request.use_point:
            p = request.point.point
            if p.z <= 0:
                response.success, response.message = False, 'point is behind the camera'
                return response
            k = s.intrinsics
            u, v = int(round(k.fx * p.x / p.z + k.cx)), int(round(k.fy * p.y / p.z + k.cy))
        h, w = s.true_masks[0].shape
        if not (0 <= u < w and 0 <= v < h):
            response.success, response.message = False, f'pixel ({u}, {v}) is outside the image'
            return response
        for i, m in enumerate(s.true_masks):
            if m[v, u]:
                response.success = True
                response.category, response.color, response.size = NAMES[i], COLORS[i], 'small'
                response.description = f'a small {COLORS[i]} {NAMES[i]}'
                response.score = 0.9
                response.result = self.answer(f'the {NAMES[i]}')
                return response
        response.success, response.message = False, f'no object at pixel ({u}, {v})'
        return response

    def execute_track(self, goal_handle):
        query = goal_handle.request.query
        limit = goal_handle.request.max_duration_s
        start, frames = time.monotonic(), 0
        last = ReferringResult()
        while rclpy.ok():
            if goal_handle.is_cancel_requested:
                goal_handle.canceled()
                return TrackObject.Result(success=True, message='canceled', frames_tracked=frames,
                                          last_result=last)
            if limit > 0 and time.monotonic() - start > limit:
                break
            last = self.answer(query)
            frames += 1
            goal_handle.publish_feedback(TrackObject.Feedback(
                result=last, consecutive_misses=0 if last.found else frames))
            time.sleep(0.05)
        goal_handle.succeed()
        return TrackObject.Result(success=True, message='time limit reached',
                                  frames_tracked=frames, last_result=last)


def main() -> int:
    rclpy.init()
    node = InterfacePeer()
    executor = MultiThreadedExecutor(num_threads=4)
    executor.add_node(node)
    print('READY', flush=True)
    try:
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    finally:
        executor.shutdown()
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == '__main__':
    sys.exit(main())
