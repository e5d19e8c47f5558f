"""Dataset generation: scene -> settle -> render -> expressions -> files (unipixel_ros format).

Two generators: ``default`` (:mod:`unipixel_sim.scene`, unchanged so that old datasets
reproduce) and ``randomized`` (:mod:`unipixel_sim.randomized`: domain randomization, sensor
effects, parametric shapes; ``split='shifted'`` draws held-out factor values and writes the
scenes into the ``shifted`` split).
"""
from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Union

os.environ.setdefault('MUJOCO_GL', 'egl')

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from unipixel_ros.dataset import DatasetWriter  # noqa: E402

from .expressions import make_expressions  # noqa: E402
from .render import Frame, SceneRenderer  # noqa: E402
from .scene import SceneSpec, build_model, generate_scene, set_observe_pose, settle  # noqa: E402

#: Seeds of an expression stream are derived from the scene seed with this offset so that the
#: scene layout and its expressions use independent random streams.
_EXPRESSION_STREAM = 0x5EED


@dataclass
class RenderedScene:
    """One generated scene before it is written.

    Attributes:
        spec: the scene description.
        frame: the head-camera view (images, intrinsics, pose, object ground truth).
        expressions: expression dicts (see :mod:`unipixel_sim.expressions`).
        dropped_ambiguous: proposals the resolver rejected as ambiguous.
        settle_displacement: largest object motion while settling, metres.
    """

    spec: SceneSpec
    frame: Frame
    expressions: list
    dropped_ambiguous: int
    settle_displacement: float
    #: Randomized generator only: (H, W) float32 depth before sensor effects, metres.
    depth_clean: Optional[np.ndarray] = None
    #: Randomized generator only: extra per-object ground truth (see
    #: :func:`unipixel_sim.randomized.object_truth_extras`) and the scene's factor values.
    object_extras: Optional[List[dict]] = None
    factors: Optional[dict] = None

    def objects(self) -> List[dict]:
        """Per-object ground-truth dicts (with the randomized extras when there are any)."""
        objects = [o.to_dict() for o in self.frame.objects]
        if self.object_extras is not None:
            objects = [dict(o, **extra) for o, extra in zip(objects, self.object_extras)]
        return objects

    def meta(self) -> dict:
        """The meta.json fields the generator provides (the writer adds the rest)."""
        meta = {'K': self.frame.intrinsics.k.reshape(-1).tolist(),
                'T_world_camera': self.frame.T_world_camera.tolist(),
                'objects': self.objects(),
                'expressions': self.expressions,
                'scene': self.spec.to_dict(),
                'settle_displacement': self.settle_displacement}
        if self.factors is not None:
            meta['factors'] = self.factors
        return meta


def render_scene(seed: int, width: int = 640, height: int = 480, n_expressions: int = 4,
                 with_robot: bool = True, generator: str = 'default',
                 split: str = 'train') -> RenderedScene:
    """Generate, settle and render the scene of ``seed`` and make its expressions.

    Args:
        generator: 'default' or 'randomized' (see the module docstring).
        split: randomized generator only: 'train' or 'shifted'.
    Deterministic: the same arguments give the same scene and expressions.
    """
    if generator == 'randomized':
        return render_randomized_scene(seed, split, width, height, n_expressions, with_robot)
    if generator != 'default':
        raise ValueError(f"generator must be 'default' or 'randomized', got {generator!r}")
    spec = generate_scene(seed)
    model = build_model(spec, with_robot=with_robot)
    data = mujoco.MjData(model)
    set_observe_pose(model, data)
    moved = settle(model, data)
    with SceneRenderer(model, width, height, scene=spec) as renderer:
        frame = renderer.render(data, 'head')
    # Scale the visibility threshold with the image so that it means the same apparent size.
    min_pixels = max(20, int(150 * width * height / (640 * 480)))
    expressions, dropped = make_expressions(
        [o.to_dict() for o in frame.objects], np.random.default_rng([seed, _EXPRESSION_STREAM]),
        n=n_expressions, min_visible_pixels=min_pixels)
    return RenderedScene(spec, frame, expressions, dropped, moved)


def render_randomized_scene(seed: int, split: str = 'train', width: int = 640, height: int = 480,
                            n_expressions: int = 4, with_robot: bool = True) -> RenderedScene:
    """:func:`render_scene` for the randomized generator: the frame holds the sensor images
    (RGB effects, realistic depth); ``depth_clean`` keeps the rendered depth."""
    from . import sensor
    from .language import make_randomized_expressions
    from .randomized import build_random_model, generate_random_scene, object_truth_extras
    spec = generate_random_scene(seed, split)
    model = build_random_model(spec, with_robot=with_robot)
    data = mujoco.MjData(model)
    set_observe_pose(model, data)
    moved = settle(model, data)
    with SceneRenderer(model, width, height, scene=spec) as renderer:
        frame = renderer.render(data, 'head')
    clean = frame.depth
    split_index = 0 if split == 'train' else 1
    frame.rgb = sensor.apply_rgb(frame.rgb, spec.sensor,
                                 np.random.default_rng([seed, split_index, 0xC0102]))
    frame.depth = sensor.apply_depth(clean, spec.sensor, frame.intrinsics.fx)
    extras = object_truth_extras(spec)
    objects = [dict(o.to_dict(), **e) for o, e in zip(frame.objects, extras)]
    min_pixels = max(20, int(150 * width * height / (640 * 480)))
    expressions, dropped = make_randomized_expressions(
        objects, np.random.default_rng([seed, _EXPRESSION_STREAM, split_index]),
        n=n_expressions, min_visible_pixels=min_pixels,
        held_out_language=(split == 'shifted'))
    factors = dict(spec.factors)
    if any(e['held_out_words'] for e in expressions):
        factors['held_out'] = sorted(set(factors['held_out']) | {'language'})
    return RenderedScene(spec, frame, expressions, dropped, moved, depth_clean=clean,
                         object_extras=extras, factors=factors)


_worker_writer: Optional[DatasetWriter] = None
_worker_options: dict = {}


def _init_worker(root: str, options: dict) -> None:
    global _worker_writer, _worker_options
    _worker_writer = DatasetWriter(root)
    _worker_options = options


def _generate_one(seed: int) -> dict:
    options = dict(_worker_options)
    generator = options.pop('generator', 'default')
    split = options.pop('split', None)
    f_split = None
    if generator == 'default':
        scene = render_scene(seed, **options)
    else:
        scene = render_scene(seed, generator=generator, split=split or 'train', **options)
        f_split = 'shifted' if split == 'shifted' else None
    f = scene.frame
    extra = {}
    if scene.depth_clean is not None:
        extra = {'split': f_split, 'depth_clean_m': scene.depth_clean}
    _worker_writer.write_scene(seed, f.rgb, f.depth, f.instances, scene.meta(), **extra)
    return {'types': [e['type'] for e in scene.expressions],
            'absent': sum(e['target'] is None for e in scene.expressions),
            'dropped_ambiguous': scene.dropped_ambiguous,
            'held_out': (scene.factors or {}).get('held_out', [])}


def generate_dataset(out: Union[str, os.PathLike], scenes: int, seed: int = 0, workers: int = 2,
                     n_expressions: int = 4, width: int = 640, height: int = 480,
                     progress: bool = True, generator: str = 'default',
                     split: str = 'train') -> Dict[str, object]:
    """Generate scenes with seeds ``seed .. seed + scenes - 1`` into ``out`` and index them.

    Args:
        out: dataset folder (created; existing scenes with other seeds are kept).
        scenes: number of scenes.
        seed: first scene seed.
        workers: processes rendering in parallel (each holds its own GL contexts).
        n_expressions: expressions per scene.
        width, height: image size in pixels.
        progress: show a tqdm progress bar.
        generator: 'default' (the original scenes, unchanged) or 'randomized'.
        split: randomized only: 'train' (scenes go to train/val/test by seed hash, no held-out
            factor values) or 'shifted' (held-out factor values, all scenes in ``shifted``).
    Returns:
        Summary: scenes, seconds, scenes_per_s, expressions, by_type, absent, dropped_ambiguous,
        and for the randomized generator held_out (scenes per held-out factor).
    """
    if generator not in ('default', 'randomized'):
        raise ValueError(f"generator must be 'default' or 'randomized', got {generator!r}")
    if split not in ('train', 'shifted'):
        raise ValueError(f"split must be 'train' or 'shifted', got {split!r}")
    if generator == 'default' and split != 'train':
        raise ValueError('the shifted split needs the randomized generator')
    options = {'width': width, 'height': height, 'n_expressions': n_expressions}
    worker_options = dict(options)
    if generator != 'default':
        worker_options.update(generator=generator, split=split)
    seeds = list(range(seed, seed + scenes))
    by_type: Counter = Counter()
    absent = dropped = 0
    held: Counter = Counter()
    start = time.perf_counter()
    # 'spawn' gives every worker a fresh process: GL/EGL state must not be inherited by fork.
    ctx = mp.get_context('spawn')
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=scenes, unit='scene', desc='generate')
    with ctx.Pool(max(1, workers), initializer=_init_worker,
                  initargs=(str(out), worker_options)) as pool:
        for result in pool.imap_unordered(_generate_one, seeds):
            by_type.update(result['types'])
            absent += result['absent']
            dropped += result['dropped_ambiguous']
            held.update(result['held_out'])
            if bar is not None:
                bar.update()
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - start
    run = {'first_seed': seed, 'scenes': scenes, 'workers': workers, 'seconds': round(seconds, 2),
           **options}
    if generator != 'default':
        run.update(generator=generator, split=split)
    DatasetWriter(out).finalize(run)
    summary = {'scenes': scenes, 'seconds': seconds,
               'scenes_per_s': scenes / max(seconds, 1e-9),
               'expressions': sum(by_type.values()), 'by_type': dict(by_type), 'absent': absent,
               'dropped_ambiguous': dropped, 'out': str(Path(out))}
    if generator != 'default':
        summary['held_out'] = dict(sorted(held.items()))
    return summary
