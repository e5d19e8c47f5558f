"""The model pipeline end to end on the generated 50-scene dataset: cache -> train -> resume ->
checkpoint -> eval CLI. A tiny network and a few steps: this checks the plumbing, not accuracy
(accuracy is the shipped checkpoint's eval JSON)."""
import csv
import json

import pytest

torch = pytest.importorskip('torch')
pytest.importorskip('transformers')

from unipixel_ros.cli import main as unipixel_ros_cli  # noqa: E402
from unipixel_ros.model.checkpoint import read_metadata  # noqa: E402
from unipixel_ros.training.train import TrainConfig, train  # noqa: E402

TINY = {'input_width': 96, 'input_height': 72, 'dim': 32, 'widths': [8, 8, 16, 16, 32],
        'blocks': [1, 1, 1, 1], 'heads': 2, 'fusion_blocks': 1, 'object_slots': 8}


def test_train_resume_checkpoint_and_eval(generated_dataset, tmp_path):
    root, _ = generated_dataset
    cfg = TrainConfig(data=[str(root)], out_dir=str(tmp_path / 'run'), model=TINY, steps=4,
                      expression_types=['attribute', 'relation'],
                      batch_size=4, eval_every=2, eval_samples=8, threads=2)
    first = train(TrainConfig(**{**cfg.__dict__, 'steps': 2}), progress=False)
    assert first['steps_done'] == 2
    resumed = train(cfg, progress=False)             # picks up last.pt and continues
    assert resumed['steps_done'] == 4
    rows = list(csv.DictReader((tmp_path / 'run' / 'metrics.csv').open()))
    assert [int(r['step']) for r in rows] == [2, 4]
    assert all(float(r['loss']) > 0 for r in rows)
    assert (tmp_path / 'run' / 'curves.png').stat().st_size > 0
    best = tmp_path / 'run' / 'best.safetensors'
    meta = read_metadata(best)
    assert meta['model_config']['input_width'] == 96

    out = tmp_path / 'eval.json'
    assert unipixel_ros_cli(['eval-dataset', '--data', str(root), '--checkpoint', str(best),
                             '--json', str(out), '--limit-scenes', '2', '--no-progress']) == 0
    result = json.loads(out.read_text())
    for key in ('ciou', 'miou', 'prec_50', 'prec_70', 'prec_90', 'no_target_acc', 'target_acc',
                'attribute_acc', 'by_type'):
        assert key in result
    assert result['queries'] == 8 and out.with_suffix('.png').stat().st_size > 0
