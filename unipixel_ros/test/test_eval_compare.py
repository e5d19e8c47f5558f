"""Dataset evaluation side by side: sources, held-out factor buckets, the table, the chart and
`eval-dataset` with several --data (the shipped model on a tiny synthetic dataset)."""
import json

import numpy as np
import pytest

from unipixel_ros.dataset import DatasetWriter
from unipixel_ros.training.evaluation import (NO_HELD_OUT, comparison_table, held_out_factors,
                                              parse_source, plot_comparison)


def test_sources_take_an_optional_label_and_split():
    assert parse_source('data/a') == ('a:all', 'data/a', None)
    assert parse_source('data/a', 'val') == ('a:val', 'data/a', 'val')
    assert parse_source('data/a:shifted', 'val') == ('a:shifted', 'data/a', 'shifted')
    assert parse_source('base=data/a:all', 'val') == ('base', 'data/a', None)
    # a colon that is not followed by a split name is part of the folder
    assert parse_source('data/a:b') == ('a:b:all', 'data/a:b', None)


def test_held_out_factors_are_the_scenes_and_language_is_the_expressions():
    meta = {'factors': {'held_out': ['camera_profile', 'language', 'texture']}}
    assert held_out_factors(meta, {'held_out_words': []}) == ['camera_profile', 'texture']
    assert held_out_factors(meta, {'held_out_words': ['noun:tin']}) == [
        'camera_profile', 'texture', 'language']
    assert held_out_factors({'factors': {'held_out': []}}, {}) == [NO_HELD_OUT]
    assert held_out_factors({}, {'held_out_words': ['noun:tin']}) == []   # default generator


def _result(p50, factors=None):
    b = {'samples': 10, 'targets': 8, 'absent': 2, 'ciou': 70.0, 'miou': 60.0,
         'prec_50': p50, 'target_acc': 90.0, 'no_target_acc': 50.0, 'attribute_acc': None}
    r = dict(b, queries=10, by_type={'attribute': dict(b, absent=0),
                                     'absent': dict(b, targets=0, prec_50=None, ciou=None)})
    if factors:
        r['by_held_out'] = {f: dict(b) for f in factors}
    return r


def test_table_and_chart_show_every_source(tmp_path):
    comparison = {'order': ['sim', 'shifted'],
                  'datasets': {'sim': _result(90.0),
                               'shifted': _result(30.0, ['none', 'texture'])}}
    table = comparison_table(comparison)
    assert table.splitlines()[0].split()[-2:] == ['sim', 'shifted']
    line = next(t for t in table.splitlines() if t.startswith('prec_50'))
    assert line.split()[1:] == ['90.0', '30.0']
    assert 'held-out texture prec_50' in table
    assert not any(t.startswith('absent prec_50') for t in table.splitlines())  # all None
    png = tmp_path / 'cmp.png'
    plot_comparison(comparison, png)
    assert png.stat().st_size > 20_000


H, W = 48, 64


def _scene(seed, held_out):
    rng = np.random.default_rng(seed)
    instances = np.zeros((H, W), np.int16)
    instances[10:30, 10:30] = 1
    objects = [{'index': 0, 'category': 'cup', 'color': 'red', 'size': 'small'}]
    expressions = [
        {'text': 'the red cup', 'type': 'attribute', 'inner_type': 'attribute', 'target': 0,
         'structure': {}, 'held_out_words': []},
        {'text': 'the green tin', 'type': 'absent', 'inner_type': 'absent', 'target': None,
         'structure': {}, 'held_out_words': ['noun:tin']},
    ]
    meta = {'K': [60.0, 0, 31.5, 0, 60.0, 23.5, 0, 0, 1], 'T_world_camera': np.eye(4).tolist(),
            'objects': objects, 'expressions': expressions, 'scene': {'seed': seed},
            'factors': {'held_out': held_out}}
    return (rng.integers(0, 256, (H, W, 3), dtype=np.uint8),
            np.full((H, W), 0.8, np.float32), instances, meta)


def test_eval_dataset_puts_several_sources_side_by_side(tmp_path, capsys):
    pytest.importorskip('onnxruntime')
    from unipixel_ros.cli import main
    from unipixel_ros.inference.loading import DEFAULT_CHECKPOINT
    if not DEFAULT_CHECKPOINT.is_file():
        pytest.skip(f'no shipped checkpoint at {DEFAULT_CHECKPOINT}')
    root = tmp_path / 'data'
    writer = DatasetWriter(root)
    writer.write_scene(1, *_scene(1, []))
    writer.write_scene(2, *_scene(2, ['texture']), split='shifted')
    writer.finalize({'first_seed': 1, 'scenes': 2})
    out = tmp_path / 'cmp.json'
    assert main(['eval-dataset', '--engine', 'onnxruntime', '--data', f'in={root}',
                 '--data', f'{root}:shifted', '--json', str(out), '--no-progress']) == 0
    result = json.loads(out.read_text())
    assert result['order'] == ['in', 'data:shifted']
    inside, shifted = (result['datasets'][k] for k in result['order'])
    assert inside['queries'] == shifted['queries'] == 2
    assert shifted['split'] == 'shifted' and inside['split'] == 'all'
    assert inside['by_held_out']['none']['samples'] == 1       # the absent one is 'language'
    assert inside['by_held_out']['language']['absent'] == 1
    assert shifted['by_held_out']['texture']['samples'] == 2
    assert len(result['checkpoint_sha256']) == 64 and '/' not in result['checkpoint']
    assert out.with_suffix('.png').stat().st_size > 20_000
    assert 'in' in capsys.readouterr().out
    # one source keeps the flat format (by_type at the top level)
    single = tmp_path / 'one.json'
    assert main(['eval-dataset', '--engine', 'onnxruntime', '--data', str(root), '--split',
                 'shifted', '--json', str(single), '--no-progress']) == 0
    flat = json.loads(single.read_text())
    assert flat['queries'] == 2 and 'by_type' in flat and flat['split'] == 'shifted'


def test_attributes_are_scored_only_for_targets_named_in_the_vocabulary():
    from unipixel_ros.training.evaluation import _in_vocabulary
    assert _in_vocabulary({'category': 'cup', 'color': 'red', 'size': 'small'})
    assert not _in_vocabulary({'category': 'object', 'color': 'red', 'size': 'small'})
    assert not _in_vocabulary({'category': 'cup', 'color': 'brown', 'size': 'small'})
