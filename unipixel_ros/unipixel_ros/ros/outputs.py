"""Messages built from an answer: the ReferringResult, the RViz overlay and markers.

Units: metres in the camera optical frame of the color image; every message copies its header.
"""
from __future__ import annotations

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import Point, PoseStamped, Vector3
from rclpy.qos import (DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy,
                       qos_profile_sensor_data)
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import Image, PointCloud2
from std_msgs.msg import ColorRGBA, Float32, Header, String
from unipixel_msgs.msg import PipelineStatus, ReferringResult
from visualization_msgs.msg import Marker, MarkerArray

from unipixel_ros.perception import matrix_from_quaternion
from unipixel_ros.perception.overlay import draw_overlay

from .conversions import build_result, cloud_to_msg, image_to_numpy, numpy_to_image, pose_stamped

RELIABLE = QoSProfile(depth=10, reliability=ReliabilityPolicy.RELIABLE,
                      history=HistoryPolicy.KEEP_LAST)
LATCHED = QoSProfile(depth=1, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)


def create_output_publishers(node) -> dict:
    """The node's output publishers by short name. Lifecycle publishers (they publish only while
    the node is active), except ``status``, which also reports 'inactive'. Images and clouds
    use sensor QoS, everything else is reliable; QoS is overridable by parameters."""
    override = QoSOverridingOptions.with_default_policies()
    lp = node.create_lifecycle_publisher
    sensor = {'qos_profile': qos_profile_sensor_data, 'qos_overriding_options': override}
    return {
        'mask': lp(Image, 'unipixel/mask', **sensor),
        'overlay': lp(Image, 'unipixel/overlay', **sensor),
        'cloud': lp(PointCloud2, 'unipixel/cloud', **sensor),
        'grasp': lp(PoseStamped, 'unipixel/grasp', RELIABLE),
        'width': lp(Float32, 'unipixel/gripper_width', RELIABLE),
        'pick': lp(PoseStamped, 'unipixel/pick', RELIABLE),
        'markers': lp(MarkerArray, 'unipixel/markers', RELIABLE),
        'result': lp(ReferringResult, 'unipixel/result', RELIABLE,
                     qos_overriding_options=override),
        'reply': lp(String, 'unipixel/reply', RELIABLE),
        'status': node.create_publisher(PipelineStatus, 'unipixel/status', LATCHED),
        # diagnostic_updater's topic: absolute, reliable, also while inactive
        'diagnostics': node.create_publisher(DiagnosticArray, '/diagnostics', RELIABLE),
    }


def answer_to_result(answer, header: Header, query_text: str, sentence: str,
                     voxel_cloud: bool):
    """unipixel_msgs/ReferringResult of an :class:`~unipixel_ros.inference.answer.Answer`.

    Args:
        voxel_cloud: publish the voxelised object cloud (lighter) instead of every point.
    While tracking, the grasp is the tracker's smoothed pose and width.
    """
    geometry = answer.geometry
    voxel = voxel_cloud and geometry is not None and geometry.voxel_points is not None
    result = build_result(header, query_text, answer.found, answer.score, answer.mask, geometry,
                          description=sentence, status=answer.status, with_cloud=not voxel)
    if voxel:
        result.cloud = cloud_to_msg(geometry.voxel_points, geometry.voxel_colors, header)
    state = answer.track
    if (state is not None and answer.found and geometry is not None
            and geometry.best_grasp is not None and state.grasp_position is not None):
        result.grasp = pose_stamped(state.grasp_position, state.grasp_quaternion, header)
        result.gripper_width = float(state.grasp_width)
    return result


def overlay_image(rgb: np.ndarray, result, header: Header):
    """sensor_msgs/Image (rgb8) of ``rgb`` with the result's mask, box and label drawn on it."""
    label = (f'{result.query} {result.score:.2f}' if result.found
             else f'{result.query}: not found')
    box = None
    if result.found and result.bbox.width:
        b = result.bbox
        box = (b.x_offset, b.y_offset, b.x_offset + b.width - 1, b.y_offset + b.height - 1)
    mask = image_to_numpy(result.mask) > 0 if result.found else None
    return numpy_to_image(draw_overlay(rgb, mask, box, label), 'rgb8', header)


def result_markers(result, header: Header) -> MarkerArray:
    """The object's box (green cube), the grasp approach (yellow arrow, 12 cm) and the
    description (text) for RViz."""
    box = Marker(header=header, ns='unipixel', id=0, type=Marker.CUBE, action=Marker.ADD)
    box.pose.position = result.centroid
    box.pose.orientation = result.box_orientation
    box.scale = Vector3(x=max(result.box_dimensions.x, 1e-3), y=max(result.box_dimensions.y, 1e-3),
                        z=max(result.box_dimensions.z, 1e-3))
    box.color = ColorRGBA(r=0.1, g=0.9, b=0.35, a=0.35)
    markers = [box]
    if result.grasp_valid:
        arrow = Marker(header=header, ns='unipixel', id=1, type=Marker.ARROW, action=Marker.ADD)
        q = result.grasp.pose.orientation
        approach = matrix_from_quaternion(np.array([q.x, q.y, q.z, q.w]))[:, 2]
        tip = result.grasp.pose.position
        tail = np.array([tip.x, tip.y, tip.z]) - 0.12 * approach
        arrow.points = [Point(x=float(tail[0]), y=float(tail[1]), z=float(tail[2])), tip]
        arrow.scale = Vector3(x=0.01, y=0.02, z=0.03)
        arrow.color = ColorRGBA(r=1.0, g=0.8, b=0.0, a=1.0)
        markers.append(arrow)
    text = Marker(header=header, ns='unipixel', id=2, type=Marker.TEXT_VIEW_FACING,
                  action=Marker.ADD)
    text.pose.position = Point(x=result.centroid.x, y=result.centroid.y - 0.08, z=result.centroid.z)
    text.scale.z = 0.03
    text.color = ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0)
    text.text = result.description
    markers.append(text)
    return MarkerArray(markers=markers)


def publish_outputs(pubs: dict, result, rgb: np.ndarray, header: Header, measured: bool,
                    pick: bool) -> None:
    """Publish a result's derived outputs (the result itself is published by the caller).

    ``measured``: the object's geometry was computed (cloud and markers exist); ``pick``: send
    the grasp on ``unipixel/pick`` now.

    The image-sized and RViz-only outputs are built only for topics somebody subscribes to
    (lazy, as image_transport does): drawing the overlay alone costs a few ms per frame that
    the next frame would otherwise wait for.
    """
    def wanted(name: str) -> bool:
        return pubs[name].get_subscription_count() > 0

    if wanted('mask'):
        pubs['mask'].publish(result.mask)
    if wanted('overlay'):
        pubs['overlay'].publish(overlay_image(rgb, result, header))
    if result.found and measured:
        if wanted('cloud'):
            pubs['cloud'].publish(result.cloud)
        if wanted('markers'):
            pubs['markers'].publish(result_markers(result, result.header))   # target frame
    if result.found and result.grasp_valid:
        pubs['grasp'].publish(result.grasp)
        pubs['width'].publish(Float32(data=float(result.gripper_width)))
    if pick:
        pubs['pick'].publish(result.grasp)


def publish_unless_closed(publish, closing) -> bool:
    """Run ``publish()`` unless ``closing()``; False when nothing was sent.

    A SIGINT may shut the context down while another thread is half way through publishing:
    that message then fails with "publisher's context is invalid". It is not an error of the
    frame, so it is dropped quietly; any other failure is raised.
    """
    if closing():
        return False
    try:
        publish()
    except Exception:
        if closing():
            return False
        raise
    return True
