"""Dataset generation: scene -> settle -> render -> expressions -> files (unipixel_ros format)."""
from __future__ import annotations

import multiprocessing as mp
import os
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional, Union

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

    def meta(self) -> dict:
        """The meta.json fields the generator provides (the writer adds the rest)."""
        return {'K': self.frame.intrinsics.k.reshape(-1).tolist(),
                'T_world_camera': self.frame.T_world_camera.tolist(),
                'objects': [o.to_dict() for o in self.frame.objects],
                'expressions': self.expressions,
                'scene': self.spec.to_dict(),
                'settle_displacement': self.settle_displacement}


def render_scene(seed: int, width: int = 640, height: int = 480, n_expressions: int = 4,
                 with_robot: bool = True) -> RenderedScene:
    """Generate, settle and render the scene of ``seed`` and make its expressions.

    Deterministic: the same arguments give the same scene and expressions.
    """
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


_worker_writer: Optional[DatasetWriter] = None
_worker_options: dict = {}


def _init_worker(root: str, options: dict) -> None:
    global _worker_writer, _worker_options
    _worker_writer = DatasetWriter(root)
    _worker_options = options


def _generate_one(seed: int) -> dict:
    scene = render_scene(seed, **_worker_options)
    f = scene.frame
    _worker_writer.write_scene(seed, f.rgb, f.depth, f.instances, scene.meta())
    return {'types': [e['type'] for e in scene.expressions],
            'absent': sum(e['target'] is None for e in scene.expressions),
            'dropped_ambiguous': scene.dropped_ambiguous}


def generate_dataset(out: Union[str, os.PathLike], scenes: int, seed: int = 0, workers: int = 2,
                     n_expressions: int = 4, width: int = 640, height: int = 480,
                     progress: bool = True) -> Dict[str, object]:
    """Generate scenes with seeds ``seed .. seed + scenes - 1`` into ``out`` and index them.

    Args:
        out: dataset folder (created; existing scenes with other seeds are kept).
        scenes: number of scenes.
        seed: first scene seed.
        workers: processes rendering in parallel (each holds its own GL contexts).
        n_expressions: expressions per scene.
        width, height: image size in pixels.
        progress: show a tqdm progress bar.
    Returns:
        Summary: scenes, seconds, scenes_per_s, expressions, by_type, absent, dropped_ambiguous.
    """
    options = {'width': width, 'height': height, 'n_expressions': n_expressions}
    seeds = list(range(seed, seed + scenes))
    by_type: Counter = Counter()
    absent = dropped = 0
    start = time.perf_counter()
    # 'spawn' gives every worker a fresh process: GL/EGL state must not be inherited by fork.
    ctx = mp.get_context('spawn')
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=scenes, unit='scene', desc='generate')
    with ctx.Pool(max(1, workers), initializer=_init_worker,
                  initargs=(str(out), options)) as pool:
        for result in pool.imap_unordered(_generate_one, seeds):
            by_type.update(result['types'])
            absent += result['absent']
            dropped += result['dropped_ambiguous']
            if bar is not None:
                bar.update()
    if bar is not None:
        bar.close()
    seconds = time.perf_counter() - start
    run = {'first_seed': seed, 'scenes': scenes, 'workers': workers, 'seconds': round(seconds, 2),
           **options}
    DatasetWriter(out).finalize(run)
    return {'scenes': scenes, 'seconds': seconds, 'scenes_per_s': scenes / max(seconds, 1e-9),
            'expressions': sum(by_type.values()), 'by_type': dict(by_type), 'absent': absent,
            'dropped_ambiguous': dropped, 'out': str(Path(out))}
