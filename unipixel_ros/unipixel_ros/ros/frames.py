"""Outputs in the robot's frame: camera optical frame -> ``target_frame``.

Geometry is computed in the camera's color optical frame (x right, y down, z forward, metres).
With ``target_frame`` set (e.g. ``base_link``), the node re-expresses every 3D output of a result
in that frame: centroid, box orientation, grasp pose, object cloud; the mask and the overlay stay
image-space and keep the image's header. The transform comes from one of:

* tf2 (a ROS install with ``tf2_ros``): camera -> target looked up at the image stamp with a
  timeout; a failed lookup is a clear status and the result is not published in a wrong frame;
* a static ``camera_to_target`` extrinsic (xyz + quaternion xyzw, the pose of the camera optical
  frame in the target frame), for fixed cameras and where tf2 is not installed (it is not on
  PyPI).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from geometry_msgs.msg import Point, Quaternion
from std_msgs.msg import Header

from unipixel_ros.perception import matrix_from_quaternion, quaternion_from_matrix

from .conversions import MessageConversionError, cloud_to_msg, msg_to_cloud


class FrameError(RuntimeError):
    """The transform to the target frame is not available (bad extrinsic, tf2 lookup failed)."""


@dataclass(frozen=True)
class RigidTransform:
    """p_target = rotation @ p_camera + translation (metres).

    Attributes:
        rotation: (3, 3) float64 rotation matrix.
        translation: (3,) float64, metres.
    """

    rotation: np.ndarray
    translation: np.ndarray

    @classmethod
    def from_pose(cls, xyz_qxyzw) -> 'RigidTransform':
        """The pose of the camera in the target frame, ``[x, y, z, qx, qy, qz, qw]``.

        Raises:
            FrameError: not 7 finite numbers, or a zero quaternion.
        """
        values = np.asarray(list(xyz_qxyzw), dtype=np.float64)
        if values.shape != (7,) or not np.all(np.isfinite(values)):
            raise FrameError(f'camera_to_target must be 7 numbers [x, y, z, qx, qy, qz, qw], '
                             f'got {list(xyz_qxyzw)!r}')
        if np.linalg.norm(values[3:]) < 1e-9:
            raise FrameError('camera_to_target has a zero quaternion')
        return cls(matrix_from_quaternion(values[3:]), values[:3])

    def apply(self, points: np.ndarray) -> np.ndarray:
        """(N, 3) camera-frame points -> (N, 3) float32 target-frame points."""
        pts = np.asarray(points, dtype=np.float64).reshape(-1, 3)
        return (pts @ self.rotation.T + self.translation).astype(np.float32)

    def rotate_quaternion(self, q_xyzw) -> np.ndarray:
        """Orientation in the camera frame -> the same orientation in the target frame."""
        return quaternion_from_matrix(self.rotation @ matrix_from_quaternion(q_xyzw))


def _point(p) -> np.ndarray:
    return np.array([p.x, p.y, p.z], dtype=np.float64)


def _quat(q) -> np.ndarray:
    return np.array([q.x, q.y, q.z, q.w], dtype=np.float64)


def transform_result(result, transform: RigidTransform, target_frame: str):
    """Re-express the 3D parts of a ``ReferringResult`` in ``target_frame`` (in place; returned).

    The result's header and the grasp's and cloud's headers take ``target_frame`` (same stamp;
    new header objects, since the result shares the image's header with its mask); the mask keeps
    the image header. Not-found results only change their frame.
    """
    stamp = result.header.stamp
    result.header = Header(stamp=stamp, frame_id=target_frame)
    if result.found:
        c = transform.apply(_point(result.centroid))[0]
        result.centroid = Point(x=float(c[0]), y=float(c[1]), z=float(c[2]))
        if np.linalg.norm(_quat(result.box_orientation)) > 0:
            q = transform.rotate_quaternion(_quat(result.box_orientation))
            result.box_orientation = Quaternion(x=q[0], y=q[1], z=q[2], w=q[3])
        if result.cloud.width * result.cloud.height:
            try:
                points, colors = msg_to_cloud(result.cloud)
            except MessageConversionError as exc:
                raise FrameError(f'cannot transform the object cloud: {exc}') from exc
            result.cloud = cloud_to_msg(transform.apply(points), colors,
                                        Header(stamp=stamp, frame_id=target_frame))
    if result.grasp_valid:
        pose = result.grasp.pose
        p = transform.apply(_point(pose.position))[0]
        q = transform.rotate_quaternion(_quat(pose.orientation))
        pose.position = Point(x=float(p[0]), y=float(p[1]), z=float(p[2]))
        pose.orientation = Quaternion(x=q[0], y=q[1], z=q[2], w=q[3])
        result.grasp.header = Header(stamp=stamp, frame_id=target_frame)
    return result


class TargetFrame:
    """Where the node's 3D outputs go: the camera frame, a static extrinsic, or tf2.

    Args:
        node: the node (for tf2's listener and clock); None for the static path only.
        target_frame: '' = keep the camera frame.
        camera_to_target: [x, y, z, qx, qy, qz, qw], or [] to look the transform up with tf2.
        timeout_s: tf2 lookup timeout, seconds.
    Raises:
        FrameError: a target frame without an extrinsic where tf2 is not importable, or a bad
            extrinsic.
    """

    def __init__(self, node, target_frame: str, camera_to_target, timeout_s: float = 0.1) -> None:
        self.target_frame = target_frame
        self.timeout_s = timeout_s
        self._static = None
        self._buffer = self._listener = None
        if not target_frame:
            return
        if len(list(camera_to_target)):
            self._static = RigidTransform.from_pose(camera_to_target)
            return
        try:
            import tf2_ros
        except ImportError as exc:
            raise FrameError(
                f'target_frame {target_frame!r} needs tf2_ros (a ROS install) or a static '
                'camera_to_target extrinsic [x, y, z, qx, qy, qz, qw]') from exc
        self._buffer = tf2_ros.Buffer()
        self._listener = tf2_ros.TransformListener(self._buffer, node)

    @property
    def source(self) -> str:
        """'camera' (no change), 'static' or 'tf2'."""
        if not self.target_frame:
            return 'camera'
        return 'static' if self._static is not None else 'tf2'

    def transform_for(self, camera_frame: str, stamp) -> RigidTransform | None:
        """camera -> target at ``stamp`` (None when the outputs stay in the camera frame).

        Raises:
            FrameError: tf2 has no transform within the timeout.
        """
        if not self.target_frame or self.target_frame == camera_frame:
            return None
        if self._static is not None:
            return self._static
        from rclpy.duration import Duration
        from rclpy.time import Time
        try:
            tf = self._buffer.lookup_transform(self.target_frame, camera_frame,
                                               Time.from_msg(stamp),
                                               timeout=Duration(seconds=self.timeout_s))
        except Exception as exc:  # tf2's Lookup/Extrapolation/Connectivity exceptions
            raise FrameError(f'no transform {camera_frame} -> {self.target_frame} at the image '
                             f'stamp within {self.timeout_s:.2f} s: {exc}') from exc
        t, q = tf.transform.translation, tf.transform.rotation
        return RigidTransform(matrix_from_quaternion(_quat(q)), _point(t))
