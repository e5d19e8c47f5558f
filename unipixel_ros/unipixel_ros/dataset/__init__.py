"""Referring-segmentation dataset format: writer and reader (numpy + Pillow, no MuJoCo).

The layout is documented in :mod:`unipixel_ros.dataset.format` and in unipixel_sim/README.md.
"""
from .format import (DATASET_FILE, DEPTH_SCALE, FORMAT_VERSION, SPLITS, scene_id_for_seed,
                     split_for_seed)
from .reader import ReferringDataset, SceneRecord, load_index, load_meta, load_scene
from .vocab import CATEGORIES, COLORS, EXPRESSION_TYPES, SIZES
from .writer import DatasetWriter, encode_depth, encode_instances

__all__ = [
    'CATEGORIES', 'COLORS', 'DATASET_FILE', 'DEPTH_SCALE', 'DatasetWriter', 'EXPRESSION_TYPES',
    'FORMAT_VERSION', 'ReferringDataset', 'SIZES', 'SPLITS', 'SceneRecord', 'encode_depth',
    'encode_instances', 'load_index', 'load_meta', 'load_scene', 'scene_id_for_seed',
    'split_for_seed',
]
