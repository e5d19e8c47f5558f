"""Timing benchmark of the geometry core on a synthetic 640x480 frame (no ROS, no GPU)."""
from __future__ import annotations

import statistics
from typing import Dict, Optional

import numpy as np

from unipixel_ros.perception.pipeline import GeometryConfig, estimate_object_geometry
from unipixel_ros.perception.synthetic import make_benchmark_frame


def bench_geometry(runs: int = 50, warmup: int = 5, seed: int = 0,
                   mask_fraction: float = 0.10, depth_encoding: str = '16UC1',
                   config: Optional[GeometryConfig] = None) -> Dict[str, object]:
    """Time :func:`estimate_object_geometry` on :func:`make_benchmark_frame`.

    The frame has 2 mm depth noise, 5 % dropped pixels and a mask dilated 3 px onto the table.

    Args:
        runs: timed repetitions (medians are reported).
        warmup: untimed repetitions first (open3d's first call initialises its thread pool).
        seed: scene noise seed.
        mask_fraction: fraction of the image the object mask covers.
        depth_encoding: '16UC1' (uint16 mm) or '32FC1' (float32 m).
        config: pipeline configuration (default :class:`GeometryConfig`).
    Returns:
        JSON-ready dict: medians (ms) of backproject_ms, filter_ms (and its stages plane_ms,
        voxel_ms, outlier_ms, dbscan_ms), box_ms, grasp_ms, total_ms; ``p90_total_ms``;
        medians of points_in, points_out, voxels_out; mask_fraction, image_size [W, H], runs,
        warmup, depth_encoding, seed and the config used.
    """
    config = config or GeometryConfig()
    scene = make_benchmark_frame(mask_fraction=mask_fraction, seed=seed)
    mask = scene.masks[0]
    depth = scene.depth(depth_encoding)
    for _ in range(max(warmup, 0)):
        estimate_object_geometry(mask, depth, depth_encoding, scene.intrinsics, scene.rgb, config)
    samples = []
    for _ in range(max(runs, 1)):
        geo = estimate_object_geometry(mask, depth, depth_encoding, scene.intrinsics, scene.rgb,
                                       config)
        samples.append(geo.timings)
    keys = ('backproject_ms', 'filter_ms', 'plane_ms', 'voxel_ms', 'outlier_ms', 'dbscan_ms',
            'box_ms', 'grasp_ms', 'total_ms')
    out: Dict[str, object] = {k: round(statistics.median(s[k] for s in samples), 3)
                              for k in keys}
    totals = np.array([s['total_ms'] for s in samples])
    out['p90_total_ms'] = round(float(np.percentile(totals, 90)), 3)
    out['points_in'] = int(statistics.median(s['points_in'] for s in samples))
    out['points_out'] = int(statistics.median(s['points_out'] for s in samples))
    out['voxels_out'] = int(statistics.median(s['voxels_out'] for s in samples))
    out['mask_fraction'] = round(float(mask.mean()), 4)
    out['image_size'] = [scene.intrinsics.width, scene.intrinsics.height]
    out['runs'] = int(max(runs, 1))
    out['warmup'] = int(max(warmup, 0))
    out['depth_encoding'] = depth_encoding
    out['seed'] = int(seed)
    out['config'] = config.as_dict()
    return out
