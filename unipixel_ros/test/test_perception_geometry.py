"""Accuracy of the geometry pipeline on analytic RGB-D scenes with known ground truth.

Sensor model: 2 mm Gaussian depth noise, 5 % dropped pixels, masks dilated 3 px onto the table.
"""
import numpy as np
import pytest

from unipixel_ros.perception import (GeometryConfig, GeometryError, estimate_object_geometry,
                                     matrix_from_quaternion)
from unipixel_ros.perception.mask_ops import dilate_mask
from unipixel_ros.perception.synthetic import SceneObject, SyntheticCamera, render_scene

DISTRACTOR = SceneObject.cylinder((0.2, 0.1), 0.05, 0.10)
SCENES = {
    'box_yaw0': [SceneObject.box((0.0, 0.0), 0.06, 0.04, 0.08, yaw_deg=0.0), DISTRACTOR],
    'box_yaw30': [SceneObject.box((-0.05, 0.03), 0.07, 0.05, 0.05, yaw_deg=30.0), DISTRACTOR],
    'box_yaw65': [SceneObject.box((0.04, -0.04), 0.05, 0.03, 0.10, yaw_deg=65.0), DISTRACTOR],
    'cylinder_centre': [SceneObject.cylinder((0.0, 0.0), 0.06, 0.10)],
    'cylinder_left_far': [SceneObject.cylinder((-0.1, 0.08), 0.05, 0.12)],
}
SEEDS = (0, 1)
CENTRE_TOL = 0.003
DIM_TOL = 0.005

_cache = {}


def _scene(name, seed):
    key = (name, seed)
    if key not in _cache:
        _cache[key] = render_scene(SCENES[name], noise_sigma=0.002, invalid_fraction=0.05,
                                   mask_dilation_px=3, seed=seed)
    return _cache[key]


def _dims(extent):
    """Sorted footprint (long, short) then height."""
    return np.array([max(extent[0], extent[1]), min(extent[0], extent[1]), extent[2]])


@pytest.mark.parametrize('encoding', ['16UC1', '32FC1'])
@pytest.mark.parametrize('seed', SEEDS)
@pytest.mark.parametrize('name', sorted(SCENES))
def test_box_centre_dimensions_and_grasp(name, seed, encoding):
    scene = _scene(name, seed)
    truth = scene.truths[0]
    geo = estimate_object_geometry(scene.masks[0], scene.depth(encoding), encoding,
                                   scene.intrinsics, scene.rgb)

    assert geo.plane is not None and geo.plane_source == 'ring'
    assert np.degrees(np.arccos(min(1.0, geo.plane[:3] @ scene.plane[:3]))) < 1.0
    assert abs(geo.plane[3] - scene.plane[3]) < 0.002

    centre_err = np.linalg.norm(geo.centroid - truth.center)
    dim_err = np.abs(_dims(geo.box.extent) - _dims(truth.dimensions))
    assert centre_err <= CENTRE_TOL, f'centre error {centre_err * 1e3:.2f} mm'
    assert np.all(dim_err <= DIM_TOL), f'dimension errors {dim_err * 1e3} mm'
    np.testing.assert_allclose(geo.centroid, geo.box.center)
    assert geo.box.gravity_aligned
    np.testing.assert_allclose(geo.box.rotation.T @ geo.box.rotation, np.eye(3), atol=1e-9)
    assert np.linalg.det(geo.box.rotation) == pytest.approx(1.0)

    # The filtered cloud is the object: no table or distractor points survive.
    inside = truth.contains(geo.points, margin=0.003)
    assert inside.mean() > 0.995
    assert geo.points.dtype == np.float32 and geo.colors.dtype == np.uint8
    assert geo.points.shape == geo.colors.shape and geo.pixels.shape == (len(geo.points), 2)
    assert 0 < geo.timings['points_out'] <= geo.timings['points_in']

    best = geo.best_grasp
    assert best is geo.grasps[0]
    assert truth.contains(best.position[None])[0], 'grasp centre outside the object'
    assert best.width <= 0.08
    for grasp in geo.grasps:
        # Never from below the table: exactly w.r.t. the estimated plane, and within the plane
        # estimate's angular error (< 1 degree) w.r.t. the true one.
        assert grasp.approach @ geo.plane[:3] <= 1e-9, 'approach from below the table'
        assert grasp.approach @ scene.plane[:3] <= np.sin(np.radians(1.0))
        assert grasp.width <= 0.08
        np.testing.assert_allclose(matrix_from_quaternion(grasp.quaternion), grasp.rotation,
                                   atol=1e-9)
    assert [g.score for g in geo.grasps] == sorted((g.score for g in geo.grasps), reverse=True)


def test_each_instance_mask_yields_its_own_object():
    scene = _scene('box_yaw30', 0)
    for mask, truth in zip(scene.masks, scene.truths):
        geo = estimate_object_geometry(mask, scene.depth_mm, '16UC1', scene.intrinsics)
        assert np.linalg.norm(geo.centroid - truth.center) <= CENTRE_TOL
        assert truth.contains(geo.points, margin=0.003).mean() > 0.995


@pytest.mark.parametrize('elevation_deg,distance', [(30.0, 0.7), (70.0, 0.55)])
def test_other_viewpoints(elevation_deg, distance):
    camera = SyntheticCamera(distance=distance, elevation_deg=elevation_deg, azimuth_deg=20.0)
    scene = render_scene([SceneObject.box((0.0, 0.0), 0.06, 0.04, 0.08, yaw_deg=10.0)], camera,
                         noise_sigma=0.002, invalid_fraction=0.05, mask_dilation_px=3, seed=3)
    truth = scene.truths[0]
    geo = estimate_object_geometry(scene.masks[0], scene.depth_m, '32FC1', scene.intrinsics)
    assert np.linalg.norm(geo.centroid - truth.center) <= CENTRE_TOL
    assert np.all(np.abs(_dims(geo.box.extent) - _dims(truth.dimensions)) <= DIM_TOL)
    assert truth.contains(geo.best_grasp.position[None])[0]


@pytest.mark.parametrize('size', [(0.03, 0.03, 0.03), (0.04, 0.015, 0.02)])
def test_small_objects(size):
    # ~1300-1800 masked pixels, ~40-70 voxels: the filters must not eat a small object.
    scene = render_scene([SceneObject.box((0.02, 0.01), *size, yaw_deg=25.0)],
                         noise_sigma=0.002, invalid_fraction=0.05, mask_dilation_px=3, seed=0)
    truth = scene.truths[0]
    geo = estimate_object_geometry(scene.masks[0], scene.depth_mm, '16UC1', scene.intrinsics)
    assert np.linalg.norm(geo.centroid - truth.center) <= CENTRE_TOL
    assert np.all(np.abs(_dims(geo.box.extent) - _dims(truth.dimensions)) <= DIM_TOL)
    assert truth.contains(geo.best_grasp.position[None])[0]


def _without_ring_depth(scene, mask):
    depth = scene.depth_m.copy()
    depth[dilate_mask(mask, 20) & ~mask] = np.nan
    return depth


def test_support_plane_falls_back_to_the_object_cloud():
    # No depth around the mask, but the mask bleeds far onto the table: the support plane must
    # come from the object cloud itself, and the table part must not end up in the box.
    scene = render_scene([SceneObject.box((0.0, 0.0), 0.06, 0.04, 0.08, yaw_deg=30.0)],
                         noise_sigma=0.002, invalid_fraction=0.05, mask_dilation_px=12, seed=0)
    truth = scene.truths[0]
    geo = estimate_object_geometry(scene.masks[0], _without_ring_depth(scene, scene.masks[0]),
                                   '32FC1', scene.intrinsics)
    assert geo.plane_source == 'object'
    assert np.linalg.norm(geo.centroid - truth.center) <= CENTRE_TOL
    assert np.all(np.abs(_dims(geo.box.extent) - _dims(truth.dimensions)) <= DIM_TOL)


def test_box_top_face_is_not_mistaken_for_a_support_plane():
    # No ring, no bleed: the largest plane in the cloud is the box's top face, which must not
    # be taken as the table (the rest of the box lies below it).
    scene = render_scene([SceneObject.box((0.0, 0.0), 0.07, 0.06, 0.04, yaw_deg=30.0)],
                         noise_sigma=0.002, seed=0)
    truth = scene.truths[0]
    mask = scene.true_masks[0]
    geo = estimate_object_geometry(mask, _without_ring_depth(scene, mask), '32FC1',
                                   scene.intrinsics)
    assert geo.plane is None and not geo.box.gravity_aligned
    # An oriented box of the visible surface (extremes trimmed by 0.2 % per side): it holds the
    # points and its centre lies inside the object.
    assert geo.box.contains(geo.points).mean() > 0.98
    assert geo.box.contains(geo.points, margin=0.002).mean() > 0.995
    assert truth.contains(geo.box.center[None], margin=0.003)[0]
    assert geo.best_grasp is not None and geo.best_grasp.kind == 'side'
    assert geo.best_grasp.approach @ (geo.box.center / np.linalg.norm(geo.box.center)) > 0


def test_wide_flat_object_returns_geometry_without_grasp():
    scene = render_scene([SceneObject.box((0.0, 0.0), 0.12, 0.10, 0.03, yaw_deg=20.0)],
                         noise_sigma=0.002, invalid_fraction=0.05, mask_dilation_px=3, seed=0)
    geo = estimate_object_geometry(scene.masks[0], scene.depth_mm, '16UC1', scene.intrinsics)
    assert geo.grasps == [] and geo.best_grasp is None
    assert "wider than the gripper's maximum opening" in geo.grasp_error
    assert np.linalg.norm(geo.centroid - scene.truths[0].center) <= CENTRE_TOL


def test_mask_entirely_on_the_table_is_reported():
    scene = _scene('box_yaw0', 0)
    mask = np.zeros_like(scene.masks[0])
    mask[400:440, 100:160] = True  # bare table, far from both objects
    with pytest.raises(GeometryError, match='lie on the support plane'):
        estimate_object_geometry(mask, scene.depth_mm, '16UC1', scene.intrinsics)


def test_config_validation():
    with pytest.raises(GeometryError, match='voxel_size'):
        GeometryConfig(voxel_size=0.0)
    with pytest.raises(GeometryError, match='outlier_method'):
        GeometryConfig(outlier_method='magic')
    with pytest.raises(GeometryError, match='min_depth'):
        GeometryConfig(min_depth=2.0, max_depth=1.0)
    assert GeometryConfig().as_dict()['gripper']['max_opening'] == 0.08
