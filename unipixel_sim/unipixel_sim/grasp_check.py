"""``unipixel-sim grasp-check``: grasp success of the simulated Panda at ground-truth grasps.

For each trial: a scene from :func:`unipixel_sim.scene.generate_scene`, one graspable object
picked at random, a top-down grasp computed from its true pose and dimensions (centre of its
footprint, jaws across its narrow horizontal axis, width = that narrow size), executed by
:class:`unipixel_sim.grasp_executor.GraspExecutor`. This measures the executor and the physics,
not perception: a low rate here means grasps from the perception stack cannot be judged.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

os.environ.setdefault('MUJOCO_GL', 'egl')

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from .grasp_executor import GraspExecutor  # noqa: E402
from .scene import ObjectSpec, build_model, generate_scene  # noqa: E402

#: Deepest the TCP goes below an object's top: the hand's palm (7.2 cm behind the TCP) must
#: stay clear of it.
PALM_CLEARANCE = 0.065
#: Half length of the hand's collision hull along the jaw axis, metres.
HAND_HALF_SPAN = 0.105
#: Wanted gap between the hand's footprint and neighbouring objects, metres.
NEIGHBOUR_CLEARANCE = 0.02
#: Widest object side the ground-truth grasp closes across (the hand opens 8 cm).
MAX_GT_WIDTH = 0.07


def _hand_clearance(obj: ObjectSpec, jaw: np.ndarray, others: Sequence[ObjectSpec]) -> float:
    """Smallest gap (metres) between the hand's footprint, a segment of half length
    ``HAND_HALF_SPAN`` along ``jaw`` (3,) through the object's centre, and the footprint circle
    of any other object; inf without others."""
    centre = np.array([obj.x, obj.y])
    gaps = []
    for other in others:
        rel = np.array([other.x, other.y]) - centre
        along = float(np.clip(rel @ jaw[:2], -HAND_HALF_SPAN, HAND_HALF_SPAN))
        gaps.append(float(np.linalg.norm(rel - along * jaw[:2])) - other.footprint_radius)
    return min(gaps, default=math.inf)


def ground_truth_grasp(obj: ObjectSpec, others: Sequence[ObjectSpec] = ()
                       ) -> Tuple[np.ndarray, np.ndarray, float]:
    """Top-down grasp of a resting object from its true pose and dimensions.

    Args:
        obj: the object (base centre ``x, y`` on the table, ``yaw``, dimensions).
        others: the scene's other objects, to keep the hand clear of them.
    Returns:
        ((3,) grasp centre, world metres; (3, 3) gripper rotation, columns x, y = jaw axis,
        z = approach = world -z; object width across the jaws, metres).

    The jaws close across the narrower of the object's two horizontal axes (a cup's handle along
    its x axis makes that the y axis), or across the other one when that is also narrow enough
    and the hand, 21 cm long along the jaw axis, would otherwise come within
    ``NEIGHBOUR_CLEARANCE`` of a neighbour. The centre is over the body origin (the axis of
    round objects, so the handle does not shift it), at half height, or deeper than that only
    as far as keeps the palm above the object's top.
    """
    sx, sy, height = obj.extents
    # Ties go to the object's y axis: a cup's handle sticks out along +x (and makes sx > sy).
    options = [(sx, 0.0), (sy, math.pi / 2.0)] if sx < sy else [(sy, math.pi / 2.0),
                                                                (sx, 0.0)]
    options = [o for o in options if o[0] <= MAX_GT_WIDTH] or options[:1]
    best = None
    for width, jaw_local in options:
        angle = obj.yaw + jaw_local
        jaw = np.array([math.cos(angle), math.sin(angle), 0.0])
        gap = _hand_clearance(obj, jaw, others)
        if best is None or (best[0] < NEIGHBOUR_CLEARANCE and gap > best[0]):
            best = (gap, jaw, width)
    _, jaw, width = best
    approach = np.array([0.0, 0.0, -1.0])
    rotation = np.stack([np.cross(jaw, approach), jaw, approach], axis=1)
    z = max(height / 2.0, height - PALM_CLEARANCE)
    return np.array([obj.x, obj.y, z]), rotation, float(width)


def _scene_source(generator: str, split: str):
    """(scene of a seed, model of a scene) for the 'default' or 'randomized' generator."""
    if generator == 'default':
        return generate_scene, build_model
    if generator == 'randomized':
        from .randomized import build_random_model, generate_random_scene
        return (lambda seed: generate_random_scene(seed, split)), build_random_model
    raise ValueError(f"generator must be 'default' or 'randomized', got {generator!r}")


def run_grasp_check(trials: int = 50, seed: int = 0, progress: bool = True,
                    gif_dir: Optional[str] = None, generator: str = 'default',
                    split: str = 'train') -> Dict[str, object]:
    """Run ``trials`` ground-truth grasps on scenes ``seed``, ``seed + 1``, ... .

    ``generator='randomized'`` grasps parametric shapes of :mod:`unipixel_sim.randomized`
    scenes (``split`` 'train' or 'shifted'); records then also name the shape variant.

    Scenes without a graspable object are skipped (the next seed is used). With ``gif_dir``,
    each trial's frames (head camera, 320x240) are written there as ``trial_<k>.gif``.

    Returns:
        JSON-ready dict: ``trials``, ``successes``, ``success_rate`` (0..1), ``per_category``
        ({category: {trials, successes, success_rate}}), ``mean_trial_s`` (wall seconds per
        trial including scene building), ``mean_sim_s``, ``wall_s``, ``seed``, ``failures``
        (one record per failed trial) and ``results`` (one record per trial).
    """
    from tqdm import tqdm

    make_scene, make_model = _scene_source(generator, split)
    rng = np.random.default_rng(seed)
    results: List[dict] = []
    scene_seed = seed
    t0 = time.perf_counter()
    bar = tqdm(total=trials, desc='grasp-check', unit='trial', disable=not progress,
               file=sys.stderr)
    while len(results) < trials:
        t_trial = time.perf_counter()
        scene = make_scene(scene_seed)
        scene_seed += 1
        candidates = [i for i, o in enumerate(scene.objects) if o.graspable]
        if not candidates:
            continue
        index = int(candidates[int(rng.integers(len(candidates)))])
        obj = scene.objects[index]
        model = make_model(scene, with_robot=True)
        data = mujoco.MjData(model)
        renderer = mujoco.Renderer(model, 240, 320) if gif_dir else None
        executor = GraspExecutor(model, data, renderer=renderer, camera='head')
        others = [o for k, o in enumerate(scene.objects) if k != index]
        position, rotation, width = ground_truth_grasp(obj, others)
        outcome = executor.execute(position, rotation, width, f'obj_{index}',
                                   record=bool(gif_dir))
        if gif_dir and outcome.frames:
            import imageio
            os.makedirs(gif_dir, exist_ok=True)
            imageio.mimsave(os.path.join(gif_dir, f'trial_{len(results)}.gif'),
                            outcome.frames, duration=executor.config.frame_dt)
        if renderer is not None:
            renderer.close()
        results.append({
            'trial': len(results), 'scene_seed': scene.seed, 'object': f'obj_{index}',
            'category': obj.category, 'size': obj.size, 'width_m': round(width, 4),
            'success': outcome.success, 'reason': outcome.reason,
            'lifted_height_m': round(outcome.lifted_height_m, 4),
            'held_s': round(outcome.held_s, 3), 'ik_error_m': round(outcome.ik_error, 5),
            'grasp_shift_m': round(outcome.grasp_shift_m, 4),
            'sim_s': round(outcome.timings.get('sim_s', 0.0), 3),
            'trial_s': round(time.perf_counter() - t_trial, 3),
        })
        if generator != 'default':
            results[-1]['shape_variant'] = obj.shape_variant
        bar.set_postfix(ok=sum(r['success'] for r in results), refresh=False)
        bar.update(1)
    bar.close()
    wall = time.perf_counter() - t0
    per_category: Dict[str, Dict[str, float]] = {}
    for r in results:
        c = per_category.setdefault(r['category'], {'trials': 0, 'successes': 0})
        c['trials'] += 1
        c['successes'] += int(r['success'])
    for c in per_category.values():
        c['success_rate'] = c['successes'] / c['trials']
    successes = sum(int(r['success']) for r in results)
    n = max(len(results), 1)
    report = {
        'trials': len(results),
        'successes': successes,
        'success_rate': successes / n,
        'per_category': dict(sorted(per_category.items())),
        'mean_trial_s': sum(r['trial_s'] for r in results) / n,
        'mean_sim_s': sum(r['sim_s'] for r in results) / n,
        'wall_s': wall,
        'seed': seed,
        'failures': [r for r in results if not r['success']],
        'results': results,
    }
    if generator != 'default':
        report.update(generator=generator, split=split, per_shape_variant=_rates(
            results, lambda r: f"{r['category']}/{r['shape_variant']}"))
    return report


def _rates(results: Sequence[dict], key) -> Dict[str, Dict[str, float]]:
    out: Dict[str, Dict[str, float]] = {}
    for r in results:
        c = out.setdefault(key(r), {'trials': 0, 'successes': 0})
        c['trials'] += 1
        c['successes'] += int(r['success'])
    for c in out.values():
        c['success_rate'] = c['successes'] / c['trials']
    return dict(sorted(out.items()))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``grasp-check`` (for the ``unipixel-sim`` CLI)."""
    parser.add_argument('--trials', type=int, default=50, help='number of grasp trials')
    parser.add_argument('--seed', type=int, default=0, help='first scene seed (and object pick)')
    parser.add_argument('--json', metavar='FILE', help='write the report as JSON to FILE')
    parser.add_argument('--gif-dir', metavar='DIR', help='save a GIF of every trial in DIR')
    parser.add_argument('--no-progress', action='store_true', help='hide the progress bar')
    parser.add_argument('--generator', choices=('default', 'randomized'), default='default',
                        help='scenes to grasp in: default, or randomized parametric shapes')
    parser.add_argument('--split', choices=('train', 'shifted'), default='train',
                        help='randomized only: training or held-out factor values')


def run_from_args(args: argparse.Namespace) -> int:
    """Run with parsed :func:`add_arguments` options; print a summary line; 0 on success."""
    if args.trials < 1:
        print('grasp-check: --trials must be >= 1', file=sys.stderr)
        return 2
    report = run_grasp_check(args.trials, args.seed, progress=not args.no_progress,
                             gif_dir=args.gif_dir, generator=getattr(args, 'generator', 'default'),
                             split=getattr(args, 'split', 'train'))
    if args.json:
        os.makedirs(os.path.dirname(os.path.abspath(args.json)), exist_ok=True)
        with open(args.json, 'w') as f:
            json.dump(report, f, indent=2)
    cats = ', '.join(f"{k} {v['successes']}/{v['trials']}"
                     for k, v in report['per_category'].items())
    print(f"grasp-check: {report['successes']}/{report['trials']} succeeded "
          f"({100 * report['success_rate']:.1f}%), {report['mean_trial_s']:.2f} s/trial, "
          f"{report['wall_s']:.1f} s total [{cats}]")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Standalone entry point: ``python -m unipixel_sim.grasp_check --trials N --json FILE``."""
    parser = argparse.ArgumentParser(prog='unipixel-sim grasp-check', description=__doc__)
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))


if __name__ == '__main__':
    sys.exit(main())
