"""The synthetic renderer and the geometry benchmark (timings are reported, not asserted)."""
import json

import numpy as np

from unipixel_ros.perception import GeometryConfig
from unipixel_ros.benchmarks.geometry import bench_geometry
from unipixel_ros.perception.synthetic import (SceneObject, make_benchmark_frame, render_scene)


def test_renderer_is_consistent_with_its_ground_truth():
    scene = render_scene([SceneObject.box((0.0, 0.0), 0.06, 0.04, 0.08, yaw_deg=30.0),
                          SceneObject.cylinder((0.15, 0.05), 0.05, 0.10)], seed=0)
    h, w = scene.depth_m.shape
    assert (h, w) == (480, 640) and scene.rgb.shape == (480, 640, 3)
    assert scene.depth_m.dtype == np.float32 and scene.depth_mm.dtype == np.uint16
    np.testing.assert_allclose(scene.depth_mm / 1000.0, scene.depth_m, atol=0.0005 + 1e-6)
    intr = scene.intrinsics
    v, u = np.mgrid[0:h, 0:w]
    z = scene.depth_m
    pts = np.stack([(u - intr.cx) * z / intr.fx, (v - intr.cy) * z / intr.fy, z], -1)
    # Table pixels lie on the table plane; object pixels inside their solid.
    table = ~(scene.true_masks[0] | scene.true_masks[1])
    assert np.abs(pts[table] @ scene.plane[:3] + scene.plane[3]).max() < 1e-4
    for mask, truth in zip(scene.true_masks, scene.truths):
        assert mask.sum() > 1000
        assert truth.contains(pts[mask], margin=1e-4).all()
    assert np.linalg.norm(scene.plane[:3]) == np.float64(1.0) and scene.plane[3] > 0


def test_sensor_effects():
    objects = [SceneObject.box((0.0, 0.0), 0.06, 0.04, 0.08)]
    clean = render_scene(objects, seed=1)
    noisy = render_scene(objects, noise_sigma=0.002, invalid_fraction=0.1, invalid_value='zero',
                         mask_dilation_px=3, seed=1)
    valid = noisy.depth_m > 0
    assert abs(valid.mean() - 0.9) < 0.01
    assert (noisy.depth_mm[~valid] == 0).all()
    assert abs(np.std(noisy.depth_m[valid] - clean.depth_m[valid]) - 0.002) < 0.0002
    assert noisy.masks[0].sum() > noisy.true_masks[0].sum()
    assert (noisy.masks[0] >= noisy.true_masks[0]).all()
    nan_scene = render_scene(objects, invalid_fraction=0.1, invalid_value='nan', seed=1)
    assert np.isnan(nan_scene.depth_m).mean() > 0.09


def test_benchmark_frame_covers_the_requested_fraction():
    scene = make_benchmark_frame(mask_fraction=0.10, seed=0)
    assert abs(scene.masks[0].mean() - 0.10) < 0.005
    assert min(scene.truths[0].dimensions[:2]) < 0.08  # graspable


def test_bench_geometry_reports_medians_and_config():
    result = bench_geometry(runs=3, warmup=1, seed=0, config=GeometryConfig())
    for key in ('backproject_ms', 'filter_ms', 'grasp_ms', 'total_ms'):
        assert result[key] > 0
    assert result['total_ms'] >= result['filter_ms']
    assert result['points_in'] > 20000 and 0 < result['points_out'] <= result['points_in']
    assert result['image_size'] == [640, 480] and result['runs'] == 3
    assert abs(result['mask_fraction'] - 0.10) < 0.005
    assert result['config']['voxel_size'] == GeometryConfig().voxel_size
    json.dumps(result)
    print(f"\ngeometry total_ms median {result['total_ms']:.2f} ms (3 runs)")


def test_warm_up_runs_the_pipeline():
    from unipixel_ros.perception import warm_up
    assert warm_up() > 0
