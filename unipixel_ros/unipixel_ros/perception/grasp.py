"""Parallel-jaw grasp synthesis from an object box.

Gripper frame convention (all vectors in the camera optical frame, metres):

* ``z`` = approach direction, pointing from the gripper INTO the object;
* ``y`` = jaw closing direction (the fingers move along +-y);
* ``x`` = ``y x z`` (right-handed); its sign is fixed by choosing ``y`` with a non-negative
  camera-x component, since a parallel-jaw grasp is symmetric under a half turn about z.

``position`` is the grasp centre: the point midway between the finger pads, where the object is
clamped (the TCP), always inside the object's box. A pre-grasp pose is
``position - approach * distance``.

Candidates, for a box standing on a support plane with upward normal ``n``:

* ``top``: approach ``-n``, jaws across either footprint axis, centre over the footprint at
  height ``max(h - finger_depth / 2, h / 2)`` (fingers reach ``finger_depth`` down from the top,
  or halfway down a short object).
* ``side``: approach horizontal along +- either footprint axis, jaws across the other footprint
  axis, centre at ``max(h / 2, finger_width / 2 + table_clearance)`` above the table (dropped if
  that is above the object) and ``finger_depth / 2`` inside the entry face. Only approaches from
  the camera-facing half are reachable: ``approach . (box centre - camera) >= 0``, i.e. the
  gripper comes from the side the camera sees (the robot shares the camera's side of the table
  in a typical eye-to-hand set-up, and the unseen back of the object is not measured).

No approach ever comes from below the table (``approach . n <= 0``). Candidates whose object
width across the jaws exceeds ``max_opening`` (or is below ``min_width``) are rejected; the
commanded ``width`` is the object width plus ``width_margin``, clipped to ``max_opening``.
Score: top-down first (1.0 vs 0.5), then narrower grasps (+0.4 * free fraction of the opening),
then side approaches facing the camera more directly (+0.1 * cosine).

Without a support plane (an oriented box of unknown gravity), candidates approach along +- each
box axis from the camera side, jaws across each other axis, and are all of kind ``side``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from .box import ObjectBox
from .errors import GeometryError
from .transforms import quaternion_from_matrix


@dataclass(frozen=True)
class GripperConfig:
    """Parallel-jaw gripper geometry, metres (defaults: Franka Panda hand).

    Attributes:
        max_opening: largest distance between the fingers.
        finger_depth: how far the fingers reach past the palm (the graspable depth).
        width_margin: added to the object width for the commanded pre-grasp opening.
        min_width: smallest object width the fingers can hold.
        finger_width: finger pad size across the jaw plane (along gripper x); a side grasp
            keeps half of it plus ``table_clearance`` above the table.
        table_clearance: minimum gap between a finger and the support plane.
    """

    max_opening: float = 0.08
    finger_depth: float = 0.04
    width_margin: float = 0.01
    min_width: float = 0.0
    finger_width: float = 0.02
    table_clearance: float = 0.005

    def __post_init__(self) -> None:
        for name in ('max_opening', 'finger_depth'):
            if not getattr(self, name) > 0:
                raise GeometryError(f'gripper {name} must be > 0, got {getattr(self, name)}')
        for name in ('width_margin', 'min_width', 'finger_width', 'table_clearance'):
            if not getattr(self, name) >= 0:
                raise GeometryError(f'gripper {name} must be >= 0, got {getattr(self, name)}')
        if self.min_width > self.max_opening:
            raise GeometryError(
                f'gripper min_width {self.min_width} exceeds max_opening {self.max_opening}')


@dataclass(frozen=True)
class GraspCandidate:
    """One parallel-jaw grasp, camera optical frame.

    Attributes:
        position: (3,) grasp centre between the finger pads, metres.
        rotation: (3, 3) gripper frame, columns x, y (jaw closing), z (approach).
        quaternion: (4,) the same rotation as ``(x, y, z, w)``.
        width: commanded opening, metres (``<= max_opening``).
        object_width: object size across the jaws, metres.
        approach: (3,) unit approach direction (= rotation[:, 2]).
        kind: 'top' or 'side'.
        score: ranking score, higher is better.
    """

    position: np.ndarray
    rotation: np.ndarray
    quaternion: np.ndarray
    width: float
    object_width: float
    approach: np.ndarray
    kind: str
    score: float

    @property
    def jaw_axis(self) -> np.ndarray:
        """(3,) unit jaw closing direction (= rotation[:, 1])."""
        return self.rotation[:, 1]

    def pre_grasp_position(self, distance: float = 0.1) -> np.ndarray:
        """(3,) point ``distance`` metres back along the approach, metres."""
        return self.position - self.approach * distance


def _frame(approach: np.ndarray, jaw: np.ndarray) -> np.ndarray:
    z = approach / np.linalg.norm(approach)
    y = jaw - (jaw @ z) * z
    y /= np.linalg.norm(y)
    if y[0] < -1e-9 or (abs(y[0]) <= 1e-9 and y[1] < 0):
        y = -y
    return np.stack([np.cross(y, z), y, z], axis=1)


def synthesize_grasps(box: ObjectBox, plane: Optional[np.ndarray],
                      config: GripperConfig = GripperConfig(),
                      camera_origin: Optional[np.ndarray] = None) -> List[GraspCandidate]:
    """Generate and rank parallel-jaw grasps for ``box`` (see the module docstring).

    Args:
        box: object box, camera frame; gravity-aligned boxes get top and side grasps.
        plane: (4,) support plane (unit normal towards the camera) or None.
        config: gripper geometry.
        camera_origin: (3,) camera position in the box's frame (default: origin).
    Returns:
        Candidates sorted best first (at least one).
    Raises:
        GeometryError: no candidate fits the gripper.
    """
    cam = np.zeros(3) if camera_origin is None else np.asarray(camera_origin, dtype=np.float64)
    view = box.center - cam
    view = view / max(np.linalg.norm(view), 1e-12)
    rot, ext = np.asarray(box.rotation, dtype=np.float64), np.asarray(box.extent, dtype=np.float64)
    up = None
    if plane is not None:
        up = np.asarray(plane[:3], dtype=np.float64)
        up = up / np.linalg.norm(up)
    half_depth = config.finger_depth / 2.0
    candidates: List[GraspCandidate] = []
    too_wide, too_thin = [], []

    def add(position, approach, jaw, obj_width, kind, bonus):
        if obj_width > config.max_opening:
            too_wide.append(obj_width)
            return
        if obj_width < config.min_width:
            too_thin.append(obj_width)
            return
        if up is not None and approach @ up > 1e-6:
            return  # would come from below the support plane
        frame = _frame(approach, jaw)
        score = (1.0 if kind == 'top' else 0.5) \
            + 0.4 * (1.0 - obj_width / config.max_opening) + bonus
        candidates.append(GraspCandidate(
            position=np.asarray(position, dtype=np.float64), rotation=frame,
            quaternion=quaternion_from_matrix(frame),
            width=float(min(obj_width + config.width_margin, config.max_opening)),
            object_width=float(obj_width), approach=frame[:, 2].copy(), kind=kind,
            score=float(score)))

    if box.gravity_aligned:
        n = rot[:, 2]
        h = ext[2]
        ground = box.center - n * (h / 2.0)
        top_height = max(h - half_depth, h / 2.0)
        for j in (0, 1):
            add(ground + n * top_height, -n, rot[:, j], ext[j], 'top', 0.0)
        side_height = max(h / 2.0, config.finger_width / 2.0 + config.table_clearance)
        if side_height <= h:
            for i, j in ((0, 1), (1, 0)):
                for sign in (1.0, -1.0):
                    a = sign * rot[:, i]
                    facing = float(a @ view)
                    if facing < -1e-6:
                        continue
                    inset = max(ext[i] / 2.0 - half_depth, 0.0)
                    add(ground + n * side_height - a * inset, a, rot[:, j], ext[j], 'side',
                        0.1 * max(facing, 0.0))
    else:
        for i in range(3):
            for sign in (1.0, -1.0):
                a = sign * rot[:, i]
                facing = float(a @ view)
                if facing < -1e-6:
                    continue
                inset = max(ext[i] / 2.0 - half_depth, 0.0)
                for j in range(3):
                    if j != i:
                        add(box.center - a * inset, a, rot[:, j], ext[j], 'side',
                            0.1 * max(facing, 0.0))

    if not candidates:
        dims = ' x '.join(f'{e * 100:.1f}' for e in ext)
        if too_wide and not too_thin:
            raise GeometryError(
                f"object is wider than the gripper's maximum opening "
                f'({config.max_opening * 100:.1f} cm) in every graspable direction '
                f'(box {dims} cm)')
        raise GeometryError(
            f'no feasible grasp for box {dims} cm: widths too large '
            f'{[round(float(w) * 100, 1) for w in too_wide]} cm, too small '
            f'{[round(float(w) * 100, 1) for w in too_thin]} cm (gripper opening '
            f'{config.min_width * 100:.1f}..{config.max_opening * 100:.1f} cm)')
    candidates.sort(key=lambda c: -c.score)
    return candidates


def best_grasp(box: ObjectBox, plane: Optional[np.ndarray],
               config: GripperConfig = GripperConfig(),
               camera_origin: Optional[np.ndarray] = None) -> GraspCandidate:
    """The highest-scoring candidate of :func:`synthesize_grasps` (raises the same errors)."""
    return synthesize_grasps(box, plane, config, camera_origin)[0]
