"""Reading the dataset format: whole scenes for evaluators, (scene, expression) samples for
training. Images are decoded lazily with Pillow, only when a sample is requested."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Tuple, Union

import numpy as np
from PIL import Image

from ..perception.intrinsics import CameraIntrinsics
from . import format as fmt
from .vocab import CATEGORIES, COLORS, SIZES

PathLike = Union[str, os.PathLike]


def load_image(path: PathLike) -> np.ndarray:
    """Decode a PNG to a numpy array (uint8 RGB, or the stored integer type for 1 channel)."""
    with Image.open(path) as image:
        if image.mode not in ('L', 'I;16', 'I'):
            image = image.convert('RGB')
        return np.array(image)


def load_meta(scene_dir: PathLike) -> dict:
    """The scene's ``meta.json`` as a dict."""
    with open(Path(scene_dir) / fmt.META_FILE) as f:
        return json.load(f)


@dataclass
class SceneRecord:
    """Everything stored for one scene.

    Attributes:
        scene_id, split: identity.
        rgb: (H, W, 3) uint8.
        depth_m: (H, W) float32 metres along the optical axis, 0 = no reading.
        instances: (H, W) int32; 0 = background, i + 1 = ``objects[i]``.
        intrinsics: pinhole intrinsics of the images.
        T_world_camera: (4, 4) float64 pose of the camera optical frame in the world.
        objects: per-object ground truth dicts (see the format module).
        expressions: expression dicts (text, type, inner_type, target, structure).
        meta: the full meta.json.
    """

    scene_id: str
    split: str
    rgb: np.ndarray
    depth_m: np.ndarray
    instances: np.ndarray
    intrinsics: CameraIntrinsics
    T_world_camera: np.ndarray
    objects: List[dict]
    expressions: List[dict]
    meta: dict
    #: (H, W) float32 metres before sensor effects, when the dataset stores it; else None.
    depth_clean_m: Optional[np.ndarray] = None

    def target_mask(self, expression_index: int) -> np.ndarray:
        """(H, W) bool mask of the expression's target; all False when it has none."""
        target = self.expressions[expression_index]['target']
        if target is None:
            return np.zeros(self.instances.shape, dtype=bool)
        return self.instances == target + 1


def load_scene(path: PathLike) -> SceneRecord:
    """Load one scene folder (``DIR/<split>/<scene_id>``) completely."""
    path = Path(path)
    meta = load_meta(path)
    depth = load_image(path / fmt.DEPTH_FILE).astype(np.float32) * np.float32(meta['depth_scale'])
    return SceneRecord(
        scene_id=meta['scene_id'], split=meta['split'], rgb=load_image(path / fmt.RGB_FILE),
        depth_m=depth, instances=load_image(path / fmt.INSTANCES_FILE).astype(np.int32),
        intrinsics=CameraIntrinsics.from_k(meta['K'], meta['width'], meta['height']),
        T_world_camera=np.asarray(meta['T_world_camera'], dtype=np.float64),
        objects=meta['objects'], expressions=meta['expressions'], meta=meta,
        depth_clean_m=(load_image(path / fmt.DEPTH_CLEAN_FILE).astype(np.float32)
                       * np.float32(meta['depth_scale'])
                       if (path / fmt.DEPTH_CLEAN_FILE).is_file() else None))


def load_index(root: PathLike) -> dict:
    """``DIR/dataset.json`` as a dict (written by ``DatasetWriter.finalize``)."""
    with open(Path(root) / fmt.DATASET_FILE) as f:
        return json.load(f)


def scene_dirs(root: str | Path, split: str | None) -> list[Path]:
    """Scene directories of ``split`` (None = all splits), sorted for determinism."""
    root = Path(root)
    load_index(root)  # raises a clear error when root is not a dataset
    splits = [split] if split else list(fmt.SPLITS)
    dirs = []
    for s in splits:
        if (root / s).is_dir():
            dirs += sorted(p for p in (root / s).iterdir() if (p / 'meta.json').is_file())
    return dirs


class ReferringDataset:
    """(scene, expression) samples for training and evaluation (a map-style torch dataset
    without depending on torch).

    Args:
        root: dataset folder (with dataset.json).
        split: 'train', 'val', 'test', 'shifted' (held-out factor values), or None for the
            scenes of train, val and test.
        transform: optional callable applied to each sample dict.

    ``dataset[i]`` is a dict:
        rgb: (H, W, 3) uint8.  depth_m: (H, W) float32 metres (0 = no reading).
        mask: (H, W) bool target mask, all False when the target is absent.
        exists: bool, whether the expression refers to an object in the scene.
        text, type, inner_type: the expression and its type tags.
        target: object index, -1 when absent.
        category, color, size: target attribute indices into the dataset's vocabularies
            (``dataset.categories`` etc.), -1 when absent.
        K: (3, 3) float32 intrinsics.  scene_id: str.  expression_index: int.
    """

    def __init__(self, root: PathLike, split: Optional[str] = None,
                 transform: Optional[Callable[[dict], object]] = None) -> None:
        if split is not None and split not in fmt.SPLITS + fmt.EXTRA_SPLITS:
            raise ValueError(f'split must be one of {fmt.SPLITS + fmt.EXTRA_SPLITS} or None, '
                             f'got {split!r}')
        self.root = Path(root)
        self.split = split
        self.transform = transform
        info = load_index(self.root)
        if info.get('format_version') != fmt.FORMAT_VERSION:
            raise ValueError(f'{self.root}: dataset format {info.get("format_version")} is not '
                             f'the supported version {fmt.FORMAT_VERSION}')
        vocab = info.get('vocabularies', {})
        self.categories = tuple(vocab.get('categories', CATEGORIES))
        self.colors = tuple(vocab.get('colors', COLORS))
        self.sizes = tuple(vocab.get('sizes', SIZES))
        #: (scene folder, expression index) of every sample.
        self.index: List[Tuple[Path, int]] = [
            (self.root / scene['split'] / scene['id'], k)
            for scene in info['scenes']
            if (split is None and scene['split'] in fmt.SPLITS) or scene['split'] == split
            for k in range(scene['expressions'])]

    def __len__(self) -> int:
        return len(self.index)

    def __getitem__(self, i: int):
        scene_dir, k = self.index[i]
        meta = load_meta(scene_dir)
        expr = meta['expressions'][k]
        target = expr['target']
        instances = load_image(scene_dir / fmt.INSTANCES_FILE)
        if target is None:
            mask = np.zeros(instances.shape, dtype=bool)
            attrs = (-1, -1, -1)
        else:
            mask = instances == target + 1
            obj = meta['objects'][target]
            # Names outside the vocabularies (distractors, 'brown', 'grey') map to -1.
            attrs = tuple(vocab.index(obj[key]) if obj[key] in vocab else -1 for key, vocab in
                          (('category', self.categories), ('color', self.colors),
                           ('size', self.sizes)))
        depth = load_image(scene_dir / fmt.DEPTH_FILE).astype(np.float32)
        sample = {
            'rgb': load_image(scene_dir / fmt.RGB_FILE),
            'depth_m': depth * np.float32(meta['depth_scale']),
            'mask': mask,
            'exists': target is not None,
            'text': expr['text'], 'type': expr['type'], 'inner_type': expr['inner_type'],
            'target': -1 if target is None else int(target),
            'category': attrs[0], 'color': attrs[1], 'size': attrs[2],
            'K': np.asarray(meta['K'], dtype=np.float32).reshape(3, 3),
            'scene_id': meta['scene_id'], 'expression_index': k,
        }
        return self.transform(sample) if self.transform is not None else sample
