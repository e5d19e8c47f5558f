"""Support plane, voxel grid, cloud filtering and box estimation on constructed clouds."""
import numpy as np
import pytest

from unipixel_ros.perception import (GeometryConfig, GeometryError, ObjectBox,
                                     estimate_object_box, filter_object_cloud, fit_plane, voxelize)
from unipixel_ros.perception.box import min_area_rectangle, plane_basis
from unipixel_ros.perception.cloud import orient_plane, plane_distance

UP = np.array([0.0, -np.sqrt(0.5), -np.sqrt(0.5)])
PLANE = np.append(UP, 0.46)
E1, E2 = plane_basis(UP)


def _on_plane(n, rng, half=0.15, centre=(0.0, 0.0)):
    ab = rng.uniform(-half, half, (n, 2)) + centre
    return (-UP * 0.46 + ab[:, :1] * E1 + ab[:, 1:] * E2).astype(np.float32)


def _box_surface(dims, yaw, rng, n=6000, centre=(0.0, 0.0), faces=('top', 'front', 'side')):
    """Points on the visible faces of a box standing on PLANE (camera-facing faces)."""
    length, width, height = dims
    a1 = np.cos(yaw) * E1 + np.sin(yaw) * E2
    a2 = np.cross(UP, a1)
    base = -UP * 0.46 + centre[0] * E1 + centre[1] * E2
    pts = []
    for face in faces:
        s, t = rng.random((2, n // len(faces)))
        if face == 'top':
            local = np.stack([(s - 0.5) * length, (t - 0.5) * width, np.full_like(s, height)], 1)
        elif face == 'front':
            local = np.stack([(s - 0.5) * length, np.full_like(s, -width / 2), t * height], 1)
        else:
            local = np.stack([np.full_like(s, length / 2), (s - 0.5) * width, t * height], 1)
        pts.append(base + local[:, :1] * a1 + local[:, 1:2] * a2 + local[:, 2:] * UP)
    return np.concatenate(pts).astype(np.float32), (a1, a2)


def test_fit_plane_is_robust_and_faces_the_camera():
    rng = np.random.default_rng(0)
    table = _on_plane(3000, rng) + rng.normal(0, 0.002, (3000, 3)).astype(np.float32)
    clutter = rng.uniform(-0.2, 0.2, (600, 3)).astype(np.float32) + [0, 0, 0.6]
    plane, inliers = fit_plane(np.concatenate([table, clutter]), distance=0.006)
    assert np.degrees(np.arccos(plane[:3] @ UP)) < 0.3
    assert plane[3] == pytest.approx(0.46, abs=0.001) and plane[3] > 0
    assert inliers[:3000].mean() > 0.95
    assert fit_plane(table[:10], distance=0.006, min_inliers=30) is None
    np.testing.assert_allclose(orient_plane(-2 * PLANE), PLANE)
    with pytest.raises(GeometryError, match='degenerate plane'):
        orient_plane([0, 0, 0, 1])


def test_the_same_points_give_the_same_plane():
    """RANSAC is seeded: one frame is never answered two ways (one geometry thread, the node's
    default; open3d's parallel RANSAC draws in thread order)."""
    from unipixel_ros.perception.cloud import set_geometry_threads

    rng = np.random.default_rng(1)
    # two near-equal planes (a table and a tray 8 mm above it): the draw decides between them
    points = np.concatenate([_on_plane(1500, rng), _on_plane(1400, rng) - UP * 0.008,
                             rng.uniform(-0.2, 0.2, (600, 3)).astype(np.float32) + [0, 0, 0.6]])
    set_geometry_threads(1)
    try:
        fits = [fit_plane(points, distance=0.006, iterations=30) for _ in range(12)]
    finally:
        set_geometry_threads(0)
    for plane, inliers in fits[1:]:
        np.testing.assert_array_equal(plane, fits[0][0])
        np.testing.assert_array_equal(inliers, fits[0][1])


def test_voxelize_keeps_the_point_to_voxel_map():
    rng = np.random.default_rng(1)
    points = rng.uniform(0.0, 0.05, (5000, 3)).astype(np.float32)
    colors = rng.integers(0, 256, (5000, 3), dtype=np.uint8)
    grid = voxelize(points, 0.01, colors)
    assert grid.counts.sum() == 5000 and len(grid.centroids) == len(grid.counts) <= 125
    for k in (0, len(grid.counts) // 2, len(grid.counts) - 1):
        members = grid.inverse == k
        np.testing.assert_allclose(grid.centroids[k], points[members].mean(0), atol=1e-6)
        np.testing.assert_allclose(grid.colors[k], colors[members].mean(0), atol=0.51)
    # Same voxels when the grid is too large for the dense lookup table.
    far = points.copy()
    far[0] = [50.0, 50.0, 50.0]
    sparse = voxelize(far, 0.01)
    assert len(sparse.counts) == len(voxelize(far[1:], 0.01).counts) + 1


def _config(**kw):
    return GeometryConfig(**kw)


def test_filter_removes_table_blob_and_outliers():
    rng = np.random.default_rng(2)
    obj, _ = _box_surface((0.06, 0.04, 0.08), 0.3, rng)
    table_bleed = _on_plane(800, rng, half=0.045)
    blob = obj[:300] + np.float32(0.12) * E1.astype(np.float32)  # a separate chunk, 12 cm away
    specks = (obj[:20] + rng.normal(0, 0.05, (20, 3))).astype(np.float32)
    cloud = np.concatenate([obj, table_bleed, blob, specks])
    noise = rng.normal(0, 0.001, cloud.shape).astype(np.float32)
    cloud += noise
    colors = np.zeros(cloud.shape, np.uint8)
    colors[:len(obj)] = (200, 0, 0)
    ring = _on_plane(2000, rng, half=0.12)
    out = filter_object_cloud(cloud, colors, _config(), support_points=ring)
    assert out.plane_source == 'ring'
    assert np.degrees(np.arccos(out.plane[:3] @ UP)) < 0.5
    kept_obj = out.index[out.index < len(obj)]
    assert len(out.index) - len(kept_obj) <= 3          # nothing but the object survives
    heights = plane_distance(obj, PLANE)
    assert len(kept_obj) >= (heights > 0.006 + 0.003).sum()  # all of it above the table band
    np.testing.assert_array_equal(out.points, cloud[out.index])
    np.testing.assert_array_equal(out.colors, colors[out.index])
    assert set(out.timings) == {'plane_ms', 'voxel_ms', 'outlier_ms', 'dbscan_ms'}
    assert len(out.voxel_points) == len(out.voxel_counts) and out.voxel_counts.sum() == len(
        out.points)

    # Without support points the table is found in the object's own cloud.
    out2 = filter_object_cloud(cloud, None, _config())
    assert out2.plane_source == 'object' and out2.colors is None
    assert np.degrees(np.arccos(out2.plane[:3] @ UP)) < 1.0
    assert (out2.index < len(obj)).mean() > 0.99


def test_statistical_outlier_removal_is_available():
    rng = np.random.default_rng(3)
    obj, _ = _box_surface((0.06, 0.04, 0.08), 0.3, rng)
    out = filter_object_cloud(obj, None, _config(outlier_method='statistical'),
                              support_points=_on_plane(2000, rng, half=0.12))
    assert 0.8 * len(obj) < len(out.points) <= len(obj)
    with pytest.raises(GeometryError, match='non-empty'):
        filter_object_cloud(np.zeros((0, 3), np.float32), None, _config())


def test_geometry_threads_bound_open3d_and_keep_the_result():
    import open3d as o3d
    from unipixel_ros.perception import set_geometry_threads

    rng = np.random.default_rng(4)
    obj, _ = _box_surface((0.06, 0.04, 0.08), 0.3, rng)
    support = _on_plane(2000, rng, half=0.12)
    default = filter_object_cloud(obj, None, _config(), support_points=support)
    try:
        set_geometry_threads(1)
        assert o3d.utility.get_max_threads() == 1
        single = filter_object_cloud(obj, None, _config(), support_points=support)
    finally:
        set_geometry_threads(0)
    np.testing.assert_array_equal(single.index, default.index)
    for bad in (-1, 1.5):
        with pytest.raises(GeometryError, match='non-negative integer'):
            set_geometry_threads(bad)


@pytest.mark.parametrize('yaw_deg', [0.0, 20.0, 45.0, 80.0])
def test_gravity_aligned_box_from_a_partial_view(yaw_deg):
    rng = np.random.default_rng(4)
    dims = (0.07, 0.05, 0.09)
    pts, (a1, a2) = _box_surface(dims, np.radians(yaw_deg), rng, n=9000, centre=(0.02, -0.01))
    box = estimate_object_box(pts, PLANE, trim_percent=0.1)
    assert box.gravity_aligned
    np.testing.assert_allclose(box.extent, dims, atol=0.001)
    expected_centre = -UP * 0.46 + 0.02 * E1 - 0.01 * E2 + UP * dims[2] / 2
    np.testing.assert_allclose(box.center, expected_centre, atol=0.001)
    np.testing.assert_allclose(box.rotation[:, 2], UP)
    assert abs(box.rotation[:, 0] @ a1) == pytest.approx(1.0, abs=1e-4)  # long axis found
    np.testing.assert_allclose(box.rotation.T @ box.rotation, np.eye(3), atol=1e-9)
    assert np.linalg.det(box.rotation) == pytest.approx(1.0)
    # The bottom face lies on the plane.
    assert plane_distance(box.corners(), PLANE).min() == pytest.approx(0.0, abs=1e-9)
    assert box.contains(pts, margin=1e-4).mean() > 0.99


def test_min_area_rectangle_angle():
    rng = np.random.default_rng(5)
    xy = rng.uniform(-1, 1, (500, 2)) * [0.05, 0.02]
    theta = np.radians(33.0)
    rot = np.array([[np.cos(theta), -np.sin(theta)], [np.sin(theta), np.cos(theta)]])
    angle = min_area_rectangle(xy @ rot.T)
    assert np.degrees(angle) % 90 == pytest.approx(33.0, abs=0.5)
    assert min_area_rectangle(np.zeros((5, 2))) == 0.0  # degenerate: no hull


def test_oriented_box_without_plane():
    rng = np.random.default_rng(6)
    q = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    local = rng.uniform(-0.5, 0.5, (8000, 3)) * [0.10, 0.06, 0.03]
    pts = local @ q.T + [0.0, 0.0, 0.7]
    box = estimate_object_box(pts, None, trim_percent=0.0)
    assert not box.gravity_aligned
    np.testing.assert_allclose(np.sort(box.extent), [0.03, 0.06, 0.10], atol=0.003)
    np.testing.assert_allclose(box.center, [0.0, 0.0, 0.7], atol=0.002)
    assert np.linalg.det(box.rotation) == pytest.approx(1.0)
    with pytest.raises(GeometryError, match='at least 4'):
        estimate_object_box(pts[:3], None)


def test_box_helpers():
    box = ObjectBox(center=np.array([1.0, 2.0, 3.0]), rotation=np.eye(3),
                    extent=np.array([0.2, 0.4, 0.6]))
    corners = box.corners()
    assert corners.shape == (8, 3)
    np.testing.assert_allclose(corners.min(0), [0.9, 1.8, 2.7])
    assert box.contains(corners, margin=1e-9).all()
    assert not box.contains(np.array([[1.2, 2.0, 3.0]]))[0]
    np.testing.assert_allclose(box.quaternion, [0, 0, 0, 1])
