"""Closed-loop evaluation: spoken command -> mask -> cloud -> grasp -> the Panda lifts (or not).

``unipixel-sim eval-closed-loop --scenes N --seed S --json FILE``.

For each scene seed ``S, S+1, ...`` (use seeds no dataset was trained on; the training set
starts at 100000 and the test set at 900000, the default here is 700000):

1. the scene is generated, settled and rendered from the head camera (640x480 RGB-D and the
   instance masks, exactly what ``sim_camera`` publishes);
2. the scene's expressions are made by the same generator as the datasets; one positive
   expression whose target the Panda can hold is chosen (types rotate so every type is
   covered), plus, for the first ``absent`` scenes, one absent-object expression;
3. three pickers run on the positive command, each from the same settled state:

   * ``model``: the answer step of unipixel_node (:func:`unipixel_ros.inference.answer.
     answer_frame`: the prediction, then the object's geometry), then the geometry of that mask
     and its best grasp;
   * ``gt_mask``: the same geometry and grasp from the ground-truth mask (perception upper
     bound);
   * ``random``: the ground-truth mask of a random visible object (lower bound);

   each grasp is executed by :class:`unipixel_sim.grasp_executor.GraspExecutor` and judged a
   success only when the *referred* object is lifted and held;
4. on absent-object commands the model must not produce a grasp: a grasp counts as published
   when the model reports the object found and the geometry yields a valid grasp (what makes
   unipixel_node publish on ``unipixel/pick``).

``--generator randomized [--split shifted]`` takes the scenes from the randomized generator
instead (:func:`randomized_loop_scene`: the same scene, sensor effects and expression functions
as ``unipixel-sim generate --generator randomized``); trials then record the scene's held-out
factors and the report adds ``by_held_out``.

This runs the library path in one process (no DDS) so that 100+ trials fit in minutes on 2
cores; ``make demo`` runs the same path through the real ROS 2 processes.
"""
from __future__ import annotations

import json
import os
import sys
import time
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional

os.environ.setdefault('MUJOCO_GL', 'egl')

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from .expressions import make_expressions  # noqa: E402
from .generate import _EXPRESSION_STREAM  # noqa: E402
from .grasp_executor import GraspExecutor  # noqa: E402
from .render import SceneRenderer  # noqa: E402
from .scene import build_model, generate_scene, set_observe_pose, settle  # noqa: E402

#: Positive types in the order the scenes rotate through them.
POSITIVE_TYPES = ('attribute', 'position', 'relation', 'superlative', 'command')
#: Fewest mask pixels for an object to be a target or a random pick (as in the datasets).
MIN_VISIBLE_PIXELS = 150
from .seeds import CLOSED_LOOP_SEED as DEFAULT_SEED  # noqa: E402


@dataclass
class PickAttempt:
    """One picker's attempt on one command."""

    found: bool
    grasp: bool
    success: bool
    reason: str
    mask_iou: Optional[float] = None
    centroid_error_m: Optional[float] = None
    perception_ms: Optional[float] = None

    def to_dict(self) -> dict:
        return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in self.__dict__.items()}


@dataclass
class LoopScene:
    """One settled, rendered scene of the closed loop.

    Attributes:
        seed: scene seed.
        model, data: the MuJoCo world with the Panda, settled, arm parked (the executor's
            starting state).
        frame: the head camera's view (what ``sim_camera`` publishes: 640x480 RGB, depth in
            metres, instances, intrinsics, optical-frame pose, object ground truth).
        expressions: the scene's expression dicts (targets index ``frame.objects``).
        held_out: the scene's held-out factors (randomized generator; [] otherwise).
    """

    seed: int
    model: mujoco.MjModel
    data: mujoco.MjData
    frame: object
    expressions: List[dict]
    held_out: List[str]


def default_loop_scene(seed: int, n_expressions: int = 8) -> LoopScene:
    """A scene of the default generator (:func:`unipixel_sim.scene.generate_scene`)."""
    spec = generate_scene(seed)
    model = build_model(spec, with_robot=True)
    data = mujoco.MjData(model)
    set_observe_pose(model, data)
    settle(model, data)
    with SceneRenderer(model, 640, 480, scene=spec) as renderer:
        frame = renderer.render(data, 'head')
    expressions, _ = make_expressions([o.to_dict() for o in frame.objects],
                                      np.random.default_rng([spec.seed, _EXPRESSION_STREAM]),
                                      n=n_expressions, min_visible_pixels=MIN_VISIBLE_PIXELS)
    return LoopScene(spec.seed, model, data, frame, expressions, [])


def randomized_loop_scene(seed: int, split: str = 'train', n_expressions: int = 8) -> LoopScene:
    """A scene of the randomized generator, as ``generate --generator randomized`` makes it:
    :func:`~unipixel_sim.randomized.generate_random_scene`, the camera image and depth through
    :mod:`unipixel_sim.sensor` (RGB effects; noisy, quantised depth with holes), expressions
    from :func:`~unipixel_sim.language.make_randomized_expressions` (held-out wordings on the
    shifted split). ``split``: 'train' (in-distribution factor values) or 'shifted'."""
    from . import sensor
    from .language import make_randomized_expressions
    from .randomized import build_random_model, generate_random_scene, object_truth_extras
    spec = generate_random_scene(seed, split)
    model = build_random_model(spec, with_robot=True)
    data = mujoco.MjData(model)
    set_observe_pose(model, data)
    settle(model, data)
    with SceneRenderer(model, 640, 480, scene=spec) as renderer:
        frame = renderer.render(data, 'head')
    split_index = 0 if split == 'train' else 1
    frame.rgb = sensor.apply_rgb(frame.rgb, spec.sensor,
                                 np.random.default_rng([seed, split_index, 0xC0102]))
    frame.depth = sensor.apply_depth(frame.depth, spec.sensor, frame.intrinsics.fx)
    objects = [dict(o.to_dict(), **e) for o, e in zip(frame.objects, object_truth_extras(spec))]
    expressions, _ = make_randomized_expressions(
        objects, np.random.default_rng([seed, _EXPRESSION_STREAM, split_index]),
        n=n_expressions, min_visible_pixels=MIN_VISIBLE_PIXELS,
        held_out_language=(split == 'shifted'))
    return LoopScene(int(seed), model, data, frame, expressions,
                     list(spec.factors.get('held_out', [])))


def scene_source(generator: str = 'default', split: str = 'train'
                 ) -> Callable[[int], LoopScene]:
    """seed -> :class:`LoopScene` for ``generator`` 'default' or 'randomized' (``split``
    'train' or 'shifted', randomized only)."""
    if generator == 'default':
        if split != 'train':
            raise ValueError('the shifted split needs the randomized generator')
        return default_loop_scene
    if generator != 'randomized':
        raise ValueError(f"generator must be 'default' or 'randomized', got {generator!r}")
    if split not in ('train', 'shifted'):
        raise ValueError(f"split must be 'train' or 'shifted', got {split!r}")
    return lambda seed: randomized_loop_scene(seed, split)


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    union = np.logical_or(a, b).sum()
    return float(np.logical_and(a, b).sum() / union) if union else 0.0


def _choose(expressions: List[dict], objects, wanted: str, absent: bool) -> Optional[dict]:
    """The first expression of type ``wanted`` (else any positive one) whose target can be
    grasped; for ``absent``, the first absent-object expression."""
    if absent:
        return next((e for e in expressions if e.get('target') is None), None)
    positive = [e for e in expressions if e.get('target') is not None
                and objects[e['target']].graspable]
    return next((e for e in positive if e['type'] == wanted), positive[0] if positive else None)


class ClosedLoop:
    """Runs the pickers on one scene at a time.

    Args:
        predictor: a :class:`unipixel_ros.inference.predictor.ReferringPredictor` (None: only the
            ground-truth and random pickers run).
        geometry_config: :class:`unipixel_ros.perception.GeometryConfig` (default tunables).
    """

    def __init__(self, predictor=None, geometry_config=None) -> None:
        from unipixel_ros.perception.pipeline import GeometryConfig
        self.predictor = predictor
        self.geometry_config = geometry_config or GeometryConfig()

    def grasp_from_mask(self, mask: np.ndarray, frame):
        """(GraspCandidate | None, ObjectGeometry | None, reason) for a mask on ``frame``."""
        from unipixel_ros.perception import GeometryError
        from unipixel_ros.perception.pipeline import estimate_object_geometry
        try:
            geometry = estimate_object_geometry(mask, frame.depth.astype(np.float32), '32FC1',
                                                frame.intrinsics, frame.rgb, self.geometry_config)
        except GeometryError as exc:
            return None, None, f'geometry: {exc}'
        if geometry.best_grasp is None:
            return None, geometry, f'no grasp: {geometry.grasp_error}'
        return geometry.best_grasp, geometry, ''

    def execute(self, executor: GraspExecutor, grasp, frame, target: int) -> tuple:
        executor.reset()
        outcome = executor.execute_in_camera_frame(grasp.position, grasp.quaternion, grasp.width,
                                                   frame.T_world_camera, f'obj_{target}')
        return outcome.success, outcome.reason

    def attempt(self, executor, frame, mask: Optional[np.ndarray], target: int,
                found: bool = True, perception_ms: Optional[float] = None) -> PickAttempt:
        gt = frame.instances == target + 1
        if not found or mask is None or not mask.any():
            return PickAttempt(False, False, False, 'not found', perception_ms=perception_ms)
        iou = _iou(mask, gt)
        grasp, geometry, why = self.grasp_from_mask(mask, frame)
        err = (float(np.linalg.norm(geometry.box.center - frame.objects[target].center_camera))
               if geometry is not None else None)
        if grasp is None:
            return PickAttempt(True, False, False, why, iou, err, perception_ms)
        success, reason = self.execute(executor, grasp, frame, target)
        return PickAttempt(True, True, success, reason or 'ok', iou, err, perception_ms)

    def predict(self, text: str, frame):
        """(Answer, ms): the answer step the node runs (prediction + geometry), one-off."""
        from unipixel_ros.inference.answer import answer_frame
        t0 = time.perf_counter()
        answer = answer_frame(self.predictor, self.predictor.encode_text(text), frame.rgb,
                              frame.depth.astype(np.float32), frame.intrinsics,
                              self.geometry_config, refine=False)
        return answer, (time.perf_counter() - t0) * 1e3


def evaluate_closed_loop(predictor, scenes: int = 100, seed: int = DEFAULT_SEED, absent: int = 30,
                         pickers=('model', 'gt_mask', 'random'), progress: bool = True,
                         on_trial: Optional[Callable[[dict], None]] = None,
                         generator: str = 'default', split: str = 'train') -> dict:
    """Run ``scenes`` positive commands (and ``absent`` absent-object ones); see the module
    docstring. Scenes come from ``generator`` ('default' or 'randomized', ``split`` 'train' or
    'shifted'); when the positive scenes hold fewer than ``absent`` absent-object expressions,
    further scenes are rendered for absent commands only. Returns the JSON-ready report (rates
    in 0..1)."""
    from tqdm import tqdm

    make_scene = scene_source(generator, split)
    loop = ClosedLoop(predictor)
    rng = np.random.default_rng(seed)
    trials: List[dict] = []
    absent_trials: List[dict] = []
    want_absent = absent if predictor is not None else 0
    scene_seed, t0 = seed, time.perf_counter()
    bar = tqdm(total=scenes + want_absent, desc='closed loop', unit='cmd', disable=not progress,
               file=sys.stderr)
    while len(trials) < scenes or len(absent_trials) < want_absent:
        if len(trials) >= scenes and scene_seed - seed > 20 * (scenes + want_absent):
            break                 # a generator without absent expressions: stop, say how many
        scene = make_scene(scene_seed)
        scene_seed += 1
        frame, model, data = scene.frame, scene.model, scene.data
        objects = frame.objects
        expressions = scene.expressions
        executor = None
        if len(trials) < scenes:
            wanted = POSITIVE_TYPES[len(trials) % len(POSITIVE_TYPES)]
            expr = _choose(expressions, objects, wanted, absent=False)
            if expr is None:
                continue
            target = int(expr['target'])
            executor = GraspExecutor(model, data)
            record = {'scene_seed': scene.seed, 'text': expr['text'], 'type': expr['type'],
                      'target': f'obj_{target}', 'category': objects[target].category}
            if generator != 'default':
                record.update(held_out=scene.held_out,
                              held_out_words=expr.get('held_out_words', []))
            if 'model' in pickers and predictor is not None:
                answer, ms = loop.predict(expr['text'], frame)
                record['model'] = loop.attempt(executor, frame, answer.mask, target,
                                               answer.found, ms).to_dict()
            if 'gt_mask' in pickers:
                record['gt_mask'] = loop.attempt(executor, frame, frame.instances == target + 1,
                                                 target).to_dict()
            if 'random' in pickers:
                visible = [o.index for o in objects if o.visible_pixels >= MIN_VISIBLE_PIXELS]
                pick = int(visible[int(rng.integers(len(visible)))])
                attempt = loop.attempt(executor, frame, frame.instances == pick + 1, target)
                if pick != target:   # a wrong object lifted is a failure however well it went
                    attempt.success = False
                    attempt.reason = f'picked obj_{pick}, not the target ({attempt.reason})'
                record['random'] = attempt.to_dict()
            trials.append(record)
            bar.update(1)
            if on_trial:
                on_trial(record)
        if len(absent_trials) < want_absent:
            neg = _choose(expressions, objects, '', absent=True)
            if neg is not None:
                answer, _ = loop.predict(neg['text'], frame)
                grasp = None if answer.geometry is None else answer.geometry.best_grasp
                row = {'scene_seed': scene.seed, 'text': neg['text'],
                       'found': bool(answer.found), 'score': round(answer.score, 4),
                       'grasp_published': grasp is not None}
                if generator != 'default':
                    row.update(held_out=scene.held_out,
                               held_out_words=neg.get('held_out_words', []))
                absent_trials.append(row)
                bar.update(1)
        bar.set_postfix(ok=sum(t.get('model', {}).get('success', False) for t in trials),
                        refresh=False)
    bar.close()

    def rate(key: str, rows: List[dict]) -> Optional[float]:
        vals = [r[key]['success'] for r in rows if key in r]
        return round(sum(vals) / len(vals), 4) if vals else None

    by_type: Dict[str, dict] = {}
    for t in sorted({r['type'] for r in trials}):
        rows = [r for r in trials if r['type'] == t]
        by_type[t] = {'commands': len(rows), 'pick_success_rate': rate('model', rows),
                      'gt_mask_success_rate': rate('gt_mask', rows),
                      'random_success_rate': rate('random', rows)}
    model_rows = [r['model'] for r in trials if 'model' in r]
    ious = [m['mask_iou'] for m in model_rows if m['mask_iou'] is not None]
    errs = [m['centroid_error_m'] for m in model_rows if m['centroid_error_m'] is not None]
    report = {
        'scenes': len(trials), 'first_seed': seed, 'last_seed': scene_seed - 1,
        'pick_success_rate': rate('model', trials),
        'gt_mask_success_rate': rate('gt_mask', trials),
        'random_success_rate': rate('random', trials),
        'absent_commands': len(absent_trials),
        'absent_no_grasp_rate': (round(1 - sum(a['grasp_published'] for a in absent_trials)
                                       / len(absent_trials), 4) if absent_trials else None),
        'model_found_rate': (round(sum(m['found'] for m in model_rows) / len(model_rows), 4)
                             if model_rows else None),
        'model_mask_iou_median': round(float(np.median(ious)), 4) if ious else None,
        'model_centroid_error_m_median': round(float(np.median(errs)), 4) if errs else None,
        'by_type': by_type,
        'generator': generator, 'split': split,
        'wall_s': round(time.perf_counter() - t0, 1),
        'trials': trials,
        'absent_trials': absent_trials,
    }
    if generator != 'default':
        report['by_held_out'] = _by_held_out(trials, absent_trials, rate)
    return report


def _held_out_names(row: dict) -> List[str]:
    """Scene-level held-out factors of a trial ('language' only when its own wording is held
    out; 'none' when nothing is), as in ``unipixel_ros.training.evaluation``."""
    names = [f for f in row.get('held_out', []) if f != 'language']
    if row.get('held_out_words'):
        names.append('language')
    return names or ['none']


def _by_held_out(trials: List[dict], absent_trials: List[dict], rate) -> Dict[str, dict]:
    """Per held-out factor: positive commands, pick success (model, ground-truth mask),
    absent commands and their no-grasp rate."""
    out: Dict[str, dict] = {}
    names = sorted({n for r in trials + absent_trials for n in _held_out_names(r)})
    for name in names:
        rows = [r for r in trials if name in _held_out_names(r)]
        neg = [a for a in absent_trials if name in _held_out_names(a)]
        out[name] = {'commands': len(rows), 'pick_success_rate': rate('model', rows),
                     'gt_mask_success_rate': rate('gt_mask', rows),
                     'absent_commands': len(neg),
                     'absent_no_grasp_rate': (round(1 - sum(a['grasp_published'] for a in neg)
                                                    / len(neg), 4) if neg else None)}
    return out


def plot_closed_loop(report: dict, png: str) -> None:
    """Success rate per expression type for the three pickers -> PNG."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    types = list(report['by_type']) + ['all']
    keys = (('pick_success_rate', 'model'), ('gt_mask_success_rate', 'ground-truth mask'),
            ('random_success_rate', 'random object'))
    fig, ax = plt.subplots(figsize=(1.5 * len(types) + 2, 4))
    w = 0.8 / len(keys)
    for i, (key, label) in enumerate(keys):
        vals = [100 * ((report['by_type'][t] if t != 'all' else report).get(key) or 0)
                for t in types]
        ax.bar(np.arange(len(types)) + i * w, vals, w, label=label)
    ax.set_xticks(np.arange(len(types)) + 0.4 - w / 2, types)
    ax.set_ylim(0, 100)
    ax.set_ylabel('pick success, %')
    source = report.get('generator', 'default')
    if source != 'default':
        source += f" {report.get('split', 'train')}"
    ax.set_title(f"closed loop ({source} scenes): {report['scenes']} commands, absent-object "
                 f"no-grasp {100 * (report['absent_no_grasp_rate'] or 0):.0f}% of "
                 f"{report['absent_commands']}")
    ax.legend(loc='upper right', fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=110)
    plt.close(fig)


def write_report(report: dict, path: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, 'w') as f:
        json.dump(report, f, indent=2)
    plot_closed_loop(report, os.path.splitext(path)[0] + '.png')


def summary_line(report: dict) -> str:
    def pct(v):
        return 'n/a' if v is None else f'{100 * v:.1f}%'
    return (f"closed loop over {report['scenes']} commands: model {pct(report['pick_success_rate'])}, "
            f"ground-truth mask {pct(report['gt_mask_success_rate'])}, random "
            f"{pct(report['random_success_rate'])}; absent-object commands without a grasp "
            f"{pct(report['absent_no_grasp_rate'])} of {report['absent_commands']} "
            f"({report['wall_s']} s)")

