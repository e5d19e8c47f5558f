"""Offline evaluation on a dataset written by ``unipixel-sim generate`` (every split = test data).

Each expression is answered exactly as the node answers a one-off query: the answer step
(:func:`unipixel_ros.inference.answer.answer_frame`: prediction on the full-resolution frame,
the found object's geometry, and, with a metric attribute head loaded, its category and size
re-decided from the measured 3D box), then scored at full resolution against the stored
instance mask with :class:`ReferringMetrics`.

Attributes are scored only for targets whose category, colour and size are in the model's
vocabularies (a randomized distractor is an 'object', possibly 'brown' or 'grey'); such
targets still count for every mask and found / not-found metric.

Scenes of the randomized generator name their held-out factor values (``meta.json``
``factors['held_out']``: texture, lighting, camera_profile, elevation_deg, distance_m,
shape_variant, color_extended, pattern, language); :func:`evaluate` then also reports the
metrics ``by_held_out`` factor. :func:`evaluate_many` runs several datasets / splits with one
loaded model and :func:`plot_comparison` draws them side by side.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from tqdm import tqdm

from unipixel_ros.dataset.reader import load_scene, scene_dirs
from unipixel_ros.dataset.vocab import CATEGORIES, COLORS, SIZES
from unipixel_ros.inference.answer import answer_frame

from .metrics import ReferringMetrics, bootstrap_intervals


def evaluate(predictor, data: str | Path, limit_scenes: int = 0, progress: bool = True,
             rewrite=None, split: str | None = None) -> dict:
    """Run ``predictor`` on every expression of every scene under ``data``.

    Args:
        predictor: a :class:`ReferringPredictor`.
        limit_scenes: evaluate only the first N scenes (0 = all), for quick CI checks.
        rewrite: optional callable text -> text (e.g. a paraphraser) applied to each query.
        split: only this split of the dataset ('train', 'val', 'test'; None = every scene).
    Returns:
        ReferringMetrics.summary() plus ``scenes``, ``queries``, ``seconds``, ``ms_per_query``
        and ``intervals`` (95% scene-bootstrap intervals, :func:`bootstrap_intervals`).
    """
    dirs = scene_dirs(data, split)
    if limit_scenes:
        dirs = dirs[:limit_scenes]
    if not dirs:
        raise FileNotFoundError(f'no scenes found under {data}')
    metrics = ReferringMetrics()
    by_factor: dict[str, ReferringMetrics] = {}
    has_factors = False
    # the geometry only changes the metrics through the metric attribute head: skip it without
    measure = predictor.metric_attributes is not None
    t0, n = time.perf_counter(), 0
    for d in tqdm(dirs, desc=f'eval {Path(data).name}:{split or "all"}', disable=not progress):
        rec = load_scene(d)
        has_factors = has_factors or 'factors' in rec.meta
        for expr in rec.expressions:
            text = rewrite(expr['text']) if rewrite else expr['text']
            answer = answer_frame(predictor, predictor.encode_text(text), rec.rgb, rec.depth_m,
                                  rec.intrinsics if measure else None)
            pred = answer.prediction
            target = expr.get('target')
            exists = target is not None
            gt = rec.instances == (target + 1) if exists else np.zeros(rec.instances.shape, bool)
            attr_ok = heads = None
            # a target named outside the model's vocabularies (randomized distractors 'object',
            # colours 'brown', 'grey') cannot be described right: its attributes are not scored
            if exists and _in_vocabulary(rec.objects[target]):
                obj = rec.objects[target]
                heads = tuple(pred.attributes[key][0] == obj[key]
                              for key in ('category', 'color', 'size'))
                attr_ok = all(heads)
            metrics.update(expr['type'], pred.mask, pred.found, gt, exists, attr_ok, heads,
                           scene=str(rec.scene_id))
            for factor in held_out_factors(rec.meta, expr):
                by_factor.setdefault(factor, ReferringMetrics()).update(
                    expr['type'], pred.mask, pred.found, gt, exists, attr_ok, heads)
            n += 1
    seconds = time.perf_counter() - t0
    result = metrics.summary()
    result['intervals'] = bootstrap_intervals(metrics.records)
    result.update(scenes=len(dirs), queries=n, seconds=round(seconds, 1),
                  ms_per_query=round(1e3 * seconds / max(n, 1), 1),
                  exists_threshold=predictor.settings.exists_threshold)
    if has_factors:
        result['by_held_out'] = {k: by_factor[k].summary() for k in sorted(by_factor)}
    return result


def _in_vocabulary(obj: dict) -> bool:
    """Whether the object's category, colour and size are all words the model's heads know."""
    return (obj.get('category') in CATEGORIES and obj.get('color') in COLORS
            and obj.get('size') in SIZES)


#: Bucket of the expressions whose scene has no held-out factor value and whose wording is
#: from training (every expression of an in-distribution randomized dataset).
NO_HELD_OUT = 'none'


def held_out_factors(meta: dict, expr: dict) -> list[str]:
    """The held-out factors one expression is evaluated under.

    Scene-level: every factor in ``meta['factors']['held_out']`` (the generator names a factor
    there when the scene drew a held-out value for it; for the object factors shape_variant,
    color_extended and pattern that is any object of the scene, not necessarily the target).
    'language' is decided per expression: its ``held_out_words`` are not empty. An expression
    with none of them is in :data:`NO_HELD_OUT`. Scenes without ``factors`` (the default
    generator) give [].
    """
    factors = meta.get('factors')
    if not factors:
        return []
    names = [f for f in factors.get('held_out', []) if f != 'language']
    if expr.get('held_out_words'):
        names.append('language')
    return names or [NO_HELD_OUT]


#: Splits a ``--data DIR:SPLIT`` source may name; 'all' = train + val + test.
SOURCE_SPLITS = ('train', 'val', 'test', 'shifted', 'all')


def parse_source(text: str, default_split: str | None = None) -> tuple[str, str, str | None]:
    """``[LABEL=]DIR[:SPLIT]`` -> (label, DIR, split or None for train + val + test).

    SPLIT is one of :data:`SOURCE_SPLITS` (a colon followed by anything else stays part of
    DIR); without it ``default_split`` applies. The label defaults to ``DIR-name:split``.
    """
    label = None
    if '=' in text:
        label, text = text.split('=', 1)
    data, split = text, default_split
    head, sep, tail = text.rpartition(':')
    if sep and head and tail in SOURCE_SPLITS:
        data, split = head, tail
    split = None if split in (None, 'all') else split
    return label or f"{Path(data).name}:{split or 'all'}", data, split


def evaluate_many(predictor, sources: list, limit_scenes: int = 0, progress: bool = True,
                  rewrite=None) -> dict:
    """:func:`evaluate` on several (label, data, split) sources with one loaded model.

    Returns:
        ``{'datasets': {label: result}, 'order': [labels]}``; each result is :func:`evaluate`'s
        dict plus ``data`` and ``split`` ('all' for train + val + test), and, with ``rewrite``,
        ``paraphrase`` (the headline metrics of the reworded queries).
    """
    out: dict = {'datasets': {}, 'order': []}
    for label, data, split in sources:
        if label in out['datasets']:
            raise ValueError(f'two sources are labelled {label!r}')
        result = evaluate(predictor, data, limit_scenes=limit_scenes, progress=progress,
                          split=split)
        if rewrite is not None:
            reworded = evaluate(predictor, data, limit_scenes=limit_scenes, progress=progress,
                                rewrite=rewrite, split=split)
            result['paraphrase'] = {k: reworded[k] for k in HEADLINE}
        result.update(data=str(data), split=split or 'all')
        out['datasets'][label] = result
        out['order'].append(label)
    return out


#: Metrics of the side-by-side table and the first chart panel (percent).
HEADLINE = ('ciou', 'miou', 'prec_50', 'target_acc', 'no_target_acc')


def comparison_table(comparison: dict) -> str:
    """Plain-text table: overall headline metrics, then P@0.5 / cIoU / accuracies by expression
    type and P@0.5 / target / no-target accuracy by held-out factor, one column per source."""
    order = comparison['order']
    res = [comparison['datasets'][k] for k in order]
    width = max(12, *(len(k) + 2 for k in order))
    lines = ['metric'.ljust(28) + ''.join(k.rjust(width) for k in order)]

    def fmt(v):
        text = '-' if v is None else (str(v) if isinstance(v, int) else f'{v:.1f}')
        return text.rjust(width)

    def row(name, values):
        if any(v is not None for v in values):
            lines.append(name.ljust(28) + ''.join(fmt(v) for v in values))

    row('queries', [r['queries'] for r in res])
    for key in HEADLINE + ('attribute_acc',):
        row(key, [r.get(key) for r in res])
    types = sorted({t for r in res for t in r['by_type']})
    for key in ('samples', 'prec_50', 'ciou', 'target_acc', 'no_target_acc'):
        for t in types:
            row(f'{t} {key}', [r['by_type'].get(t, {}).get(key) for r in res])
    factors = sorted({f for r in res for f in r.get('by_held_out', {})})
    for f in factors:
        for key in ('samples', 'prec_50', 'ciou', 'target_acc', 'no_target_acc'):
            row(f'held-out {f} {key}', [r.get('by_held_out', {}).get(f, {}).get(key)
                                        for r in res])
    return '\n'.join(lines)


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


def plot_comparison(comparison: dict, png: str | Path) -> None:
    """Side-by-side chart of :func:`evaluate_many` -> PNG.

    Panels: headline metrics per source; P@0.5 by expression type (absent: no-target
    accuracy); cIoU by expression type; P@0.5 / target / no-target accuracy by held-out factor
    for every source that has them (n = queries in the bucket).
    """
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    order = comparison['order']
    res = [comparison['datasets'][k] for k in order]
    # a source whose every query is in 'none' (in-distribution) has nothing to break down
    with_factors = [(k, r) for k, r in zip(order, res)
                    if set(r.get('by_held_out') or ()) - {NO_HELD_OUT}]
    rows = 3 + len(with_factors)
    fig, axes = plt.subplots(rows, 1, figsize=(11, 3.3 * rows))
    w = 0.8 / max(len(order), 1)

    def grouped(ax, groups, series, labels, title):
        for i, (vals, label) in enumerate(zip(series, labels)):
            x = np.arange(len(groups)) + i * w
            heights = [v or 0 for v in vals]
            bars = ax.bar(x, heights, w, label=label)
            for b, v in zip(bars, vals):
                if v is not None:
                    ax.text(b.get_x() + b.get_width() / 2, b.get_height() + 1, f'{v:.0f}',
                            ha='center', va='bottom', fontsize=6)
        ax.set_xticks(np.arange(len(groups)) + w * (len(series) - 1) / 2, groups, fontsize=8)
        ax.set_ylim(0, 125)
        ax.set_ylabel('%')
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=7, loc='upper center', ncol=len(series))

    grouped(axes[0], list(HEADLINE), [[r.get(k) for k in HEADLINE] for r in res],
            [f"{k} (n={r['queries']})" for k, r in zip(order, res)], 'overall')
    types = sorted({t for r in res for t in r['by_type']})

    def by_type(r, t, key):
        b = r['by_type'].get(t, {})
        return b.get('no_target_acc') if t == 'absent' else b.get(key)

    grouped(axes[1], types, [[by_type(r, t, 'prec_50') for t in types] for r in res], order,
            'P@0.5 by expression type (absent: no-target accuracy)')
    grouped(axes[2], types, [[by_type(r, t, 'ciou') for t in types] for r in res], order,
            'cIoU by expression type (absent: no-target accuracy)')
    for ax, (label, r) in zip(axes[3:], with_factors):
        factors = list(r['by_held_out'])
        keys = ('prec_50', 'target_acc', 'no_target_acc')
        for i, key in enumerate(keys):
            vals = [r['by_held_out'][f].get(key) for f in factors]
            ax.bar(np.arange(len(factors)) + i * 0.8 / len(keys), [v or 0 for v in vals],
                   0.8 / len(keys), label=key)
        ax.set_xticks(np.arange(len(factors)) + 0.8 / len(keys),
                      [f"{f}\n(n={r['by_held_out'][f]['samples']})" for f in factors], fontsize=7)
        ax.set_ylim(0, 125)
        ax.set_ylabel('%')
        ax.set_title(f'{label}: by held-out factor of the scene (language: of the expression)',
                     fontsize=10)
        ax.legend(fontsize=7, loc='upper center', ncol=len(keys))
    fig.tight_layout()
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100)
    plt.close(fig)
