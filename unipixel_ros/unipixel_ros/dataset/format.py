"""On-disk layout of a referring-segmentation dataset (format version 1).

::

    DIR/dataset.json                     format version, vocabularies, counts, generator runs,
                                         and the scene list [{id, split, expressions}]
    DIR/<split>/<scene_id>/rgb.png       (H, W, 3) uint8
    DIR/<split>/<scene_id>/depth.png     (H, W) uint16 millimetres along the optical axis, 0 = none
    DIR/<split>/<scene_id>/instances.png (H, W) uint8 (uint16 past 255 objects): 0 = background,
                                         i + 1 = objects[i]
    DIR/<split>/<scene_id>/meta.json     see below

``meta.json``: ``format_version``, ``scene_id``, ``seed``, ``split``, ``width``, ``height``,
``K`` (row-major 3x3, 9 floats, pixel centres at integer coordinates), ``T_world_camera``
(4x4 nested lists, camera optical frame: x right, y down, z forward; metres), ``depth_scale``
(metres per depth unit, 0.001), ``objects`` (per object: index, category, color, size,
graspable, T_world_object, center_world, center_camera, extents, volume, visible_pixels),
``expressions`` (per expression: text, type, inner_type, target = object index or null,
structure) and ``scene`` (the generator's own description, opaque to readers).

Splits are assigned per scene from a hash of the scene seed, so adding scenes never moves
existing ones between splits.

Optional additions (datasets without them load as before):

- ``DIR/shifted/<scene_id>/``: a split of scenes drawn from factor values held out of training
  (written with an explicit split, not by the seed hash; see :data:`EXTRA_SPLITS`).
- ``depth_clean.png``: the rendered depth before sensor effects (same encoding as depth.png),
  when ``depth.png`` holds simulated sensor depth.
- ``meta.json`` ``factors``: the generator's factor values of the scene (``held_out`` lists the
  held-out ones); objects may add ``shape_variant``, ``color_extended``, ``color_terms``,
  ``pattern``, ``distractor``, ``size_relative``, ``color_rgb``, ``scale``; expressions may add
  ``held_out_words``. A distractor's ``category`` ('object') and some distractor colours
  ('brown', 'grey') are outside the vocabularies.
"""
from __future__ import annotations

import hashlib

FORMAT_VERSION = 1
DATASET_FILE = 'dataset.json'
META_FILE = 'meta.json'
RGB_FILE = 'rgb.png'
DEPTH_FILE = 'depth.png'
INSTANCES_FILE = 'instances.png'
#: Metres per unit of depth.png.
DEPTH_SCALE = 0.001
SPLITS = ('train', 'val', 'test')
#: Splits written explicitly (never by the seed hash): held-out factor values.
EXTRA_SPLITS = ('shifted',)
DEPTH_CLEAN_FILE = 'depth_clean.png'
#: Percent of scenes per split, in :data:`SPLITS` order.
SPLIT_PERCENT = (80, 10, 10)


def split_for_seed(seed: int) -> str:
    """Split of the scene generated from ``seed`` (stable: a hash, independent of the run)."""
    bucket = int(hashlib.sha256(str(int(seed)).encode()).hexdigest()[:8], 16) % 100
    bound = 0
    for split, percent in zip(SPLITS, SPLIT_PERCENT):
        bound += percent
        if bucket < bound:
            return split
    return SPLITS[-1]


def scene_id_for_seed(seed: int) -> str:
    """Directory name of the scene generated from ``seed``."""
    return f'scene_{int(seed):08d}'
