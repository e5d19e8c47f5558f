"""RefCOCO-style referring segmentation metrics.

* mIoU: mean of per-sample IoU over samples that have a target.
* cIoU (overall IoU): sum of intersections / sum of unions over those samples.
* Prec@X: fraction of targeted samples with IoU > X.
* no-target accuracy: fraction of absent-object queries answered "not found";
  target accuracy: fraction of present-object queries answered "found" (at the threshold used).
* attribute accuracy (``attribute_acc``): category, colour and size all correct, over the found
  objects: present targets answered "found" whose mask is on the target (IoU > 0.5). A mask on
  the wrong object is a selection error (it already lowers Prec@0.5 and cIoU); its attributes
  describe that other object. ``attribute_acc_found`` counts every "found" answer instead, and
  ``attribute_head_acc`` gives category / colour / size separately over the found objects.
A present target predicted "not found" counts as IoU 0 (its mask is treated as empty).

:func:`bootstrap_intervals` gives each metric's spread over scenes: the queries of one scene
are not independent (same image, same objects), so scenes, not queries, are resampled.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class SampleRecord:
    """One evaluated query: its scene, expression type, whether the target exists, the
    answer, and intersection / union in pixels (0 / 0 for an absent target)."""
    scene: str
    expr_type: str
    exists: bool
    found: bool
    inter: float
    union: float


@dataclass
class _Bucket:
    inter: float = 0.0
    union: float = 0.0
    ious: list = field(default_factory=list)
    absent_total: int = 0
    absent_correct: int = 0
    present_total: int = 0
    present_found: int = 0
    attr_total: int = 0          # found and IoU > 0.5
    attr_correct: int = 0
    attr_found_total: int = 0    # found, any IoU
    attr_found_correct: int = 0
    head_correct: list = field(default_factory=lambda: [0, 0, 0])


class ReferringMetrics:
    """Accumulates per-sample results, overall and per expression type."""

    def __init__(self) -> None:
        self.buckets: dict[str, _Bucket] = defaultdict(_Bucket)
        #: one :class:`SampleRecord` per update, for :func:`bootstrap_intervals`
        self.records: list[SampleRecord] = []

    def update(self, expr_type: str, pred_mask: np.ndarray, found: bool, gt_mask: np.ndarray,
               exists: bool, attributes_correct: bool | None = None,
               heads_correct: tuple | None = None, scene: str = '') -> float | None:
        """Add one sample; masks are (H, W) bool at the same (full) resolution. Returns its IoU.

        ``attributes_correct``: all three predicted attributes equal the target's;
        ``heads_correct``: (category, colour, size) correct each (optional); ``scene``: the
        sample's scene id (the unit :func:`bootstrap_intervals` resamples)."""
        iou = None
        inter = union = 0.0
        for bucket in (self.buckets['all'], self.buckets[expr_type]):
            if exists:
                pred = pred_mask if found else np.zeros_like(gt_mask)
                inter = float(np.logical_and(pred, gt_mask).sum())
                union = float(np.logical_or(pred, gt_mask).sum())
                iou = inter / union if union > 0 else 0.0
                bucket.inter += inter
                bucket.union += union
                bucket.ious.append(iou)
                bucket.present_total += 1
                bucket.present_found += int(found)
                if found and attributes_correct is not None:
                    bucket.attr_found_total += 1
                    bucket.attr_found_correct += int(attributes_correct)
                    if iou > 0.5:
                        bucket.attr_total += 1
                        bucket.attr_correct += int(attributes_correct)
                        for j, ok in enumerate(heads_correct or ()):
                            bucket.head_correct[j] += int(ok)
            else:
                bucket.absent_total += 1
                bucket.absent_correct += int(not found)
        self.records.append(SampleRecord(scene, expr_type, exists, bool(found), inter, union))
        return iou

    @staticmethod
    def _summary(b: _Bucket) -> dict:
        ious = np.asarray(b.ious, dtype=np.float64)

        def pct(num, den):
            return round(100.0 * num / den, 2) if den else None

        return {
            'samples': b.present_total + b.absent_total,
            'targets': b.present_total,
            'absent': b.absent_total,
            'miou': round(100.0 * ious.mean(), 2) if len(ious) else None,
            'ciou': pct(b.inter, b.union),
            'prec_50': pct((ious > 0.5).sum(), len(ious)),
            'prec_70': pct((ious > 0.7).sum(), len(ious)),
            'prec_90': pct((ious > 0.9).sum(), len(ious)),
            'target_acc': pct(b.present_found, b.present_total),
            'no_target_acc': pct(b.absent_correct, b.absent_total),
            'attribute_acc': pct(b.attr_correct, b.attr_total),
            'attribute_acc_found': pct(b.attr_found_correct, b.attr_found_total),
            'attribute_head_acc': {name: pct(n, b.attr_total) for name, n in
                                   zip(('category', 'color', 'size'), b.head_correct)},
        }

    def summary(self) -> dict:
        """Overall metrics (percent) at the top level plus ``by_type``."""
        result = self._summary(self.buckets['all'])
        result['by_type'] = {k: self._summary(v) for k, v in sorted(self.buckets.items())
                             if k != 'all'}
        return result


#: the metrics :func:`bootstrap_intervals` covers (the ones a regression guard checks)
BOOTSTRAP_METRICS = ('ciou', 'prec_50', 'target_acc', 'no_target_acc')


def bootstrap_intervals(records: list[SampleRecord], resamples: int = 2000, level: float = 0.95,
                        seed: int = 0) -> dict:
    """Percentile intervals of :data:`BOOTSTRAP_METRICS` (percent), overall and per type.

    Scenes are drawn with replacement (``resamples`` times, each as many scenes as there are);
    every query of a drawn scene counts once per draw.

    Returns:
        ``{group: {metric: [low, high]}}`` with group ``'all'`` or an expression type; a metric
        a group cannot have (no absent queries for ``no_target_acc``) is left out.
    """
    if not records:
        return {}
    scenes = sorted({r.scene for r in records})
    index = {s: i for i, s in enumerate(scenes)}
    rng = np.random.default_rng(seed)
    # (resamples, scenes): how often each scene is drawn in each resample
    weights = rng.multinomial(len(scenes), np.full(len(scenes), 1.0 / len(scenes)),
                              size=resamples).astype(np.float64)
    q = (1.0 - level) / 2.0
    out: dict = {}
    for group in ['all'] + sorted({r.expr_type for r in records}):
        rows = [r for r in records if group == 'all' or r.expr_type == group]
        per_scene = np.zeros((len(scenes), 7))   # inter, union, targets, iou>.5, found, absent, rejected
        for r in rows:
            i = index[r.scene]
            if r.exists:
                iou = r.inter / r.union if r.union > 0 else 0.0
                per_scene[i] += (r.inter, r.union, 1, iou > 0.5, r.found, 0, 0)
            else:
                per_scene[i] += (0, 0, 0, 0, 0, 1, not r.found)
        tot = weights @ per_scene                   # (resamples, 7)
        with np.errstate(invalid='ignore', divide='ignore'):
            values = {'ciou': tot[:, 0] / tot[:, 1], 'prec_50': tot[:, 3] / tot[:, 2],
                      'target_acc': tot[:, 4] / tot[:, 2], 'no_target_acc': tot[:, 6] / tot[:, 5]}
        has = {'ciou': per_scene[:, 2].sum() > 0, 'prec_50': per_scene[:, 2].sum() > 0,
               'target_acc': per_scene[:, 2].sum() > 0, 'no_target_acc': per_scene[:, 5].sum() > 0}
        out[group] = {}
        for name in BOOTSTRAP_METRICS:
            if not has[name]:
                continue
            v = values[name][np.isfinite(values[name])]
            out[group][name] = [round(100.0 * float(np.quantile(v, q)), 2),
                                round(100.0 * float(np.quantile(v, 1.0 - q)), 2)]
    return out
