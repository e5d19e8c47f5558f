"""Writing scenes in the dataset format (see :mod:`unipixel_ros.dataset.format`)."""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections import Counter
from pathlib import Path
from typing import Optional, Union

import numpy as np
from PIL import Image

from . import format as fmt
from .vocab import CATEGORIES, COLORS, EXPRESSION_TYPES, SIZES


def encode_depth(depth_m: np.ndarray) -> np.ndarray:
    """(H, W) float metres -> (H, W) uint16 millimetres; invalid (0, NaN, inf, < 0) -> 0 and
    values past 65.535 m are clipped."""
    depth = np.nan_to_num(np.asarray(depth_m, dtype=np.float64), nan=0.0, posinf=0.0)
    return np.clip(np.rint(depth / fmt.DEPTH_SCALE), 0, 65535).astype(np.uint16)


def encode_instances(instances: np.ndarray) -> np.ndarray:
    """(H, W) integer ids (0 = background; negative treated as background) -> uint8 or uint16."""
    ids = np.clip(np.asarray(instances), 0, None)
    return ids.astype(np.uint8 if ids.max(initial=0) < 256 else np.uint16)


def _index_factors(factors: dict) -> dict:
    """The scene-level factor values and the held-out factor names of a scene, for the index
    (per-object lists stay in meta.json)."""
    return {k: v for k, v in factors.items() if not isinstance(v, (list, dict))
            or k == 'held_out'}


class DatasetWriter:
    """Writes scenes into ``root``; several processes may write different scenes at once.

    Each scene is written into a temporary folder and renamed into place, so a reader never
    sees a half-written scene. Call :meth:`finalize` once all writers are done.
    """

    def __init__(self, root: Union[str, os.PathLike]) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def write_scene(self, seed: int, rgb: np.ndarray, depth_m: np.ndarray,
                    instances: np.ndarray, meta: dict, split: Optional[str] = None,
                    depth_clean_m: Optional[np.ndarray] = None) -> Path:
        """Write one scene; ``meta`` carries everything but the fields this method fills in
        (format_version, scene_id, seed, split, width, height, depth_scale).

        Args:
            seed: the scene's generator seed (decides its id and split).
            rgb: (H, W, 3) uint8.
            depth_m: (H, W) float32 metres along the optical axis (0 = no reading).
            instances: (H, W) integer instance ids (0 = background, i + 1 = ``objects[i]``).
            meta: K, T_world_camera, objects, expressions, scene (see the format module).
            split: None = by the seed hash (train / val / test), or one of
                ``format.EXTRA_SPLITS`` (e.g. 'shifted').
            depth_clean_m: optional (H, W) float32 depth before sensor effects, metres;
                written as depth_clean.png.
        Returns:
            The scene folder.
        """
        rgb = np.asarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f'rgb must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}')
        height, width = rgb.shape[:2]
        for name, image in (('depth_m', depth_m), ('instances', instances)):
            if np.shape(image) != (height, width):
                raise ValueError(f'{name} must be {(height, width)}, got {np.shape(image)}')
        if depth_clean_m is not None and np.shape(depth_clean_m) != (height, width):
            raise ValueError(f'depth_clean_m must be {(height, width)}, '
                             f'got {np.shape(depth_clean_m)}')
        if split is not None and split not in fmt.EXTRA_SPLITS:
            raise ValueError(f'split must be None or one of {fmt.EXTRA_SPLITS}, got {split!r}')
        split = split or fmt.split_for_seed(seed)
        scene_id = fmt.scene_id_for_seed(seed)
        meta = dict(meta, format_version=fmt.FORMAT_VERSION, scene_id=scene_id, seed=int(seed),
                    split=split, width=int(width), height=int(height),
                    depth_scale=fmt.DEPTH_SCALE)
        final = self.root / split / scene_id
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f'.{scene_id}.', dir=final.parent))
        try:
            Image.fromarray(rgb).save(tmp / fmt.RGB_FILE, compress_level=1)
            Image.fromarray(encode_depth(depth_m)).save(tmp / fmt.DEPTH_FILE, compress_level=1)
            Image.fromarray(encode_instances(instances)).save(tmp / fmt.INSTANCES_FILE)
            if depth_clean_m is not None:
                Image.fromarray(encode_depth(depth_clean_m)).save(tmp / fmt.DEPTH_CLEAN_FILE,
                                                                  compress_level=1)
            with open(tmp / fmt.META_FILE, 'w') as f:
                json.dump(meta, f)
            if final.exists():
                shutil.rmtree(final)
            os.replace(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

    def finalize(self, run: Optional[dict] = None) -> dict:
        """Scan every scene on disk and (re)write ``dataset.json``.

        Args:
            run: description of the generator run that just finished (seed, scene count,
                options); appended to the ``runs`` list kept from an earlier ``dataset.json``.
        Returns:
            The dataset.json contents.
        """
        index_path = self.root / fmt.DATASET_FILE
        runs = []
        if index_path.exists():
            with open(index_path) as f:
                runs = json.load(f).get('runs', [])
        if run is not None:
            runs.append(run)
        scenes = []
        counts = {split: {'scenes': 0, 'expressions': 0, 'by_type': Counter(), 'absent': 0}
                  for split in fmt.SPLITS}
        extra = [s for s in fmt.EXTRA_SPLITS if any((self.root / s).glob(f'*/{fmt.META_FILE}'))]
        for split in extra:
            counts[split] = {'scenes': 0, 'expressions': 0, 'by_type': Counter(), 'absent': 0}
        for split in fmt.SPLITS + tuple(extra):
            for meta_path in sorted((self.root / split).glob(f'*/{fmt.META_FILE}')):
                with open(meta_path) as f:
                    meta = json.load(f)
                exprs = meta['expressions']
                entry = {'id': meta['scene_id'], 'split': split, 'seed': meta['seed'],
                         'expressions': len(exprs)}
                if 'factors' in meta:
                    entry['factors'] = _index_factors(meta['factors'])
                scenes.append(entry)
                c = counts[split]
                c['scenes'] += 1
                c['expressions'] += len(exprs)
                c['by_type'].update(e['type'] for e in exprs)
                c['absent'] += sum(e['target'] is None for e in exprs)
        info = {
            'format_version': fmt.FORMAT_VERSION,
            'vocabularies': {'categories': list(CATEGORIES), 'colors': list(COLORS),
                             'sizes': list(SIZES), 'expression_types': list(EXPRESSION_TYPES)},
            'splits': {'names': list(fmt.SPLITS), 'percent': list(fmt.SPLIT_PERCENT),
                       'rule': 'sha256(str(seed)) first 8 hex digits mod 100'},
            'counts': {s: dict(c, by_type=dict(c['by_type'])) for s, c in counts.items()},
            'runs': runs,
            'scenes': scenes,
        }
        tmp = index_path.with_suffix('.json.tmp')
        with open(tmp, 'w') as f:
            json.dump(info, f, indent=1)
        os.replace(tmp, index_path)
        return info
