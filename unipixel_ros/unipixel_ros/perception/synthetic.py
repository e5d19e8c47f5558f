"""Analytic RGB-D renderer for tests and benchmarks (numpy ray casting, no GL).

A pinhole camera looks down at an infinite table plane (world z = 0, z up) on which boxes (with
a yaw about the vertical) and upright cylinders rest. Every pixel's ray is intersected with every
surface in closed form, so depth, instance masks and ground truth are exact before the optional
sensor effects (Gaussian depth noise, dropped pixels, 16UC1 millimetre quantisation, masks that
bleed onto the table).

Ground truth and the table plane are expressed in the camera optical frame (x right, y down,
z forward, metres), the frame the geometry core works in.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import numpy as np
from scipy import ndimage

from .intrinsics import CameraIntrinsics

#: 640x480 intrinsics close to a RealSense D435 colour stream.
DEFAULT_INTRINSICS = CameraIntrinsics(fx=615.0, fy=615.0, cx=319.5, cy=239.5, width=640,
                                      height=480)


@dataclass(frozen=True)
class SceneObject:
    """An object resting on the table.

    Attributes:
        kind: 'box' or 'cylinder'.
        xy: (2,) centre of the footprint on the table, world metres.
        size: box ``(length, width, height)`` (length along the yawed x axis) or cylinder
            ``(diameter, diameter, height)``, metres.
        yaw_deg: box rotation about the world vertical, degrees (ignored for cylinders).
        color: (3,) uint8 RGB albedo.
    """

    kind: str
    xy: Tuple[float, float]
    size: Tuple[float, float, float]
    yaw_deg: float = 0.0
    color: Tuple[int, int, int] = (200, 40, 40)

    @staticmethod
    def box(xy, length, width, height, yaw_deg=0.0, color=(200, 40, 40)) -> 'SceneObject':
        return SceneObject('box', tuple(xy), (length, width, height), yaw_deg, color)

    @staticmethod
    def cylinder(xy, diameter, height, color=(40, 80, 200)) -> 'SceneObject':
        return SceneObject('cylinder', tuple(xy), (diameter, diameter, height), 0.0, color)


@dataclass(frozen=True)
class SyntheticCamera:
    """Camera placed ``distance`` m from ``target`` (world), ``elevation_deg`` above the table,
    seen from azimuth ``azimuth_deg`` (0 = camera on the world -y side looking towards +y)."""

    intrinsics: CameraIntrinsics = DEFAULT_INTRINSICS
    distance: float = 0.65
    elevation_deg: float = 45.0
    azimuth_deg: float = 0.0
    target: Tuple[float, float, float] = (0.0, 0.0, 0.0)

    def pose(self) -> Tuple[np.ndarray, np.ndarray]:
        """``(R_wc (3, 3), c_w (3,))``: camera-to-world rotation and camera position (world)."""
        el, az = math.radians(self.elevation_deg), math.radians(self.azimuth_deg)
        back = np.array([math.sin(az) * math.cos(el), -math.cos(az) * math.cos(el), math.sin(el)])
        center = np.asarray(self.target, dtype=np.float64) + self.distance * back
        z_c = -back
        x_c = np.cross(z_c, [0.0, 0.0, 1.0])
        x_c /= np.linalg.norm(x_c)
        y_c = np.cross(z_c, x_c)
        return np.stack([x_c, y_c, z_c], axis=1), center


@dataclass
class ObjectTruth:
    """Ground truth of one object, camera optical frame.

    Attributes:
        kind: 'box' or 'cylinder'.
        center: (3,) centre of the object's bounding box, metres.
        dimensions: (3,) footprint length, footprint width, height (metres); a cylinder of
            diameter d has footprint d x d.
        rotation: (3, 3) columns = object axes (length, width, up) in the camera frame.
    """

    kind: str
    center: np.ndarray
    dimensions: np.ndarray
    rotation: np.ndarray

    def contains(self, points: np.ndarray, margin: float = 0.0) -> np.ndarray:
        """Bool (N,): whether camera-frame points (N, 3) lie inside the solid (grown by
        ``margin`` metres)."""
        local = (np.atleast_2d(points) - self.center) @ self.rotation
        half = self.dimensions / 2.0 + margin
        inside_z = np.abs(local[:, 2]) <= half[2]
        if self.kind == 'cylinder':
            return inside_z & (np.hypot(local[:, 0], local[:, 1]) <= half[0])
        return inside_z & np.all(np.abs(local[:, :2]) <= half[:2], axis=1)


@dataclass
class RenderedScene:
    """One rendered RGB-D frame.

    Attributes:
        depth_m: (H, W) float32 metres; invalid pixels are 0 or NaN (see ``invalid_value``).
        depth_mm: (H, W) uint16 millimetres (``16UC1``), 0 = invalid.
        rgb: (H, W, 3) uint8.
        masks: one (H, W) bool instance mask per object (dilated if requested).
        true_masks: the undilated instance masks.
        truths: one :class:`ObjectTruth` per object.
        plane: (4,) table plane ``(a, b, c, d)`` in the camera frame, unit normal pointing
            up (towards the camera, d > 0).
        intrinsics: camera intrinsics.
        camera_pose: ``(R_wc, c_w)`` from :meth:`SyntheticCamera.pose`.
    """

    depth_m: np.ndarray
    depth_mm: np.ndarray
    rgb: np.ndarray
    masks: List[np.ndarray]
    true_masks: List[np.ndarray]
    truths: List[ObjectTruth]
    plane: np.ndarray
    intrinsics: CameraIntrinsics
    camera_pose: Tuple[np.ndarray, np.ndarray] = field(repr=False, default=None)

    def depth(self, encoding: str) -> np.ndarray:
        """The depth image as a camera driver would publish it in ``encoding``."""
        return self.depth_mm if encoding in ('16UC1', 'mono16') else self.depth_m


def _rot_z(yaw: float) -> np.ndarray:
    c, s = math.cos(yaw), math.sin(yaw)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _safe(d: np.ndarray) -> np.ndarray:
    return np.where(np.abs(d) < 1e-12, 1e-12, d)


def _hit_box(o: np.ndarray, d: np.ndarray, obj: SceneObject):
    """Ray parameter t (inf = miss) and world normals for a yawed box resting on z = 0."""
    length, width, height = obj.size
    rot = _rot_z(math.radians(obj.yaw_deg))
    centre = np.array([obj.xy[0], obj.xy[1], height / 2.0])
    o_l = rot.T @ (o - centre)
    d_l = _safe(d @ rot)  # (N, 3): rows are rot.T @ d
    half = np.array([length, width, height]) / 2.0
    t1 = (-half - o_l) / d_l
    t2 = (half - o_l) / d_l
    t_near = np.minimum(t1, t2)
    t_far = np.maximum(t1, t2)
    t_in = t_near.max(axis=1)
    t_out = t_far.min(axis=1)
    hit = (t_in <= t_out) & (t_in > 0)
    t = np.where(hit, t_in, np.inf)
    axis = t_near.argmax(axis=1)
    normal_l = np.zeros_like(d_l)
    rows = np.arange(d_l.shape[0])
    normal_l[rows, axis] = -np.sign(d_l[rows, axis])
    return t, normal_l @ rot.T


def _hit_cylinder(o: np.ndarray, d: np.ndarray, obj: SceneObject):
    """Ray parameter t (inf = miss) and world normals for an upright cylinder on z = 0."""
    radius, height = obj.size[0] / 2.0, obj.size[2]
    ox, oy = o[0] - obj.xy[0], o[1] - obj.xy[1]
    a = d[:, 0] ** 2 + d[:, 1] ** 2
    b = 2.0 * (ox * d[:, 0] + oy * d[:, 1])
    c = ox * ox + oy * oy - radius * radius
    disc = b * b - 4.0 * a * c
    with np.errstate(invalid='ignore', divide='ignore'):
        t_side = (-b - np.sqrt(disc)) / (2.0 * a)
    z_side = o[2] + t_side * d[:, 2]
    side_ok = (disc >= 0) & (t_side > 0) & (z_side >= 0) & (z_side <= height)
    t_top = (height - o[2]) / _safe(d[:, 2])
    px = ox + t_top * d[:, 0]
    py = oy + t_top * d[:, 1]
    top_ok = (t_top > 0) & (px * px + py * py <= radius * radius)
    t_side = np.where(side_ok, t_side, np.inf)
    t_top = np.where(top_ok, t_top, np.inf)
    t = np.minimum(t_side, t_top)
    normal = np.zeros_like(d)
    on_top = t_top <= t_side
    normal[on_top, 2] = 1.0
    hx, hy = ox + t * d[:, 0], oy + t * d[:, 1]
    side = ~on_top & np.isfinite(t)
    normal[side, 0] = hx[side] / radius
    normal[side, 1] = hy[side] / radius
    return t, normal


def render_scene(objects: Sequence[SceneObject], camera: SyntheticCamera = SyntheticCamera(),
                 noise_sigma: float = 0.0, invalid_fraction: float = 0.0,
                 invalid_value: str = 'nan', mask_dilation_px: int = 0,
                 seed: Optional[int] = 0) -> RenderedScene:
    """Ray-cast the table and ``objects``.

    Args:
        objects: objects on the table (keep them apart if their masks are dilated).
        camera: camera placement and intrinsics.
        noise_sigma: std of Gaussian noise added to valid depth, metres.
        invalid_fraction: fraction of pixels (chosen at random) without a depth reading.
        invalid_value: 'nan' or 'zero': how ``depth_m`` marks invalid pixels (``depth_mm``
            always uses 0).
        mask_dilation_px: grow each instance mask by this many pixels (disk), so it bleeds
            onto the table like a real segmentation does.
        seed: random seed for noise and dropouts.
    Returns:
        :class:`RenderedScene`.
    """
    intr = camera.intrinsics
    h, w = intr.height, intr.width
    r_wc, c_w = camera.pose()
    r_cw = r_wc.T
    x_n = np.tile((np.arange(w) - intr.cx) / intr.fx, h)
    y_n = np.repeat((np.arange(h) - intr.cy) / intr.fy, w)
    # With camera-frame ray directions of unit z, the ray parameter t *is* the depth.
    # (Explicit sums: a (N, 3) @ (3, 3) product is slow in multi-threaded BLAS under load.)
    rays_w = x_n[:, None] * r_wc[:, 0] + y_n[:, None] * r_wc[:, 1] + r_wc[:, 2]
    t_best = np.where(rays_w[:, 2] < 0, -c_w[2] / _safe(rays_w[:, 2]), np.inf)
    label = np.full(h * w, -1, dtype=np.int64)
    normals = np.zeros_like(rays_w)
    normals[:, 2] = 1.0
    truths = []
    ray_len2 = np.einsum('ij,ij->i', rays_w, rays_w)
    for i, obj in enumerate(objects):
        if obj.kind not in ('box', 'cylinder'):
            raise ValueError(f'unknown object kind {obj.kind!r}')
        # Only rays passing the object's bounding sphere are intersected exactly.
        centre = np.array([obj.xy[0], obj.xy[1], obj.size[2] / 2.0])
        radius = 0.5 * float(np.linalg.norm(obj.size)) + 1e-6
        to_c = centre - c_w
        along = rays_w[:, 0] * to_c[0] + rays_w[:, 1] * to_c[1] + rays_w[:, 2] * to_c[2]
        near = np.flatnonzero(to_c @ to_c - along * along / ray_len2 <= radius * radius)
        if obj.kind == 'box':
            t, n = _hit_box(c_w, rays_w[near], obj)
            rot_w = _rot_z(math.radians(obj.yaw_deg))
        else:
            t, n = _hit_cylinder(c_w, rays_w[near], obj)
            rot_w = np.eye(3)
        closer = t < t_best[near]
        idx = near[closer]
        t_best[idx] = t[closer]
        label[idx] = i
        normals[idx] = n[closer]
        centre_w = np.array([obj.xy[0], obj.xy[1], obj.size[2] / 2.0])
        truths.append(ObjectTruth(kind=obj.kind, center=r_cw @ (centre_w - c_w),
                                  dimensions=np.array(obj.size, dtype=np.float64),
                                  rotation=r_cw @ rot_w))

    rng = np.random.default_rng(seed)
    depth = t_best.reshape(h, w)
    valid = np.isfinite(depth)
    if noise_sigma > 0:
        depth = depth + rng.normal(0.0, noise_sigma, depth.shape) * valid
    if invalid_fraction > 0:
        valid &= rng.random(depth.shape) >= invalid_fraction
    depth_m = np.where(valid, depth, np.nan if invalid_value == 'nan' else 0.0).astype(np.float32)
    depth_mm = np.where(valid, np.clip(np.round(np.nan_to_num(depth) * 1000.0), 0, 65535),
                        0).astype(np.uint16)

    # Lambertian shading with a light from above and behind the camera, plus a checker table.
    light = np.array([0.3, -0.5, 1.0])
    light /= np.linalg.norm(light)
    lambert = normals[:, 0] * light[0] + normals[:, 1] * light[1] + normals[:, 2] * light[2]
    shade = 0.35 + 0.65 * np.clip(lambert, 0.0, 1.0)
    albedo = np.empty((h * w, 3))
    hit_w = c_w + rays_w * np.where(np.isfinite(t_best), t_best, 0.0)[:, None]
    checker = ((np.floor(hit_w[:, 0] / 0.05) + np.floor(hit_w[:, 1] / 0.05)) % 2)[:, None]
    albedo[:] = np.array([150.0, 120.0, 90.0]) + 20.0 * checker
    for i, obj in enumerate(objects):
        albedo[label == i] = obj.color
    rgb = np.clip(albedo * shade[:, None], 0, 255).astype(np.uint8).reshape(h, w, 3)

    label = label.reshape(h, w)
    true_masks = [label == i for i in range(len(objects))]
    if mask_dilation_px > 0:
        r = int(mask_dilation_px)
        yy, xx = np.mgrid[-r:r + 1, -r:r + 1]
        disk = xx * xx + yy * yy <= r * r
        masks = [ndimage.binary_dilation(m, structure=disk) for m in true_masks]
    else:
        masks = [m.copy() for m in true_masks]
    n_c = r_cw @ np.array([0.0, 0.0, 1.0])
    plane = np.append(n_c, c_w[2])
    return RenderedScene(depth_m=depth_m, depth_mm=depth_mm, rgb=rgb, masks=masks,
                         true_masks=true_masks, truths=truths, plane=plane, intrinsics=intr,
                         camera_pose=(r_wc, c_w))


def make_benchmark_frame(mask_fraction: float = 0.10, seed: int = 0, noise_sigma: float = 0.002,
                         invalid_fraction: float = 0.05,
                         mask_dilation_px: int = 3) -> RenderedScene:
    """A 640x480 frame with one graspable box whose mask covers about ``mask_fraction`` of the
    image (a 6 cm wide, 12 cm tall box whose length is scaled to reach the fraction).

    Returns:
        :class:`RenderedScene` with a single object; ``masks[0]`` is the benchmark mask.
    """
    camera = SyntheticCamera(distance=0.5)
    target = mask_fraction * DEFAULT_INTRINSICS.width * DEFAULT_INTRINSICS.height
    length = 1.1 * mask_fraction  # close for small fractions; refined below

    def render(length_m: float, **kw) -> RenderedScene:
        obj = SceneObject.box((0.0, 0.0), length_m, 0.06, 0.12, yaw_deg=20.0)
        return render_scene([obj], camera, mask_dilation_px=mask_dilation_px, seed=seed, **kw)

    for _ in range(6):
        ratio = target / max(int(render(length).masks[0].sum()), 1)
        if abs(ratio - 1.0) < 0.002:
            break
        length *= float(np.clip(ratio, 0.5, 2.0)) ** 1.2
    return render(length, noise_sigma=noise_sigma, invalid_fraction=invalid_fraction)
