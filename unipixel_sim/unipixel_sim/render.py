"""RGB, metric depth and instance masks of a scene camera, with intrinsics, pose and ground truth.

Frames follow ROS conventions: intrinsics as in ``sensor_msgs/CameraInfo`` (pixel centres at
integer coordinates) and camera poses in the optical frame (x right, y down, z forward).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import List, Optional, Union

os.environ.setdefault('MUJOCO_GL', 'egl')

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from unipixel_ros.perception import CameraIntrinsics  # noqa: E402

from .scene import SceneSpec, object_body_ids  # noqa: E402

#: OpenGL camera frame (x right, y up, z backward) -> ROS optical frame: flip y and z.
GL_TO_OPTICAL = np.diag([1.0, -1.0, -1.0])


@dataclass
class ObjectTruth:
    """Ground truth of one scene object, as seen in one frame.

    Attributes:
        index: object index i (body ``obj_<i>``); its instance id in masks is ``index + 1``.
        category, color, size: vocabulary names.
        graspable: fits the Panda's jaws across one horizontal axis (< 7 cm).
        T_world_object: (4, 4) pose of the object's base frame (base centre, z = object up).
        center_world: (3,) point on the object's up axis at half its height, world, metres.
        center_camera: (3,) the same point in the camera optical frame, metres.
        extents: (3,) full bounding-box size along the object's x, y, z axes, metres.
        volume: bounding volume, cubic metres.
        visible_pixels: number of pixels of the instance mask.
    """

    index: int
    category: str
    color: str
    size: str
    graspable: bool
    T_world_object: np.ndarray
    center_world: np.ndarray
    center_camera: np.ndarray
    extents: np.ndarray
    volume: float
    visible_pixels: int

    def to_dict(self) -> dict:
        """JSON-ready dict (arrays as nested lists)."""
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v)
                for k, v in self.__dict__.items()}


@dataclass
class Frame:
    """One rendered view.

    Attributes:
        rgb: (H, W, 3) uint8.
        depth: (H, W) float32 metres along the optical axis (z of the optical frame); 0 where
            nothing was hit within the far plane.
        instances: (H, W) int16; 0 = background (table, robot, floor), ``i + 1`` = object ``i``.
        intrinsics: pinhole intrinsics of this image.
        T_world_camera: (4, 4) pose of the camera optical frame in the world.
        objects: ground truth per object (all objects, also those not visible).
    """

    rgb: np.ndarray
    depth: np.ndarray
    instances: np.ndarray
    intrinsics: CameraIntrinsics
    T_world_camera: np.ndarray
    objects: List[ObjectTruth]


def intrinsics_from_fovy(fovy_deg: float, width: int, height: int) -> CameraIntrinsics:
    """Intrinsics of a MuJoCo camera: ``fy = (H/2) / tan(fovy/2)``, square pixels, centred."""
    fy = (height / 2.0) / math.tan(math.radians(fovy_deg) / 2.0)
    return CameraIntrinsics(fx=fy, fy=fy, cx=(width - 1) / 2.0, cy=(height - 1) / 2.0,
                            width=width, height=height)


def camera_pose(data: mujoco.MjData, camera_id: int) -> np.ndarray:
    """(4, 4) T_world_camera of camera ``camera_id`` in the ROS optical frame (after mj_forward).
    """
    pose = np.eye(4)
    pose[:3, :3] = data.cam_xmat[camera_id].reshape(3, 3) @ GL_TO_OPTICAL
    pose[:3, 3] = data.cam_xpos[camera_id]
    return pose


class SceneRenderer:
    """Renders RGB, depth and instance masks; ONE :class:`mujoco.Renderer` per modality, reused
    across frames (creating a renderer costs a GL context and uploading every mesh).

    Args:
        model: compiled scene (see :func:`unipixel_sim.scene.build_model`).
        width, height: image size in pixels (at most the model's offscreen buffer size).
        scene: the spec the model was built from, for category/colour/size ground truth.
    """

    def __init__(self, model: mujoco.MjModel, width: int = 640, height: int = 480,
                 scene: Optional[SceneSpec] = None) -> None:
        self.model = model
        self.width, self.height = int(width), int(height)
        self.scene = scene
        self._rgb = mujoco.Renderer(model, self.height, self.width)
        self._depth = mujoco.Renderer(model, self.height, self.width)
        self._depth.enable_depth_rendering()
        self._seg = mujoco.Renderer(model, self.height, self.width)
        self._seg.enable_segmentation_rendering()
        bodies = object_body_ids(model)
        # Lookup table geom id -> instance id (0 = not an object).
        self._geom_instance = np.zeros(model.ngeom, dtype=np.int16)
        for i, body in enumerate(bodies):
            self._geom_instance[model.geom_bodyid == body] = i + 1
        self._bodies = bodies

    def close(self) -> None:
        """Release the GL contexts."""
        for r in (self._rgb, self._depth, self._seg):
            r.close()

    def __enter__(self) -> 'SceneRenderer':
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _camera_id(self, camera: Union[int, str]) -> int:
        if isinstance(camera, str):
            cid = mujoco.mj_name2id(self.model, mujoco.mjtObj.mjOBJ_CAMERA, camera)
            if cid < 0:
                raise KeyError(f'no camera named {camera!r} in the model')
            return cid
        return int(camera)

    def render(self, data: mujoco.MjData, camera: Union[int, str] = 'head') -> Frame:
        """Render ``data`` (kinematics computed, e.g. after mj_forward) from a model camera."""
        cid = self._camera_id(camera)
        for r in (self._rgb, self._depth, self._seg):
            r.update_scene(data, camera=cid)
        rgb = self._rgb.render()
        depth = self._depth.render().astype(np.float32, copy=False)
        seg = self._seg.render()
        # The far plane comes back for empty pixels; report them as "no reading".
        far = self.model.vis.map.zfar * self.model.stat.extent
        depth[depth >= 0.999 * far] = 0.0
        geom_ids, obj_types = seg[..., 0], seg[..., 1]
        is_geom = (obj_types == int(mujoco.mjtObj.mjOBJ_GEOM)) & (geom_ids >= 0)
        instances = np.where(is_geom, self._geom_instance[np.clip(geom_ids, 0, None)],
                             0).astype(np.int16)
        intrinsics = intrinsics_from_fovy(self.model.cam_fovy[cid], self.width, self.height)
        pose = camera_pose(data, cid)
        counts = np.bincount(instances.reshape(-1), minlength=len(self._bodies) + 1)
        return Frame(rgb=rgb, depth=depth, instances=instances, intrinsics=intrinsics,
                     T_world_camera=pose,
                     objects=self._object_truth(data, pose, counts))

    def _object_truth(self, data: mujoco.MjData, T_world_camera: np.ndarray,
                      counts: np.ndarray) -> List[ObjectTruth]:
        T_camera_world = np.linalg.inv(T_world_camera)
        out = []
        for i, body in enumerate(self._bodies):
            pose = np.eye(4)
            pose[:3, :3] = data.xmat[body].reshape(3, 3)
            pose[:3, 3] = data.xpos[body]
            if self.scene is not None:
                obj = self.scene.objects[i]
                names = (obj.category, obj.color, obj.size)
                graspable, extents, volume = obj.graspable, np.array(obj.extents), obj.volume
            else:
                names, graspable, extents, volume = ('', '', ''), False, np.zeros(3), 0.0
            center = pose[:3, :3] @ np.array([0.0, 0.0, extents[2] / 2.0]) + pose[:3, 3]
            out.append(ObjectTruth(
                index=i, category=names[0], color=names[1], size=names[2], graspable=graspable,
                T_world_object=pose, center_world=center,
                center_camera=T_camera_world[:3, :3] @ center + T_camera_world[:3, 3],
                extents=extents, volume=volume, visible_pixels=int(counts[i + 1])))
        return out
