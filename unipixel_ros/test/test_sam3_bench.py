"""SAM 3 stage timings and the module entry point, on the tiny model."""
import json

from unipixel_ros.backends.sam3.__main__ import main
from unipixel_ros.backends.sam3.bench import STAGES, bench_sam3

pytest_plugins = ['sam3_fixtures']  # session fixtures: tiny_sam3_dir, tiny_sam3_export, ...


def test_bench_reports_every_stage_per_backend(tiny_sam3_dir, tiny_sam3_export):
    r = bench_sam3(tiny_sam3_dir, runs=2, threads=1, onnx_dir=tiny_sam3_export.out_dir,
                   backends=('torch', 'onnxruntime', 'tensorrt'), frame_hw=(48, 64),
                   phrases=('red cup', 'mug', 'box'))
    json.dumps(r)  # serialisable as printed by the CLI
    assert r['machine']['logical_cores'] >= 1 and 'onnxruntime' in r['machine']['versions']
    assert r['model']['num_queries'] == 20 and r['model']['input_hw'] == [224, 224]
    for backend in ('torch', 'onnxruntime'):
        b = r['backends'][backend]
        assert set(b['stages_ms']) == set(STAGES)
        assert b['stages_ms']['vision_ms']['n'] == 2 and b['stages_ms']['decode_ms']['n'] == 6
        assert all(s['median'] > 0 for k, s in b['stages_ms'].items() if k != 'tokenize_ms')
        assert b['candidates_per_phrase'] == [10, 10, 10]
    if 'skipped' in r['backends']['tensorrt']:
        assert 'TensorRT' in r['backends']['tensorrt']['skipped']


def test_entry_point_make_fixture_and_export_errors(tmp_path, capsys):
    assert main(['make-fixture', str(tmp_path / 'm')]) == 0
    assert json.loads(capsys.readouterr().out)['model_dir'] == str(tmp_path / 'm')
    assert (tmp_path / 'm' / 'model.safetensors').is_file()
    assert main(['export', str(tmp_path / 'missing'), str(tmp_path / 'out')]) == 1
    assert 'does not exist' in capsys.readouterr().err
