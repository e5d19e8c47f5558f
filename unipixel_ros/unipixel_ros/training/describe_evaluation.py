"""Region -> words, measured: click every object of a dataset and check the description.

For each object whose category and colour the model's vocabulary can name, one click at its most
interior pixel (the largest distance to the mask's border, as a person clicks the middle of an
object) goes through :func:`~unipixel_ros.inference.answer.answer_frame` as a point query, as
``unipixel/describe`` runs it (attributes refined by the metric head when there is one). The
description is right when category and colour both match the ground truth.

Calibration: answers are binned by their confidence (``Prediction.description_confidence``,
p(category) x p(colour)); each bin's accuracy should match its mean confidence. The expected
calibration error (ECE) is the count-weighted mean of |accuracy - confidence| over the bins.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from scipy import ndimage
from tqdm import tqdm

from unipixel_ros.dataset.reader import load_scene, scene_dirs
from unipixel_ros.inference.answer import answer_frame

#: confidence bin edges of the calibration table
BIN_EDGES = (0.0, 0.2, 0.4, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0)
#: objects with fewer visible pixels are not clicked (a person could not click them either)
MIN_PIXELS = 50


def click_pixel(mask: np.ndarray) -> tuple[int, int]:
    """(u, v) of the mask pixel farthest from its border. ``mask``: (H, W) bool, not empty."""
    dist = ndimage.distance_transform_edt(np.pad(mask, 1))[1:-1, 1:-1]
    v, u = np.unravel_index(int(np.argmax(dist)), dist.shape)
    return int(u), int(v)


def calibration(confidence: np.ndarray, correct: np.ndarray,
                edges: tuple = BIN_EDGES) -> dict:
    """Accuracy by confidence bin and the ECE (percent).

    Args:
        confidence: (N,) in [0, 1]; correct: (N,) bool.
    Returns:
        {'bins': [{'low', 'high', 'count', 'confidence', 'accuracy'}], 'ece': float}.
    """
    confidence = np.asarray(confidence, np.float64)
    correct = np.asarray(correct, bool)
    bins, ece = [], 0.0
    for k, (low, high) in enumerate(zip(edges[:-1], edges[1:])):
        last = k == len(edges) - 2
        sel = (confidence >= low) & ((confidence <= high) if last else (confidence < high))
        n = int(sel.sum())
        entry = {'low': low, 'high': high, 'count': n, 'confidence': None, 'accuracy': None}
        if n:
            conf, acc = float(confidence[sel].mean()), float(correct[sel].mean())
            entry.update(confidence=round(100 * conf, 2), accuracy=round(100 * acc, 2))
            ece += n * abs(acc - conf)
        bins.append(entry)
    return {'bins': bins, 'ece': round(100 * ece / max(len(confidence), 1), 2)}


def evaluate_describe(predictor, data: str | Path, split: str | None = None,
                      limit_scenes: int = 0, progress: bool = True) -> dict:
    """Describe every nameable object of ``data`` (one click each).

    Returns:
        {'objects', 'found', 'category_color_acc' (both right, over every click, percent),
         'category_acc', 'color_acc', 'calibration' (see :func:`calibration`), 'seconds'}.
        A click answered "not found" counts as wrong.
    """
    vocab = predictor.vocab
    dirs = scene_dirs(data, split)
    if limit_scenes:
        dirs = dirs[:limit_scenes]
    if not dirs:
        raise FileNotFoundError(f'no scenes under {data} (split {split})')
    confidence, both, cat_ok, col_ok, found = [], [], [], [], 0
    t0 = time.perf_counter()
    for d in tqdm(dirs, desc=f'describe {Path(data).name}', disable=not progress):
        rec = load_scene(d)
        h, w = rec.instances.shape
        for i, obj in enumerate(rec.objects):
            if obj.get('category') not in vocab['categories'] or \
                    obj.get('color') not in vocab['colors']:
                continue
            mask = rec.instances == i + 1
            if mask.sum() < MIN_PIXELS:
                continue
            u, v = click_pixel(mask)
            answer = answer_frame(predictor, predictor.encode_point(u, v, w, h), rec.rgb,
                                  rec.depth_m, rec.intrinsics)
            pred = answer.prediction
            ok_cat = pred.found and pred.attributes['category'][0] == obj['category']
            ok_col = pred.found and pred.attributes['color'][0] == obj['color']
            found += int(pred.found)
            cat_ok.append(ok_cat)
            col_ok.append(ok_col)
            both.append(ok_cat and ok_col)
            confidence.append(pred.description_confidence() if pred.found else 0.0)
    n = len(both)

    def pct(values) -> float | None:
        return round(100.0 * float(np.mean(values)), 2) if values else None

    return {'objects': n, 'found': found, 'category_color_acc': pct(both),
            'category_acc': pct(cat_ok), 'color_acc': pct(col_ok),
            'calibration': calibration(np.array(confidence), np.array(both, bool)),
            'scenes': len(dirs), 'seconds': round(time.perf_counter() - t0, 1)}


def plot_calibration(result: dict, png: str | Path) -> None:
    """Reliability diagram: accuracy against mean confidence per bin, with counts."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    bins = [b for b in result['calibration']['bins'] if b['count']]
    fig, ax = plt.subplots(figsize=(5.5, 5))
    ax.plot([0, 100], [0, 100], '--', color='grey', label='calibrated')
    ax.plot([b['confidence'] for b in bins], [b['accuracy'] for b in bins], 'o-',
            label=f"model (ECE {result['calibration']['ece']:.1f})")
    for b in bins:
        ax.annotate(str(b['count']), (b['confidence'], b['accuracy']), fontsize=8,
                    xytext=(4, -10), textcoords='offset points')
    ax.set_xlabel('mean confidence p(category) x p(colour), %')
    ax.set_ylabel('category and colour right, %')
    ax.set_title(f"describe: {result['category_color_acc']}% of {result['objects']} clicks right")
    ax.set_xlim(0, 100)
    ax.set_ylim(0, 100)
    ax.legend(loc='upper left')
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)
