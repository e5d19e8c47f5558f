"""Training data: a dataset written by ``unipixel-sim generate`` preprocessed into RAM tensors.

Decoding PNGs for every step would dominate training time on 2 CPU cores, so each split is
converted once into a :class:`TrainingCache` (saved next to the dataset as a ``.pt`` file of
plain tensors, loaded with ``weights_only=True``) holding, per scene, the RGB image resized to
the network input (area interpolation, the same op the predictor uses), the depth and the
full-resolution instance map; per expression its target and attributes; and the frozen text
encoder's features for every distinct text (the encoder is frozen, so this is exact).
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from unipixel_ros.dataset.reader import load_scene, scene_dirs

SPLITS = ('train', 'val', 'test')
from unipixel_ros.dataset.vocab import CATEGORIES, COLORS, EXPRESSION_TYPES, SIZES

CACHE_VERSION = 1


def resize_rgb(rgb: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, 3, H, W) uint8 or float -> (B, 3, height, width) float in [0, 1], area interpolation."""
    x = rgb.float()
    if rgb.dtype == torch.uint8:
        x = x / 255.0
    if x.shape[-2:] != (height, width):
        x = F.interpolate(x, size=(height, width), mode='area')
    return x


def resize_depth(depth_m: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, 1, H, W) metres -> (B, 1, height, width) nearest (no mixing across object edges)."""
    if depth_m.shape[-2:] == (height, width):
        return depth_m.float()
    return F.interpolate(depth_m.float(), size=(height, width), mode='nearest')


def mask_to_input(mask: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(B, 1, H, W) {0, 1} full-resolution mask -> soft target (B, 1, height, width) in [0, 1]."""
    m = mask.float()
    return m if m.shape[-2:] == (height, width) else F.interpolate(m, size=(height, width),
                                                                   mode='area')


@dataclass
class TrainingCache:
    """One split of a dataset, ready for training.

    Attributes:
        rgb: (S, 3, h, w) uint8 at network input size.
        depth_mm: (S, 1, h, w) int16 millimetres at input size (0 = invalid), nearest.
        instances: (S, H, W) uint8 full-resolution instance ids (0 = background, i+1 = object i).
        object_attrs: (S, max_objects, 3) long category/colour/size per object, -1 = none.
        expr_scene, expr_target, expr_text, expr_type: (E,) long; target -1 = absent object.
        expr_attrs: (E, 3) long target category/colour/size (-1 when absent).
        text_features: (T, L, text_dim) float16; text_mask: (T, L) uint8.
        texts: the T distinct texts; scene_ids: the S scene ids.
    """

    rgb: torch.Tensor
    depth_mm: torch.Tensor
    instances: torch.Tensor
    object_attrs: torch.Tensor
    expr_scene: torch.Tensor
    expr_target: torch.Tensor
    expr_text: torch.Tensor
    expr_type: torch.Tensor
    expr_attrs: torch.Tensor
    text_features: torch.Tensor
    text_mask: torch.Tensor
    texts: list
    scene_ids: list

    @property
    def num_expressions(self) -> int:
        return int(self.expr_scene.numel())

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d['version'] = CACHE_VERSION
        return d


def _attr_indices(obj: dict) -> list[int]:
    """[category, colour, size] vocabulary indices of one object's ground truth.

    A name outside the vocabulary (a randomized distractor's category 'object', colours such as
    'brown' or 'grey') gives -1, the index every attribute loss ignores; it is never mapped to
    a real class.
    """
    return [vocab.index(obj.get(key)) if obj.get(key) in vocab else -1
            for key, vocab in (('category', CATEGORIES), ('color', COLORS), ('size', SIZES))]


def build_cache(root: str | Path, split: str | None, height: int, width: int, text_encoder,
                max_objects: int = 12, cache_dir: str | Path | None = None,
                progress: bool = True) -> TrainingCache:
    """Preprocess (or load the cached) ``split`` of the dataset at ``root``.

    ``max_objects`` ground-truth objects are kept per scene (at most the network's
    ``object_slots``; the randomized generator places up to 12), and expressions whose target
    lies beyond them are dropped. The cache file name includes it, the input size, the text
    encoder and a hash of the scene list, so regenerating or extending the dataset rebuilds it.
    """
    dirs = scene_dirs(root, split)
    if not dirs:
        raise FileNotFoundError(f'no scenes for split {split!r} under {root}')
    key = hashlib.sha256('|'.join([str(CACHE_VERSION), str(max_objects), str(height), str(width),
                                   str(text_encoder.source), str(text_encoder.max_tokens)]
                                  + [d.name for d in dirs]).encode()).hexdigest()[:12]
    cache_dir = Path(cache_dir) if cache_dir else Path(root)
    path = cache_dir / f'.train_cache_{split or "all"}_{width}x{height}_{key}.pt'
    if path.is_file():
        d = torch.load(path, weights_only=True)
        d.pop('version', None)
        return TrainingCache(**d)

    rgbs, depths, insts, obj_attrs = [], [], [], []
    e_scene, e_target, e_text, e_type, e_attrs, texts, scene_ids = [], [], [], [], [], [], []
    text_index: dict[str, int] = {}
    for s, d in enumerate(tqdm(dirs, desc=f'cache {split or "all"}', disable=not progress)):
        rec = load_scene(d)
        rgb = torch.from_numpy(rec.rgb).permute(2, 0, 1)[None]
        rgbs.append((resize_rgb(rgb, height, width)[0] * 255).round().to(torch.uint8))
        depth = torch.from_numpy(np.nan_to_num(rec.depth_m, nan=0.0))[None, None]
        depths.append((resize_depth(depth, height, width)[0] * 1000).round().clamp(0, 32767)
                      .to(torch.int16))
        insts.append(torch.from_numpy(rec.instances.astype(np.uint8)))
        attrs = torch.full((max_objects, 3), -1, dtype=torch.long)
        for i, obj in enumerate(rec.objects[:max_objects]):
            attrs[i] = torch.tensor(_attr_indices(obj))
        obj_attrs.append(attrs)
        scene_ids.append(rec.scene_id)
        for expr in rec.expressions:
            target = expr.get('target')
            if target is not None and target >= max_objects:
                continue
            text = expr['text']
            if text not in text_index:
                text_index[text] = len(texts)
                texts.append(text)
            e_scene.append(s)
            e_target.append(-1 if target is None else int(target))
            e_text.append(text_index[text])
            e_type.append(EXPRESSION_TYPES.index(expr['type']))
            e_attrs.append(attrs[target].tolist() if target is not None else [-1, -1, -1])

    feats, masks = [], []
    for i in tqdm(range(0, len(texts), 256), desc='encode texts', disable=not progress):
        tf = text_encoder.encode(texts[i:i + 256])
        feats.append(tf.features.half())
        masks.append(tf.mask.to(torch.uint8))
    cache = TrainingCache(
        rgb=torch.stack(rgbs), depth_mm=torch.stack(depths), instances=torch.stack(insts),
        object_attrs=torch.stack(obj_attrs), expr_scene=torch.tensor(e_scene),
        expr_target=torch.tensor(e_target), expr_text=torch.tensor(e_text),
        expr_type=torch.tensor(e_type), expr_attrs=torch.tensor(e_attrs, dtype=torch.long),
        text_features=torch.cat(feats), text_mask=torch.cat(masks), texts=texts,
        scene_ids=scene_ids)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(cache.to_dict(), path)
    return cache
