"""Object bounding boxes: gravity-aligned on a support plane, oriented otherwise.

With a support plane the box is built the way a single partial view allows accurately: the
object rests on the plane, so the box bottom *is* the plane, the box height is the highest
point above it, and the footprint is the minimum-area rectangle around the points projected
onto the plane (which the top and camera-facing sides of the object fully determine).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from .errors import GeometryError
from .transforms import quaternion_from_matrix


@dataclass(frozen=True)
class ObjectBox:
    """An oriented box in the camera optical frame.

    Attributes:
        center: (3,) float64 box centre, metres (the object's centre, not the mean of the
            visible points).
        rotation: (3, 3) float64, columns = box axes (right-handed). For a gravity-aligned box
            the columns are (footprint long axis, footprint short axis, plane normal up).
        extent: (3,) float64 full side lengths along those axes, metres.
        gravity_aligned: True if the box stands on a support plane (third axis = plane normal).
    """

    center: np.ndarray
    rotation: np.ndarray
    extent: np.ndarray
    gravity_aligned: bool = False

    @property
    def quaternion(self) -> np.ndarray:
        """(4,) box orientation as a quaternion ``(x, y, z, w)``."""
        return quaternion_from_matrix(self.rotation)

    def corners(self) -> np.ndarray:
        """(8, 3) float64 box corners, metres."""
        signs = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)])
        return self.center + (signs * (self.extent / 2.0)) @ self.rotation.T

    def contains(self, points: np.ndarray, margin: float = 0.0) -> np.ndarray:
        """Bool (N,): points (N, 3) inside the box grown by ``margin`` metres on every side."""
        local = (np.atleast_2d(points) - self.center) @ self.rotation
        return np.all(np.abs(local) <= self.extent / 2.0 + margin, axis=1)


def _trimmed_range(values: np.ndarray, trim_percent: float) -> Tuple[float, float]:
    """(low, high) after dropping ``trim_percent`` % of the values at each end."""
    n = values.shape[0]
    k = int(n * trim_percent / 100.0)
    if k == 0:
        return float(values.min()), float(values.max())
    part = np.partition(values, (k, n - 1 - k))
    return float(part[k]), float(part[n - 1 - k])


def _weighted_top(values: np.ndarray, weights: Optional[np.ndarray],
                  trim_percent: float) -> float:
    """Largest value once ``trim_percent`` % of the total weight is dropped from the top."""
    if weights is None:
        return _trimmed_range(values, trim_percent)[1]
    order = np.argsort(values)[::-1]
    above = np.cumsum(weights[order])
    # First value whose strictly-higher neighbours hold more than the trimmed weight.
    limit = weights.sum() * trim_percent / 100.0
    i = int(np.searchsorted(above, limit, side='right'))
    return float(values[order[min(i, values.size - 1)]])


def plane_basis(normal: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Two unit vectors (3,) spanning the plane orthogonal to unit ``normal``, with
    ``e1 x e2 = normal``; e1 follows the camera x axis where possible."""
    ref = np.array([1.0, 0.0, 0.0])
    if abs(normal @ ref) > 0.9:
        ref = np.array([0.0, 1.0, 0.0])
    e1 = ref - (ref @ normal) * normal
    e1 /= np.linalg.norm(e1)
    return e1, np.cross(normal, e1)


def min_area_rectangle(points_2d: np.ndarray) -> float:
    """Angle (radians, in [0, pi/2)) of the minimum-area rectangle enclosing (N, 2) points.

    Rotating calipers, vectorised: the optimal rectangle has a side collinear with a convex
    hull edge, so every hull edge direction is evaluated at once.
    """
    # scipy.spatial costs ~0.2 s to import; only box estimation needs it.
    from scipy.spatial import ConvexHull, QhullError

    try:
        hull = points_2d[ConvexHull(points_2d).vertices]
    except (QhullError, ValueError):
        return 0.0
    edges = np.roll(hull, -1, axis=0) - hull
    angles = np.unique(np.mod(np.arctan2(edges[:, 1], edges[:, 0]), np.pi / 2))
    c, s = np.cos(angles), np.sin(angles)
    # (A, H) coordinates of every hull vertex along each candidate axis pair.
    u = np.outer(c, hull[:, 0]) + np.outer(s, hull[:, 1])
    v = np.outer(-s, hull[:, 0]) + np.outer(c, hull[:, 1])
    area = (u.max(axis=1) - u.min(axis=1)) * (v.max(axis=1) - v.min(axis=1))
    return float(angles[int(np.argmin(area))])


def refine_rectangle_angle(points_2d: np.ndarray, theta: float, trim_percent: float = 0.5,
                           span_deg: float = 4.0, steps: int = 33,
                           max_points: int = 1000) -> float:
    """Refine a footprint angle (radians) by a coarse-to-fine search around ``theta``.

    The calipers angle comes from a handful of hull vertices, so one noisy vertex can tilt it
    by a few degrees, which inflates the box. Here every point votes: the angle within
    ``+-span_deg`` minimising the area of the trimmed extents wins.

    Args:
        points_2d: (N, 2) footprint coordinates, metres (strided down to ``max_points``).
        theta: initial angle, radians.
        trim_percent: % of points ignored at each extreme.
        span_deg, steps: search window, and the resolution as the number of angles a single
            sweep would need (the two sweeps reach ``2 * span_deg / (steps - 1)``).
    Returns:
        The refined angle, radians.
    """
    q = np.asarray(points_2d, dtype=np.float64)
    if q.shape[0] > max_points:
        q = q[np.linspace(0, q.shape[0] - 1, max_points).astype(np.int64)]
    n = q.shape[0]
    if n < 4 or steps < 2 or span_deg <= 0:
        return theta
    k = int(n * trim_percent / 100.0)

    def best(angles: np.ndarray) -> float:
        c, s = np.cos(angles)[:, None], np.sin(angles)[:, None]
        u = c * q[:, 0] + s * q[:, 1]
        v = c * q[:, 1] - s * q[:, 0]
        pu = np.partition(u, (k, n - 1 - k), axis=1)
        pv = np.partition(v, (k, n - 1 - k), axis=1)
        area = (pu[:, n - 1 - k] - pu[:, k]) * (pv[:, n - 1 - k] - pv[:, k])
        return float(angles[int(np.argmin(area))])

    # Coarse then fine: two small sweeps instead of one dense one.
    coarse_step = 2.0 * span_deg / (steps - 1) * 4
    theta = best(theta + np.radians(np.arange(-span_deg, span_deg + 1e-9, coarse_step)))
    return best(theta + np.radians(np.linspace(-coarse_step, coarse_step, 9)))


def estimate_object_box(points: np.ndarray, plane: Optional[np.ndarray] = None,
                        voxel_points: Optional[np.ndarray] = None,
                        voxel_counts: Optional[np.ndarray] = None,
                        trim_percent: float = 0.2,
                        refine_span_deg: float = 4.0) -> ObjectBox:
    """Estimate the object's box from its (filtered) cloud.

    Args:
        points: (N, 3) metres, camera optical frame, object points only.
        plane: (4,) support plane ``(a, b, c, d)``, unit normal towards the camera, or None.
        voxel_points: optional (K, 3) voxel centroids of the same object (noise-averaged),
            used for the footprint orientation and the top height; defaults to ``points``.
            The footprint extents always come from ``points`` (voxel averaging pulls the
            outermost points inwards by up to half a voxel).
        voxel_counts: optional (K,) points per voxel, weights for the top height.
        trim_percent: percentage of points ignored at each extreme when measuring extents
            (robustness to noise and stray points).
        refine_span_deg: search window of :func:`refine_rectangle_angle` (0 = off).
    Returns:
        :class:`ObjectBox`: gravity-aligned (bottom on the plane) when ``plane`` is given,
        otherwise an oriented box from open3d (PCA axes) with trimmed extents.
    Raises:
        GeometryError: fewer than 4 points, or no point above the plane.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 2 or points.shape[1] != 3 or points.shape[0] < 4:
        raise GeometryError(f'need at least 4 object points for a box, got {points.shape}')
    if plane is None:
        return _oriented_box(points, trim_percent)

    plane = np.asarray(plane, dtype=np.float64)
    normal, offset = plane[:3], plane[3]
    light, weights = points, None
    if voxel_points is not None and len(voxel_points) >= 4:
        light = np.asarray(voxel_points, dtype=np.float64)
        weights = None if voxel_counts is None else np.asarray(voxel_counts, dtype=np.float64)
    # The top is a maximum, which noise biases upwards; voxel centroids average the noise
    # away and, unlike side faces, a top surface is not shrunk by voxel averaging. Weighting
    # voxels by their point count keeps a lone noisy point in its own voxel from setting it.
    top = _weighted_top(light @ normal + offset, weights, trim_percent)
    if top <= 0:
        raise GeometryError('no object point lies above the support plane')
    e1, e2 = plane_basis(normal)
    basis = np.stack([e1, e2], axis=1)
    theta = min_area_rectangle(light @ basis)
    if refine_span_deg > 0:
        theta = refine_rectangle_angle(points @ basis, theta, span_deg=refine_span_deg)
    c, s = np.cos(theta), np.sin(theta)
    a1, a2 = c * e1 + s * e2, -s * e1 + c * e2
    lo1, hi1 = _trimmed_range(points @ a1, trim_percent)
    lo2, hi2 = _trimmed_range(points @ a2, trim_percent)
    len1, len2 = hi1 - lo1, hi2 - lo2
    # Point with plane coordinates (m1, m2) at height top/2: heights are n.p + d.
    center = a1 * (lo1 + hi1) / 2 + a2 * (lo2 + hi2) / 2 + normal * (top / 2 - offset)
    if len2 > len1:
        a1, a2, len1, len2 = a2, -a1, len2, len1
    return ObjectBox(center=center, rotation=np.stack([a1, a2, normal], axis=1),
                     extent=np.array([len1, len2, top]), gravity_aligned=True)


def _oriented_box(points: np.ndarray, trim_percent: float) -> ObjectBox:
    from .cloud import _o3d
    o3d = _o3d()
    obb = o3d.geometry.OrientedBoundingBox.create_from_points(
        o3d.utility.Vector3dVector(points), robust=True)
    rot = np.asarray(obb.R, dtype=np.float64).copy()
    if np.linalg.det(rot) < 0:
        rot[:, 2] = -rot[:, 2]
    local = points @ rot
    lo, hi = np.empty(3), np.empty(3)
    for j in range(3):
        lo[j], hi[j] = _trimmed_range(local[:, j], trim_percent)
    return ObjectBox(center=rot @ ((lo + hi) / 2), rotation=rot, extent=hi - lo,
                     gravity_aligned=False)
