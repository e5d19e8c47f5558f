"""Dataset evaluation of the referring resolver (``unipixel-ros eval-dataset --candidates``).

Measures :func:`unipixel_ros.inference.resolver.resolve_referring` on the scenes of a dataset:

- ``candidates='oracle'``: the proposals of each concept are the ground-truth instance masks of
  its category (score 1, presence 1 when there is one, 0 otherwise; a generic noun such as
  "object" gets every instance). This plays the role of a perfect SAM 3 and measures the
  resolver alone.
- ``candidates='sam3'``: the proposals come from a SAM 3 predictor
  (``backends.sam3.create_sam3_predictor``), one vision pass per scene and one decoder pass
  per concept.
- ``candidates='unipixel'``: the default model's own instance candidates, named by its
  category head (:class:`~.instance_candidates.UnipixelInstanceProposer`), one image pass per
  scene.

Reported per expression type: P@0.5 of positives (IoU of the answered mask with the target
mask >= 0.5; 'ambiguous' and 'not_there' answers count as misses), the status counts, and for
expressions without a target the no-target accuracy (answered 'not_there'). On top, every
positive expression whose disambiguating words are dropped so that two or more clearly
visible objects match (position, superlative and relation phrases lose their constraint;
attribute phrases with a colour or size lose it) is asked again: the ambiguity rate is the
share answered 'ambiguous'.
"""
from __future__ import annotations

import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
from tqdm import tqdm

from unipixel_ros.dataset.reader import load_scene, scene_dirs
from unipixel_ros.inference.resolver import (DEFAULT_RESOLVER_SETTINGS, Proposals,
                                             ResolverSettings, resolve_referring)
from unipixel_ros.language.concepts import parse_referring

CANDIDATE_SOURCES = ('oracle', 'sam3', 'unipixel')
#: objects with fewer visible pixels do not count as a second referent of an ambiguous phrase
AMBIGUOUS_MIN_PIXELS = 400
_SIZE_WORD = {'small': 'small', 'medium': 'medium-sized', 'large': 'large'}


def oracle_proposals(instances: np.ndarray, objects: list, concepts: list) -> dict:
    """{concept phrase: Proposals} from ground truth (see the module docstring).

    Args:
        instances: (H, W) int instance image, 0 = background, i + 1 = ``objects[i]``.
        objects: per-object ground-truth dicts (``category``).
        concepts: :class:`Concept` list (``Referring.concepts()``).
    """
    present = np.unique(instances)
    out = {}
    for concept in concepts:
        ids = [i for i, o in enumerate(objects) if (i + 1) in present and (
            concept.category is None or o['category'] == concept.category)]
        masks = (np.stack([instances == i + 1 for i in ids]) if ids
                 else np.zeros((0,) + instances.shape, bool))
        out[concept.phrase] = Proposals(masks, np.ones(len(ids), np.float32),
                                        1.0 if ids else 0.0)
    return out


def _matches(obj: dict, desc: dict) -> bool:
    """The dataset's own reading of a description (category, colour / colour terms, size /
    relative size), to count how many objects an ambiguous phrase fits."""
    if desc.get('category') is not None and obj['category'] != desc['category']:
        return False
    color = desc.get('color')
    if color is not None and color != obj['color'] and color not in obj.get('color_terms', ()):
        return False
    size = desc.get('size')
    return size is None or obj.get('size_relative', obj['size']) == size


def ambiguous_variants(expression: dict, objects: list) -> list:
    """Texts made ambiguous on purpose from one positive expression (may be empty).

    Returns:
        [(text, n_matching)]: the target description alone (constraint dropped), or an
        attribute description without its colour or size, kept when at least two objects with
        ``AMBIGUOUS_MIN_PIXELS`` visible pixels match it.
    """
    structure = expression.get('structure') or {}
    if expression.get('target') is None or not structure:
        return []
    desc = dict(structure['target'])
    options = []
    if structure['type'] in ('position', 'superlative', 'relation'):
        options.append(desc)
    elif structure['type'] == 'attribute':
        for key in ('color', 'size'):
            if desc.get(key) and (desc.get('category') or key == 'size'):
                options.append(dict(desc, **{key: None}))
    out = []
    for d in options:
        visible = [o for o in objects if _matches(o, d)
                   and o.get('visible_pixels', 0) >= AMBIGUOUS_MIN_PIXELS]
        if len(visible) >= 2:
            words = ([_SIZE_WORD[d['size']]] if d.get('size') else []) + (
                [d['color']] if d.get('color') else []) + [d.get('category') or 'object']
            out.append(('the ' + ' '.join(words), len(visible)))
    return out


class _TypeStats:
    def __init__(self) -> None:
        self.n = 0
        self.hit = 0
        self.status = Counter()

    def summary(self, positive: bool) -> dict:
        d = {'n': self.n, 'status': dict(self.status)}
        if positive:
            d['prec_50'] = round(100.0 * self.hit / max(self.n, 1), 2)
        else:
            d['no_target_acc'] = round(100.0 * self.status['not_there'] / max(self.n, 1), 2)
        return d


def evaluate_resolver(data: str | Path, split: str | None = None,
                      candidates: str = 'oracle',
                      settings: ResolverSettings = DEFAULT_RESOLVER_SETTINGS,
                      limit_scenes: int = 0, progress: bool = True, sam3_predictor=None,
                      failures: list | None = None, proposer=None) -> dict:
    """Resolve every expression of every scene under ``data`` (see the module docstring).

    Args:
        data: dataset folder; split: 'train' | 'val' | 'test' | 'shifted' | None (all).
        candidates: 'oracle', 'sam3' (then ``sam3_predictor`` is required) or 'unipixel'
            (then ``proposer``, a :class:`~.instance_candidates.UnipixelInstanceProposer`).
        settings: the resolver's thresholds.
        limit_scenes: only the first N scenes (0 = all).
        failures: when a list, every wrong answer is appended as a dict (for tuning on val).
    Returns:
        {'by_type': {type: {n, prec_50 | no_target_acc, status}}, 'by_inner_type': ...,
         'positive': {...}, 'no_target': {...}, 'ambiguous': {n, rate, status},
         'scenes', 'queries', 'seconds', 'ms_per_scene', 'settings', 'candidates'}.
    """
    if candidates not in CANDIDATE_SOURCES:
        raise ValueError(f'candidates must be one of {CANDIDATE_SOURCES}, got {candidates!r}')
    if candidates == 'sam3' and sam3_predictor is None:
        raise ValueError("candidates='sam3' needs a SAM 3 predictor")
    if candidates == 'unipixel' and proposer is None:
        raise ValueError("candidates='unipixel' needs an instance proposer")
    dirs = scene_dirs(data, split)
    if split == 'shifted' or (not dirs and split is None):
        dirs = sorted(p for p in (Path(data) / 'shifted').iterdir()
                      if (p / 'meta.json').is_file()) if split == 'shifted' else dirs
    if limit_scenes:
        dirs = dirs[:limit_scenes]
    if not dirs:
        raise FileNotFoundError(f'no scenes found under {data} (split {split})')
    by_type, by_inner = defaultdict(_TypeStats), defaultdict(_TypeStats)
    positive, no_target, ambiguous = _TypeStats(), _TypeStats(), _TypeStats()
    t0, n = time.perf_counter(), 0

    def answer(rec, text, measured, image):
        referring = parse_referring(text)
        concepts = referring.concepts()
        if candidates == 'oracle':
            props = oracle_proposals(rec.instances, rec.objects, concepts)
        elif candidates == 'unipixel':
            props = {c.phrase: proposer.propose(image, c) for c in concepts}
        else:
            props = {}
            for c in concepts:
                cands = sam3_predictor.decode(image, sam3_predictor.encode_text(c.phrase))
                props[c.phrase] = Proposals(cands.masks, cands.scores, cands.presence)
        return resolve_referring(referring, props, rec.rgb, rec.depth_m, rec.intrinsics,
                                 settings, measured=measured)

    for d in tqdm(dirs, desc='resolve', disable=not progress):
        rec = load_scene(d)
        measured: dict = {}
        image = (sam3_predictor.encode_image(rec.rgb) if candidates == 'sam3' else
                 proposer.encode_image(rec.rgb) if candidates == 'unipixel' else None)
        asked = set()
        for expr in rec.expressions:
            res = answer(rec, expr['text'], measured, image)
            target = expr.get('target')
            exists = target is not None
            ok = False
            if exists:
                gt = rec.instances == target + 1
                if res.found:
                    inter = np.logical_and(gt, res.mask).sum()
                    union = np.logical_or(gt, res.mask).sum()
                    ok = union > 0 and inter / union >= 0.5
            else:
                ok = res.status == 'not_there'
            for stats in (by_type[expr['type']], by_inner[expr['inner_type']],
                          positive if exists else no_target):
                stats.n += 1
                stats.hit += int(ok)
                stats.status[res.status] += 1
            if not ok and failures is not None:
                failures.append({'scene': rec.scene_id, 'text': expr['text'],
                                 'type': expr['inner_type'], 'target': target,
                                 'status': res.status, 'reason': res.reason,
                                 'question': res.question})
            n += 1
            for text, count in ambiguous_variants(expr, rec.objects):
                if text in asked:
                    continue
                asked.add(text)
                res = answer(rec, text, measured, image)
                ambiguous.n += 1
                ambiguous.hit += int(res.status == 'ambiguous')
                ambiguous.status[res.status] += 1
                if res.status != 'ambiguous' and failures is not None:
                    failures.append({'scene': rec.scene_id, 'text': text, 'type': 'ambiguous',
                                     'matching': count, 'status': res.status,
                                     'reason': res.reason})
    seconds = time.perf_counter() - t0
    return {
        'candidates': candidates,
        'by_type': {k: v.summary(k != 'absent') for k, v in sorted(by_type.items())},
        'by_inner_type': {k: v.summary(k != 'absent') for k, v in sorted(by_inner.items())},
        'positive': positive.summary(True),
        'no_target': no_target.summary(False),
        'ambiguous': {'n': ambiguous.n, 'rate': round(100.0 * ambiguous.hit
                                                      / max(ambiguous.n, 1), 2),
                      'status': dict(ambiguous.status)},
        'scenes': len(dirs), 'queries': n, 'seconds': round(seconds, 1),
        'ms_per_scene': round(1e3 * seconds / len(dirs), 1),
        'settings': settings.to_dict(),
    }


def plot_resolver_eval(result: dict, png: str | Path) -> None:
    """Per inner type P@0.5, no-target accuracy and ambiguity rate -> PNG."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    names, values = [], []
    for k, v in result['by_inner_type'].items():
        names.append(k if k != 'absent' else 'no target')
        values.append(v.get('prec_50', v.get('no_target_acc')) or 0)
    names.append('ambiguous')
    values.append(result['ambiguous']['rate'])
    fig, ax = plt.subplots(figsize=(1.3 * len(names) + 2, 3.8))
    bars = ax.bar(names, values, color=['C0'] * (len(names) - 2) + ['C2', 'C1'])
    for b, v in zip(bars, values):
        ax.text(b.get_x() + b.get_width() / 2, v + 0.5, f'{v:.1f}', ha='center', fontsize=8)
    ax.axhline(97, color='grey', lw=0.8, ls='--')
    ax.set_ylim(0, 105)
    ax.set_ylabel('% (P@0.5 / no-target acc / "ambiguous")')
    ax.set_title(f"resolver, {result['candidates']} candidates, {result['scenes']} scenes")
    fig.tight_layout()
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=110)
    plt.close(fig)
