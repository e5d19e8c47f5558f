"""Temporal smoothing of the tracked object across frames, and the lost-target logic.

Free of ROS. Everything is in one fixed frame (the camera optical frame for a static camera:
x right, y down, z forward, metres); quaternions are ``(x, y, z, w)`` and use the gripper frame
of ``grasp.py`` (z = approach axis, y = jaw closing direction).

Each smoothed quantity is an exponential moving average, ``s <- (1 - alpha) * s + alpha * new``:
a larger alpha follows faster, a smaller one smooths more. Rotations average by slerp, after
picking, among the four quaternions of the same parallel-jaw grasp (``q``, ``-q``, and both
signs of ``q`` turned half a turn about the approach axis), the one nearest to the current
estimate. The output therefore never flips by 180 degrees between frames; it is not put back
into ``grasp.py``'s canonical form (jaw axis with non-negative camera-x), which would
reintroduce those flips.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

# Half turn about the gripper's approach axis z, (x, y, z, w): maps a parallel-jaw grasp onto
# itself with the fingers swapped.
_JAW_SWAP = np.array([0.0, 0.0, 1.0, 0.0])


def quaternion_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product ``a * b`` of (4,) ``(x, y, z, w)`` quaternions (rotate by b, then a)."""
    ax, ay, az, aw = a
    bx, by, bz, bw = b
    return np.array([
        aw * bx + ax * bw + ay * bz - az * by,
        aw * by - ax * bz + ay * bw + az * bx,
        aw * bz + ax * by - ay * bx + az * bw,
        aw * bw - ax * bx - ay * by - az * bz,
    ])


def slerp(q0: np.ndarray, q1: np.ndarray, t: float) -> np.ndarray:
    """Spherical interpolation from unit (4,) ``q0`` (t = 0) to unit ``q1`` (t = 1) along the
    arc as given (no sign flip here); returns a unit (4,) quaternion."""
    dot = float(np.clip(q0 @ q1, -1.0, 1.0))
    if dot > 0.9995:  # nearly parallel: sin(theta) ~ 0, a normalised lerp is exact enough
        q = q0 + t * (q1 - q0)
    else:
        theta = np.arccos(dot)
        q = (np.sin((1.0 - t) * theta) * q0 + np.sin(t * theta) * q1) / np.sin(theta)
    return q / np.linalg.norm(q)


def nearest_grasp_quaternion(q: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """The representative of grasp rotation ``q`` nearest to ``reference`` (both unit (4,)).

    Candidates: ``q``, ``-q`` (the same rotation) and ``+-q * Rz(180 deg)`` (the same
    parallel-jaw grasp with the fingers swapped). Nearest = largest ``|q . reference|``, i.e. the
    smallest rotation angle between them, made positive by the sign choice.
    """
    swapped = quaternion_multiply(q, _JAW_SWAP)
    best = q if abs(q @ reference) >= abs(swapped @ reference) else swapped
    return best if best @ reference >= 0 else -best


@dataclass
class TrackState:
    """The tracker's estimate after one ``update``.

    Attributes:
        status: 'tracking' (found this frame and averaged into the track, or the first
            detection), 'reacquired' (found, and smoothing restarted because the target had been
            lost or the detection jumped more than ``max_jump_m``), 'coasting' (not found, fewer
            than ``max_misses`` misses in a row: the last estimate is held) or 'lost'.
        lost: no target is held (nothing found yet, or ``consecutive_misses >= max_misses``).
        consecutive_misses: frames in a row without the target.
        restarted: smoothing restarted from this frame's detection.
        mask_prob: (H, W) float32 smoothed foreground probability in [0, 1], or None.
        centroid: (3,) smoothed object centroid, metres, or None.
        grasp_position: (3,) smoothed grasp centre, metres, or None.
        grasp_quaternion: (4,) smoothed unit gripper rotation ``(x, y, z, w)``, or None.
        grasp_width: smoothed gripper opening, metres, or None.
        stamp_s: stamp of this update, seconds.
        last_seen_s: stamp of the last frame the target was found in, seconds, or None.
    """

    status: str
    lost: bool
    consecutive_misses: int
    restarted: bool
    mask_prob: Optional[np.ndarray]
    centroid: Optional[np.ndarray]
    grasp_position: Optional[np.ndarray]
    grasp_quaternion: Optional[np.ndarray]
    grasp_width: Optional[float]
    stamp_s: float
    last_seen_s: Optional[float]


def _ema(prev: Optional[np.ndarray], new: Optional[np.ndarray], alpha: float):
    if new is None:
        return prev
    if prev is None:
        return new
    return (1.0 - alpha) * prev + alpha * new


def _vector(value, size: int, name: str) -> Optional[np.ndarray]:
    if value is None:
        return None
    v = np.array(value, dtype=np.float64).reshape(-1)
    if v.shape != (size,) or not np.all(np.isfinite(v)):
        raise ValueError(f'{name} must be {size} finite numbers, got {value!r}')
    return v


class ObjectTracker:
    """Smooths one tracked object's mask, centroid and grasp across frames.

    Args:
        mask_alpha: EMA weight of a new mask probability map, in (0, 1].
        pose_alpha: EMA weight of a new centroid, grasp position, rotation and width, in (0, 1].
        max_misses: consecutive frames without the target after which it is lost (>= 1); the
            smoothed state is then dropped and the next detection restarts it.
        max_jump_m: a detection whose centroid is farther than this from the smoothed centroid,
            metres, restarts the smoothing instead of averaging two different objects (> 0).
    """

    def __init__(self, mask_alpha: float = 0.5, pose_alpha: float = 0.3, max_misses: int = 5,
                 max_jump_m: float = 0.10) -> None:
        for name, alpha in (('mask_alpha', mask_alpha), ('pose_alpha', pose_alpha)):
            if not 0.0 < alpha <= 1.0:
                raise ValueError(f'{name} must be in (0, 1], got {alpha}')
        if int(max_misses) != max_misses or max_misses < 1:
            raise ValueError(f'max_misses must be an integer >= 1, got {max_misses}')
        if not max_jump_m > 0:
            raise ValueError(f'max_jump_m must be > 0, got {max_jump_m}')
        self.mask_alpha = float(mask_alpha)
        self.pose_alpha = float(pose_alpha)
        self.max_misses = int(max_misses)
        self.max_jump_m = float(max_jump_m)
        self.reset()

    def reset(self) -> None:
        """Forget the target (e.g. on a new command): the next detection starts a new track."""
        self._has_track = False
        self._was_lost = False
        self._misses = 0
        self._last_seen: Optional[float] = None
        self._clear()

    def _clear(self) -> None:
        self._mask: Optional[np.ndarray] = None
        self._centroid: Optional[np.ndarray] = None
        self._position: Optional[np.ndarray] = None
        self._quaternion: Optional[np.ndarray] = None
        self._width: Optional[float] = None

    def update(self, found: bool, mask_prob: Optional[np.ndarray] = None,
               centroid: Optional[np.ndarray] = None,
               grasp_position: Optional[np.ndarray] = None,
               grasp_quaternion: Optional[np.ndarray] = None,
               grasp_width: Optional[float] = None, stamp_s: float = 0.0) -> TrackState:
        """Fold one frame's result into the track.

        Args:
            found: the target was detected in this frame (the other inputs are then used).
            mask_prob: (H, W) foreground probability in [0, 1], or None.
            centroid: (3,) object centroid, metres, or None.
            grasp_position: (3,) grasp centre, metres, or None (together with the quaternion).
            grasp_quaternion: (4,) gripper rotation ``(x, y, z, w)``, any norm > 0, or None.
            grasp_width: gripper opening, metres, or None.
            stamp_s: frame stamp, seconds.

        A None input of a found frame keeps that quantity's previous estimate (e.g. a frame
        whose cloud was too small for a grasp still updates the mask).

        Raises:
            ValueError: malformed inputs (wrong shapes, non-finite values, a zero quaternion, a
                grasp position without its rotation or the other way round).
        """
        if not found:
            self._misses += 1
            if self._has_track and self._misses >= self.max_misses:
                self._has_track, self._was_lost = False, True
                self._clear()
            return self._state('coasting' if self._has_track else 'lost', False, stamp_s)

        mask = None if mask_prob is None else np.asarray(mask_prob, dtype=np.float32)
        if mask is not None and mask.ndim != 2:
            raise ValueError(f'mask_prob must be (H, W), got shape {mask.shape}')
        centroid = _vector(centroid, 3, 'centroid')
        position = _vector(grasp_position, 3, 'grasp_position')
        quaternion = _vector(grasp_quaternion, 4, 'grasp_quaternion')
        if (position is None) != (quaternion is None):
            raise ValueError('grasp_position and grasp_quaternion must be given together')
        if quaternion is not None:
            norm = np.linalg.norm(quaternion)
            if norm < 1e-9:
                raise ValueError('grasp_quaternion has zero norm')
            quaternion = quaternion / norm
        width = None if grasp_width is None else float(grasp_width)

        jumped = (self._has_track and centroid is not None and self._centroid is not None
                  and np.linalg.norm(centroid - self._centroid) > self.max_jump_m)
        restart = not self._has_track or jumped
        status = 'reacquired' if jumped or (restart and self._was_lost) else 'tracking'
        self._misses = 0
        self._last_seen = stamp_s
        if restart:
            self._clear()
            self._has_track, self._was_lost = True, False

        if mask is not None and self._mask is not None and mask.shape == self._mask.shape:
            self._mask = (1.0 - self.mask_alpha) * self._mask + self.mask_alpha * mask
        elif mask is not None:
            self._mask = mask.copy()
        a = self.pose_alpha
        self._centroid = _ema(self._centroid, centroid, a)
        self._position = _ema(self._position, position, a)
        self._width = _ema(self._width, width, a)
        if quaternion is not None and self._quaternion is not None:
            nearest = nearest_grasp_quaternion(quaternion, self._quaternion)
            self._quaternion = slerp(self._quaternion, nearest, a)
        elif quaternion is not None:
            self._quaternion = quaternion
        return self._state(status, restart, stamp_s)

    def _state(self, status: str, restarted: bool, stamp_s: float) -> TrackState:
        # Estimates are replaced, never modified in place, so the state can share them.
        return TrackState(
            status=status, lost=not self._has_track, consecutive_misses=self._misses,
            restarted=restarted, mask_prob=self._mask, centroid=self._centroid,
            grasp_position=self._position, grasp_quaternion=self._quaternion,
            grasp_width=self._width, stamp_s=stamp_s, last_seen_s=self._last_seen)
