"""Dataset format: writer/reader round trip on synthetic scenes (numpy + Pillow only)."""
import json

import numpy as np
import pytest

from unipixel_ros.dataset import (DEPTH_SCALE, ReferringDataset, DatasetWriter, load_index,
                                  load_scene, scene_id_for_seed, split_for_seed)

H, W = 24, 32


def _scene(seed):
    rng = np.random.default_rng(seed)
    instances = np.zeros((H, W), np.int16)
    instances[2:8, 3:9] = 1
    instances[10:20, 12:30] = 2
    depth = rng.uniform(0.5, 1.5, (H, W)).astype(np.float32)
    depth[0, 0] = 0.0
    objects = [{'index': i, 'category': c, 'color': col, 'size': s}
               for i, (c, col, s) in enumerate([('cup', 'red', 'small'),
                                                 ('box', 'blue', 'large')])]
    expressions = [
        {'text': 'the red cup', 'type': 'attribute', 'inner_type': 'attribute', 'target': 0,
         'structure': {}},
        {'text': 'pick up the blue box', 'type': 'command', 'inner_type': 'attribute',
         'target': 1, 'structure': {}},
        {'text': 'the green bowl', 'type': 'absent', 'inner_type': 'absent', 'target': None,
         'structure': {}},
    ]
    meta = {'K': [40.0, 0, 15.5, 0, 40.0, 11.5, 0, 0, 1], 'T_world_camera': np.eye(4).tolist(),
            'objects': objects, 'expressions': expressions, 'scene': {'seed': seed}}
    rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    return rgb, depth, instances, meta


def test_split_is_a_stable_hash_of_the_seed():
    splits = [split_for_seed(s) for s in range(2000)]
    assert splits == [split_for_seed(s) for s in range(2000)]
    share = {k: splits.count(k) / len(splits) for k in ('train', 'val', 'test')}
    assert share['train'] == pytest.approx(0.8, abs=0.04)
    assert share['val'] == pytest.approx(0.1, abs=0.03)
    assert scene_id_for_seed(12) == 'scene_00000012'


def test_round_trip_and_incremental_index(tmp_path):
    writer = DatasetWriter(tmp_path)
    written = {}
    for seed in range(6):
        written[seed] = _scene(seed)
        writer.write_scene(seed, *written[seed])
    info = writer.finalize({'first_seed': 0, 'scenes': 6})
    assert info['format_version'] == 1 and 'cup' in info['vocabularies']['categories']
    assert len(info['scenes']) == 6
    assert sum(c['expressions'] for c in info['counts'].values()) == 18

    seed = 3
    rgb, depth, instances, meta = written[seed]
    rec = load_scene(tmp_path / split_for_seed(seed) / scene_id_for_seed(seed))
    assert np.array_equal(rec.rgb, rgb)
    assert np.array_equal(rec.instances, instances)
    assert np.abs(rec.depth_m - depth).max() <= DEPTH_SCALE / 2 + 1e-6
    assert rec.depth_m[0, 0] == 0.0
    assert rec.intrinsics.fx == 40.0 and rec.intrinsics.cx == 15.5
    assert rec.target_mask(0).sum() == 36 and not rec.target_mask(2).any()
    assert rec.meta['scene'] == {'seed': seed}

    # Adding scenes keeps old ones where they are and extends the index.
    writer.write_scene(100, *_scene(100))
    info = DatasetWriter(tmp_path).finalize({'first_seed': 100, 'scenes': 1})
    assert len(info['scenes']) == 7 and len(info['runs']) == 2
    assert json.loads((tmp_path / 'dataset.json').read_text()) == load_index(tmp_path)


def test_referring_dataset_samples(tmp_path):
    writer = DatasetWriter(tmp_path)
    for seed in range(4):
        writer.write_scene(seed, *_scene(seed))
    writer.finalize()
    data = ReferringDataset(tmp_path)
    assert len(data) == 12
    by_text = {}
    for i in range(len(data)):
        by_text.setdefault(data[i]['text'], data[i])
    cup, absent = by_text['the red cup'], by_text['the green bowl']
    assert cup['exists'] and cup['mask'].sum() == 36 and cup['target'] == 0
    assert data.categories[cup['category']] == 'cup' and data.colors[cup['color']] == 'red'
    assert data.sizes[cup['size']] == 'small'
    assert not absent['exists'] and not absent['mask'].any() and absent['category'] == -1
    assert by_text['pick up the blue box']['inner_type'] == 'attribute'
    assert cup['K'].shape == (3, 3) and cup['depth_m'].dtype == np.float32
    assert sum(len(ReferringDataset(tmp_path, s)) for s in ('train', 'val', 'test')) == 12
    with pytest.raises(ValueError):
        ReferringDataset(tmp_path, 'bogus')


def test_writer_rejects_mismatched_images(tmp_path):
    rgb, depth, instances, meta = _scene(0)
    with pytest.raises(ValueError):
        DatasetWriter(tmp_path).write_scene(0, rgb, depth[:-1], instances, meta)
