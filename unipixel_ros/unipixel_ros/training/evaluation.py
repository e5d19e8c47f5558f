"""Offline evaluation on a dataset written by ``unipixel-sim generate`` (every split = test data).

Each expression is answered exactly as the node answers a one-off query: the answer step
(:func:`unipixel_ros.inference.answer.answer_frame`: prediction on the full-resolution frame,
the found object's geometry, and, with a metric attribute head loaded, its category and size
re-decided from the measured 3D box), then scored at full resolution against the stored
instance mask with :class:`ReferringMetrics`.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from unipixel_ros.dataset.reader import load_scene, scene_dirs
from unipixel_ros.inference.answer import answer_frame

from .metrics import ReferringMetrics


def evaluate(predictor, data: str | Path, limit_scenes: int = 0, progress: bool = True,
             rewrite=None, split: str | None = None) -> dict:
    """Run ``predictor`` on every expression of every scene under ``data``.

    Args:
        predictor: a :class:`ReferringPredictor`.
        limit_scenes: evaluate only the first N scenes (0 = all), for quick CI checks.
        rewrite: optional callable text -> text (e.g. a paraphraser) applied to each query.
        split: only this split of the dataset ('train', 'val', 'test'; None = every scene).
    Returns:
        ReferringMetrics.summary() plus ``scenes``, ``seconds``, ``ms_per_query``.
    """
    dirs = scene_dirs(data, split)
    if limit_scenes:
        dirs = dirs[:limit_scenes]
    if not dirs:
        raise FileNotFoundError(f'no scenes found under {data}')
    metrics = ReferringMetrics()
    # the geometry only changes the metrics through the metric attribute head: skip it without
    measure = predictor.metric_attributes is not None
    t0, n = time.perf_counter(), 0
    for d in tqdm(dirs, desc='eval', disable=not progress):
        rec = load_scene(d)
        for expr in rec.expressions:
            text = rewrite(expr['text']) if rewrite else expr['text']
            answer = answer_frame(predictor, predictor.encode_text(text), rec.rgb, rec.depth_m,
                                  rec.intrinsics if measure else None)
            pred = answer.prediction
            target = expr.get('target')
            exists = target is not None
            gt = rec.instances == (target + 1) if exists else np.zeros(rec.instances.shape, bool)
            attr_ok = heads = None
            if exists:
                obj = rec.objects[target]
                heads = tuple(pred.attributes[key][0] == obj[key]
                              for key in ('category', 'color', 'size'))
                attr_ok = all(heads)
            metrics.update(expr['type'], pred.mask, pred.found, gt, exists, attr_ok, heads)
            n += 1
    seconds = time.perf_counter() - t0
    result = metrics.summary()
    result.update(scenes=len(dirs), queries=n, seconds=round(seconds, 1),
                  ms_per_query=round(1e3 * seconds / max(n, 1), 1),
                  exists_threshold=predictor.settings.exists_threshold)
    return result


def plot_eval(result: dict, png: str | Path) -> None:
    """Per-type cIoU / Prec@0.5 / accuracy bars -> PNG."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    types = list(result['by_type'])
    keys = ('ciou', 'prec_50', 'target_acc', 'no_target_acc')
    fig, ax = plt.subplots(figsize=(1.6 * len(types) + 2, 4))
    w = 0.8 / len(keys)
    for i, k in enumerate(keys):
        vals = [result['by_type'][t].get(k) or 0 for t in types]
        ax.bar(np.arange(len(types)) + i * w, vals, w, label=k)
    ax.set_xticks(np.arange(len(types)) + 0.4 - w / 2, types)
    ax.set_ylim(0, 100)
    ax.set_ylabel('%')
    ax.set_title(f"overall cIoU {result['ciou']}  Prec@0.5 {result['prec_50']}  "
                 f"no-target acc {result['no_target_acc']}")
    ax.legend(loc='lower right')
    fig.tight_layout()
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)
