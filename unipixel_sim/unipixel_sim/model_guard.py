"""The CI guard of the shipped model: fixed fixtures, a pinned checkpoint, per-type thresholds.

``unipixel-sim model-guard`` evaluates a checkpoint on the guard's fixtures (small generated
datasets with fixed seeds, never used for training), derives a threshold for every metric of
every expression type from scene-bootstrap intervals, checks the previous model against them,
and writes everything the test needs to one JSON file (``unipixel_sim/test/model_guard.json``):

* the checkpoint's and its metric attribute head's sha256 (the test refuses any other model);
* the exact query count of each fixture (a fixture that silently shrinks fails);
* ``thresholds[fixture][group][metric]``: the lower end of the 95% scene-bootstrap interval of
  the shipped model (``training.metrics.bootstrap_intervals``), for a rate at most one query
  below the measured value, rounded down to 0.1;
* ``others``: which thresholds other models fail (``--previous``: the model this one
  replaces, a rejected candidate); the guard should reject them.

The same numbers come back on every machine up to float noise in ONNX Runtime: a query whose
score sits on the exists threshold could flip, which is why a threshold is a bootstrap bound
(and at least one query's slack) and not the measured value.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import math
from pathlib import Path

#: name -> how the fixture is generated (seeds kept free of every training and val range)
FIXTURES = {
    'default': dict(generator='default', split='train', seed=1000, scenes=50, expressions=4),
    'randomized': dict(generator='randomized', split='train', seed=5000, scenes=40,
                       expressions=4),
}
#: the interval level the thresholds come from
LEVEL = 0.95


def generate_fixture(name: str, root: str | Path, workers: int = 2,
                     progress: bool = False) -> Path:
    """Render fixture ``name`` of :data:`FIXTURES` into ``root``; returns ``root``."""
    from .generate import generate_dataset
    spec = FIXTURES[name]
    generate_dataset(root, spec['scenes'], seed=spec['seed'], workers=workers,
                     n_expressions=spec['expressions'], progress=progress,
                     generator=spec['generator'], split=spec['split'])
    return Path(root)


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def evaluate_checkpoint(checkpoint: str | Path | None, root: str | Path,
                        progress: bool = False) -> dict:
    """``unipixel-ros eval-dataset`` metrics (ONNX Runtime, the shipped decision settings and
    the checkpoint's own metric attribute head) of ``checkpoint`` on every scene of ``root``."""
    from unipixel_ros.inference.loading import load_predictor
    from unipixel_ros.training.evaluation import evaluate
    _, predictor = load_predictor('onnxruntime', checkpoint)
    return evaluate(predictor, root, progress=progress)


#: rate metric -> the count it is a share of (one query changes it by 100 / count points)
_DENOMINATORS = {'prec_50': 'targets', 'target_acc': 'targets', 'no_target_acc': 'absent'}


def derive_thresholds(result: dict) -> dict:
    """``{group: {metric: minimum}}``: the lower end of ``result['intervals']``, and for a rate
    at most the measured value less one query (so that one query flipped by float noise on
    another CPU cannot fail CI where every query of a group was right), floored to 0.1."""
    out: dict = {}
    for group, metrics in result['intervals'].items():
        source = _group(result, group)
        out[group] = {}
        for metric, (low, _high) in metrics.items():
            if metric in _DENOMINATORS and source.get(_DENOMINATORS[metric]):
                low = min(low, source[metric] - 100.0 / source[_DENOMINATORS[metric]])
            out[group][metric] = math.floor(10.0 * low) / 10.0
    return out


def _group(result: dict, group: str) -> dict:
    """The metrics of ``group`` ('all': the top level, else an expression type; {} if absent)."""
    return result if group == 'all' else result['by_type'].get(group, {})


def measured(result: dict, group: str, metric: str):
    """The measured value of ``metric`` for ``group`` ('all' or an expression type)."""
    return _group(result, group).get(metric)


def failures(result: dict, thresholds: dict) -> list[str]:
    """Every threshold ``result`` falls below, as 'group.metric measured < minimum'."""
    out = []
    for group, metrics in sorted(thresholds.items()):
        for metric, minimum in sorted(metrics.items()):
            value = measured(result, group, metric)
            if value is None or value < minimum:
                out.append(f'{group}.{metric} {value} < {minimum}')
    return out


def build_guard(checkpoint: Path, metric_head: Path | None, others: list,
                work: Path, workers: int = 2, progress: bool = True) -> dict:
    """Everything ``model_guard.json`` holds (see the module docstring)."""
    guard: dict = {'checkpoint': checkpoint.name, 'checkpoint_sha256': sha256(checkpoint),
                   'metric_attributes': metric_head.name if metric_head else None,
                   'metric_attributes_sha256': sha256(metric_head) if metric_head else None,
                   'level': LEVEL, 'fixtures': {}}
    for name, spec in FIXTURES.items():
        root = work / f'guard_{name}'
        if not (root / 'dataset.json').is_file():
            generate_fixture(name, root, workers=workers, progress=progress)
        result = evaluate_checkpoint(checkpoint, root, progress=progress)
        thresholds = derive_thresholds(result)
        entry = {'spec': spec, 'queries': result['queries'], 'thresholds': thresholds,
                 'measured': {g: {m: measured(result, g, m) for m in ms}
                              for g, ms in thresholds.items()}}
        entry['others'] = []
        for other in others:
            result_other = evaluate_checkpoint(other, root, progress=progress)
            entry['others'].append({'checkpoint': other.name, 'checkpoint_sha256': sha256(other),
                                    'fails': failures(result_other, thresholds)})
        guard['fixtures'][name] = entry
    return guard


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument('--checkpoint', help='the model to guard (default: the shipped one)')
    p.add_argument('--previous', action='append', default=[], metavar='CHECKPOINT',
                   help='another model the thresholds must reject (the one it replaces, a '
                        'rejected candidate); repeatable')
    p.add_argument('--out', required=True, help='guard JSON (unipixel_sim/test/model_guard.json)')
    p.add_argument('--work', default='data/model_guard', help='where the fixtures are rendered')
    p.add_argument('--workers', type=int, default=2)
    p.add_argument('--no-progress', action='store_true')


def run_from_args(args: argparse.Namespace) -> int:
    """``unipixel-sim model-guard``: write the guard of a checkpoint (see the module docstring).
    Exit status 1 when a ``--previous`` model passes every threshold."""
    from unipixel_ros.inference.loading import resolve_checkpoint
    from unipixel_ros.inference.metric_attributes import default_metric_attributes_path
    checkpoint = Path(resolve_checkpoint(args.checkpoint))
    head = default_metric_attributes_path(checkpoint)
    others = [Path(p) for p in args.previous]
    guard = build_guard(checkpoint, head if head.is_file() else None, others, Path(args.work),
                        workers=args.workers, progress=not args.no_progress)
    Path(args.out).write_text(json.dumps(guard, indent=2, sort_keys=True) + '\n')
    passed = []
    for k, other in enumerate(others):
        fails = [f'{name}: {f}' for name, e in guard['fixtures'].items()
                 for f in e['others'][k]['fails']]
        print(f'{other.name} fails {len(fails)} thresholds' + (f": {'; '.join(fails)}"
                                                                if fails else ''))
        if not fails:
            passed.append(other.name)
    print(f'wrote {args.out}')
    if passed:
        print(f"the thresholds do not reject {', '.join(passed)}", flush=True)
        return 1
    return 0
