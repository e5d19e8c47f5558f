"""Object point-cloud filtering: support plane, voxel grid, outlier removal, clustering.

The expensive neighbourhood filters (open3d outlier removal and DBSCAN) run on voxel
centroids, and their verdict is mapped back to every full-resolution point of the voxel.
That keeps the cost bounded by the object's surface area in voxels while the box estimation
still sees every measured point: voxel averaging would otherwise pull the extreme points (and
so the box faces) up to half a voxel inwards.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Dict, Optional, Tuple

import numpy as np

from .errors import GeometryError

_O3D = None


def _o3d():
    """Import open3d on first use: it is slow to import and only the filters need it."""
    global _O3D
    if _O3D is None:
        try:
            import open3d
        except ImportError as exc:  # pragma: no cover - depends on the install
            raise ImportError(
                'open3d is required for point-cloud filtering: pip install open3d-cpu '
                '(x86_64) or open3d') from exc
        _O3D = open3d
    return _O3D


def set_geometry_threads(threads: int) -> None:
    """Bound the CPU threads open3d's filters may use, process-wide (0 = open3d's default).

    The object clouds are a few hundred voxels, too small for parallelism to pay; on a small
    machine the extra worker threads only compete with the model and the ROS executor.
    """
    if int(threads) != threads or threads < 0:
        raise GeometryError(f'geometry threads must be a non-negative integer, got {threads!r}')
    _o3d().utility.set_max_threads(int(threads))


def to_o3d(points: np.ndarray):
    """(N, 3) array -> ``open3d.geometry.PointCloud`` (float64 copy)."""
    o3d = _o3d()
    return o3d.geometry.PointCloud(
        o3d.utility.Vector3dVector(np.ascontiguousarray(points, dtype=np.float64)))


# --------------------------------------------------------------------------- planes

#: seed of open3d's RANSAC sampler, set before every plane fit (see :func:`fit_plane`)
RANSAC_SEED = 0


def orient_plane(plane: np.ndarray) -> np.ndarray:
    """Normalise ``(a, b, c, d)`` to a unit normal with the camera origin on the positive side
    (``d >= 0``), i.e. the normal points from the surface towards the camera."""
    plane = np.asarray(plane, dtype=np.float64).reshape(4)
    norm = np.linalg.norm(plane[:3])
    if not np.isfinite(norm) or norm == 0:
        raise GeometryError(f'degenerate plane {plane}')
    plane = plane / norm
    return -plane if plane[3] < 0 else plane


def plane_distance(points: np.ndarray, plane: np.ndarray) -> np.ndarray:
    """Signed distances (N,) of points (N, 3) to ``plane``, positive on the normal side
    (float32 for float32 points, float64 otherwise)."""
    points = np.asarray(points)
    dtype = np.float32 if points.dtype == np.float32 else np.float64
    plane = np.asarray(plane, dtype=dtype)
    return points.astype(dtype, copy=False) @ plane[:3] + plane[3]


def _refine_plane(points: np.ndarray, plane: np.ndarray, distance: float,
                  rounds: int = 2) -> Tuple[np.ndarray, np.ndarray]:
    """Least-squares re-fit on the RANSAC inliers: RANSAC's three-point model carries the
    noise of three samples, the total-least-squares fit averages all inliers."""
    inliers = np.abs(plane_distance(points, plane)) <= distance
    for _ in range(rounds):
        sel = points[inliers].astype(np.float64)
        if sel.shape[0] < 3:
            break
        centroid = sel.mean(axis=0)
        _, _, vt = np.linalg.svd(sel - centroid, full_matrices=False)
        normal = vt[2]
        plane = orient_plane(np.append(normal, -normal @ centroid))
        inliers = np.abs(plane_distance(points, plane)) <= distance
    return plane, inliers


def fit_plane(points: np.ndarray, distance: float, iterations: int = 100,
              min_inliers: int = 30) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """RANSAC plane (open3d ``segment_plane``) refined by least squares on its inliers.

    The same points give the same plane: open3d's sampler is seeded on every call (the same
    frame must not be answered differently twice). That holds with one geometry thread (the
    node's default, :func:`set_geometry_threads`); with more, open3d's parallel RANSAC draws
    in thread order and may pick another of near-equal planes.

    Args:
        points: (N, 3) metres.
        distance: inlier distance threshold, metres.
        iterations: RANSAC iterations.
        min_inliers: fewer inliers than this -> None.
    Returns:
        ``(plane (4,) float64 oriented towards the camera, inliers (N,) bool)`` or None.
    """
    points = np.asarray(points)
    if points.shape[0] < max(3, min_inliers):
        return None
    _o3d().utility.random.seed(RANSAC_SEED)
    model, idx = to_o3d(points).segment_plane(distance_threshold=float(distance), ransac_n=3,
                                              num_iterations=int(iterations))
    if len(idx) < min_inliers:
        return None
    plane, inliers = _refine_plane(points, orient_plane(np.asarray(model)), distance)
    if np.count_nonzero(inliers) < min_inliers:
        return None
    return plane, inliers


# --------------------------------------------------------------------------- voxels

@dataclass
class VoxelGrid:
    """Voxel down-sampling with the point -> voxel map kept.

    Attributes:
        centroids: (K, 3) float32 mean of the points in each occupied voxel.
        colors: (K, 3) uint8 mean colour, or None.
        counts: (K,) int64 points per voxel.
        inverse: (N,) int64 voxel index of each input point.
    """

    centroids: np.ndarray
    colors: Optional[np.ndarray]
    counts: np.ndarray
    inverse: np.ndarray


def voxelize(points: np.ndarray, voxel_size: float,
             colors: Optional[np.ndarray] = None) -> VoxelGrid:
    """Voxel-grid down-sampling of (N, 3) points (metres) with ``voxel_size`` (metres) cells."""
    points = np.asarray(points)
    if points.shape[0] == 0:
        raise GeometryError('cannot voxelize an empty cloud')
    # Work on (3, N) rows: numpy reductions along axis 0 of an (N, 3) array are strided and
    # several times slower.
    rows = np.ascontiguousarray(points.T)
    lowest = rows.min(axis=1)
    # Non-negative, so truncation is floor.
    idx = ((rows - lowest[:, None]) * (1.0 / voxel_size)).astype(np.int64)
    dims = idx.max(axis=1) + 1
    key = idx[0] + dims[0] * (idx[1] + dims[1] * idx[2])
    cells = int(np.prod(dims))
    if cells <= 2_000_000:
        # A dense lookup table beats sorting (np.unique) for object-sized grids.
        counts_dense = np.bincount(key, minlength=cells)
        occupied = np.flatnonzero(counts_dense)
        lut = np.empty(cells, dtype=np.int64)
        lut[occupied] = np.arange(occupied.size)
        inverse = lut[key]
        counts = counts_dense[occupied]
    else:
        _, inverse, counts = np.unique(key, return_inverse=True, return_counts=True)
    k = counts.size
    centroids = np.empty((k, 3), dtype=np.float32)
    for j in range(3):
        centroids[:, j] = np.bincount(inverse, weights=rows[j], minlength=k) / counts
    mean_colors = None
    if colors is not None:
        color_rows = np.ascontiguousarray(np.asarray(colors).T)
        mean_colors = np.empty((k, 3), dtype=np.uint8)
        for j in range(3):
            mean_colors[:, j] = np.round(
                np.bincount(inverse, weights=color_rows[j], minlength=k) / counts)
    return VoxelGrid(centroids=centroids, colors=mean_colors, counts=counts, inverse=inverse)


# --------------------------------------------------------------------------- filtering

@dataclass
class FilteredCloud:
    """Result of :func:`filter_object_cloud`.

    Attributes:
        points: (M, 3) float32 metres, the full-resolution points kept as the object.
        colors: (M, 3) uint8 or None.
        plane: (4,) float64 support plane ``(a, b, c, d)`` (unit normal towards the camera,
            ``a x + b y + c z + d`` = height above the plane in metres) or None when no plane
            supporting the object was found.
        plane_source: 'ring' (fitted on the support points), 'object' (fitted on the object
            cloud) or None.
        index: (M,) int64 indices of the kept points in the input arrays.
        voxel_points: (K, 3) float32 voxel centroids of the kept points (a light cloud for
            display and for the footprint hull).
        voxel_colors: (K, 3) uint8 or None.
        voxel_counts: (K,) int64 points per kept voxel.
        timings: milliseconds per stage: plane_ms, voxel_ms, outlier_ms, dbscan_ms.
    """

    points: np.ndarray
    colors: Optional[np.ndarray]
    plane: Optional[np.ndarray]
    plane_source: Optional[str]
    index: np.ndarray
    voxel_points: np.ndarray
    voxel_colors: Optional[np.ndarray]
    voxel_counts: np.ndarray
    timings: Dict[str, float] = field(default_factory=dict)


def _support_ok(heights: np.ndarray, config: Any) -> bool:
    """Whether an object with these heights above a plane (metres) rests on it: its lowest
    points must touch the plane (within ``support_max_gap``)."""
    above = heights[heights > config.plane_distance]
    if above.size == 0:
        return True  # everything lies in the plane; handled by the caller
    return float(np.percentile(above, 1.0)) <= config.plane_distance + config.support_max_gap


def _object_plane(points: np.ndarray, config: Any) -> Optional[np.ndarray]:
    """Fallback support plane from the object cloud itself (mask bled onto the table).

    A large plane in the object cloud is only a support if the rest of the cloud sits on its
    camera side; the top or front face of a box fails that test because the rest of the box
    lies behind it. The largest planes are tried in turn (``object_plane_attempts``), since a
    box face seen head-on can hold more voxels than the strip of table the mask bled onto.
    """
    min_inliers = max(config.plane_min_points,
                      int(config.object_plane_min_fraction * points.shape[0]))
    remaining = np.ones(points.shape[0], dtype=bool)
    for _ in range(int(config.object_plane_attempts)):
        fit = fit_plane(points[remaining], config.plane_distance,
                        config.plane_ransac_iterations, min_inliers=min_inliers)
        if fit is None:
            return None
        plane, _ = fit
        dist = plane_distance(points, plane)
        inliers = np.abs(dist) <= config.plane_distance
        rest = dist[~inliers]
        if rest.size >= config.dbscan_min_points and \
                np.mean(rest > config.plane_distance) >= config.object_plane_above_fraction:
            return plane
        remaining &= ~inliers
    return None


def filter_object_cloud(points: np.ndarray, colors: Optional[np.ndarray], config: Any,
                        support_points: Optional[np.ndarray] = None) -> FilteredCloud:
    """Clean a back-projected object cloud.

    Stages: support plane (RANSAC on ``support_points`` if given, otherwise on the object cloud
    if it contains a plane the rest of the object stands on) and removal of points within
    ``plane_distance`` of it or below it; voxel down-sampling; outlier removal (radius or
    statistical); largest DBSCAN cluster (by measured points; if DBSCAN labels everything as
    noise, all voxels are kept). The neighbourhood filters run on voxel centroids and the kept
    voxels' full-resolution points are returned.

    Args:
        points: (N, 3) float32 metres, camera optical frame.
        colors: (N, 3) uint8 or None.
        config: a :class:`~unipixel_ros.perception.pipeline.GeometryConfig` (its voxel,
            outlier, DBSCAN, plane and object_plane fields are used).
        support_points: (S, 3) float32 metres sampled on the surface around the object (see
            :func:`~unipixel_ros.perception.mask_ops.ring_mask`), or None.
    Returns:
        :class:`FilteredCloud`.
    Raises:
        GeometryError: no points, or all points lie on the support plane.
    """
    timings = {}
    points = np.asarray(points)
    if points.ndim != 2 or points.shape[1] != 3 or points.shape[0] == 0:
        raise GeometryError(f'object cloud must be a non-empty (N, 3) array, got {points.shape}')
    n = points.shape[0]

    t0 = time.perf_counter()
    plane, source = None, None
    if support_points is not None and len(support_points) >= config.plane_min_points:
        fit = fit_plane(support_points, config.plane_distance, config.plane_ransac_iterations,
                        config.plane_min_points)
        if fit is not None:
            plane, source = fit[0], 'ring'
    keep = None
    if plane is not None:
        heights = plane_distance(points, plane)
        if _support_ok(heights, config):
            keep = heights > config.plane_distance
        else:
            plane, source = None, None
    timings['plane_ms'] = (time.perf_counter() - t0) * 1e3

    t0 = time.perf_counter()
    index = np.arange(n) if keep is None else np.flatnonzero(keep)
    if index.size == 0:
        raise GeometryError(
            f'all {n} object points lie on the support plane (is the mask on the table?)')
    sub_colors = None if colors is None else np.take(colors, index, axis=0)
    grid = voxelize(np.take(points, index, axis=0), config.voxel_size, sub_colors)
    timings['voxel_ms'] = (time.perf_counter() - t0) * 1e3

    if plane is None and config.object_plane_fallback:
        t0 = time.perf_counter()
        obj_plane = _object_plane(grid.centroids, config)
        if obj_plane is not None:
            heights = plane_distance(points, obj_plane)
            if _support_ok(heights, config):
                index = np.flatnonzero(heights > config.plane_distance)
                if index.size:
                    plane, source = obj_plane, 'object'
                    sub_colors = None if colors is None else np.take(colors, index, axis=0)
                    grid = voxelize(np.take(points, index, axis=0), config.voxel_size,
                                    sub_colors)
        timings['plane_ms'] += (time.perf_counter() - t0) * 1e3

    voxel_keep = np.ones(grid.counts.size, dtype=bool)
    t0 = time.perf_counter()
    pcd = to_o3d(grid.centroids)
    method = config.outlier_method
    if method != 'none' and grid.counts.size > config.dbscan_min_points:
        if method == 'radius':
            _, ind = pcd.remove_radius_outlier(nb_points=int(config.radius_min_neighbors),
                                               radius=float(config.radius_outlier_m))
        else:
            _, ind = pcd.remove_statistical_outlier(nb_neighbors=int(config.sor_neighbors),
                                                    std_ratio=float(config.sor_std_ratio))
        ind = np.asarray(ind, dtype=np.int64)
        if ind.size:
            voxel_keep[:] = False
            voxel_keep[ind] = True
            pcd = pcd.select_by_index(ind)
        else:
            ind = np.arange(grid.counts.size)
    else:
        ind = np.arange(grid.counts.size)
    timings['outlier_ms'] = (time.perf_counter() - t0) * 1e3

    t0 = time.perf_counter()
    if ind.size >= config.dbscan_min_points:
        labels = np.asarray(pcd.cluster_dbscan(eps=float(config.dbscan_eps),
                                               min_points=int(config.dbscan_min_points),
                                               print_progress=False))
        clustered = labels >= 0
        if clustered.any():
            # Largest cluster by measured points, not by voxels: a near surface has denser
            # voxels than a grazing one.
            weight = np.bincount(labels[clustered], weights=grid.counts[ind][clustered])
            best = int(np.argmax(weight))
            voxel_keep[:] = False
            voxel_keep[ind[labels == best]] = True
    timings['dbscan_ms'] = (time.perf_counter() - t0) * 1e3

    point_keep = voxel_keep[grid.inverse]
    index = index[point_keep]
    return FilteredCloud(
        points=np.take(points, index, axis=0),
        colors=None if colors is None else np.take(colors, index, axis=0), plane=plane,
        plane_source=source, index=index, voxel_points=grid.centroids[voxel_keep],
        voxel_colors=None if grid.colors is None else grid.colors[voxel_keep],
        voxel_counts=grid.counts[voxel_keep], timings=timings)
