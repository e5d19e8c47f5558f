"""ONNX export and the ONNX Runtime / TensorRT engines against the torch reference.

A randomly initialised network (BatchNorm statistics and the mask/exists heads perturbed so masks
have both classes and ``found`` is True) is saved with ``save_checkpoint`` in a temp dir and
exported once per module into a temp ONNX cache; random weights are fine for parity.
"""
import json
import os
import shutil
from dataclasses import replace

import numpy as np
import pytest

torch = pytest.importorskip('torch')
pytest.importorskip('onnx')
pytest.importorskip('onnxruntime')
pytest.importorskip('transformers')

from torch import nn  # noqa: E402

from unipixel_ros import cli  # noqa: E402
from unipixel_ros.engines import GRAPH_IO, EngineError, create_engine  # noqa: E402
from unipixel_ros.benchmarks.model import synthetic_frame  # noqa: E402
from unipixel_ros.engines.onnx_engine import OnnxRuntimeEngine  # noqa: E402
from unipixel_ros.model import export as ex  # noqa: E402
from unipixel_ros.model.checkpoint import CheckpointError, save_checkpoint  # noqa: E402
from unipixel_ros.model.network import UniPixelNet  # noqa: E402
from unipixel_ros.model.objects import EMBED  # noqa: E402
from unipixel_ros.inference import loading  # noqa: E402
from unipixel_ros.inference.predictor import ReferringPredictor  # noqa: E402
from unipixel_ros.inference.settings import DecisionSettings  # noqa: E402


def _trt_available() -> str | None:
    """None when TensorRT tests can run, else the reason they skip."""
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        return 'TensorRT is not installed (it cannot be installed on CPU-only machines)'
    if not torch.cuda.is_available():
        return 'TensorRT is installed but CUDA is not available'
    return None


@pytest.fixture(scope='module', autouse=True)
def _env(tmp_path_factory):
    """Offline text encoder, a private ONNX cache, and one torch thread (see export._torch_threads:
    2 OpenMP threads on a shared, busy 2-core machine run ~40x slower than 1)."""
    mp = pytest.MonkeyPatch()
    mp.setenv('HF_HUB_OFFLINE', '1')
    mp.setenv('UNIPIXEL_ROS_CACHE', str(tmp_path_factory.mktemp('cache')))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
    mp.undo()


def _random_net(seed: int = 0) -> UniPixelNet:
    torch.manual_seed(seed)
    net = UniPixelNet()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 2.0)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
        # Make the target "exist" (a low "none" score) so found and masks are compared, and
        # the instance masks positive around their centres so the masks are non-trivial.
        net.objects.none_score[-1].bias.fill_(-4.0)
        net.objects.kernel[-1].bias[EMBED].fill_(2.0)
    return net.eval()


@pytest.fixture(scope='module')
def checkpoint(tmp_path_factory):
    return save_checkpoint(_random_net(), tmp_path_factory.mktemp('ckpt') / 'random.safetensors')


@pytest.fixture(scope='module')
def export_dir(checkpoint):
    """The cached export of ``checkpoint`` (the directory OnnxRuntimeEngine(checkpoint) uses)."""
    return ex.ensure_onnx_export(checkpoint, parity_samples=2)


@pytest.fixture(scope='module')
def engines(checkpoint, export_dir):
    return create_engine('torch', str(checkpoint)), OnnxRuntimeEngine(export_dir)


# ---- export checks ----------------------------------------------------------------------------
def test_export_is_valid_opset17_with_tensorrt_ops(export_dir):
    import onnx

    manifest = json.loads((export_dir / 'model.json').read_text())
    assert manifest['opset'] == ex.OPSET == 17
    used = set()
    for graph, io in GRAPH_IO.items():
        entry = manifest['graphs'][graph]
        path = export_dir / entry['file']
        onnx.checker.check_model(str(path), full_check=True)
        model = onnx.load(str(path))
        assert {o.domain: o.version for o in model.opset_import}[''] == 17
        assert [i.name for i in model.graph.input] == io['inputs']
        assert [o.name for o in model.graph.output] == io['outputs']
        ops = {n.op_type for n in model.graph.node}
        assert sorted(ops) == entry['op_types']
        assert entry['sha256'] == ex.file_sha256(path)
        used |= ops
    assert not used & ex.TENSORRT_UNSUPPORTED_OPS
    assert used <= ex.TENSORRT_SUPPORTED_OPS, sorted(used - ex.TENSORRT_SUPPORTED_OPS)
    assert sorted(used) == manifest['op_types']
    assert manifest['checkpoint_sha256'] and manifest['vocab']['categories']
    # The text graph's token axis is dynamic (a TensorRT optimisation profile spans 1..max).
    text = onnx.load(str(export_dir / 'text.onnx'))
    assert text.graph.input[0].type.tensor_type.shape.dim[1].dim_param
    assert manifest['text_tokens'] == {'min': 1, 'opt': 24, 'max': 24}


def test_tensorrt_op_check_rejects_unsupported():
    with pytest.raises(ex.ExportError, match='Unique'):
        ex.check_tensorrt_ops(['Conv', 'Unique'])


def test_onnx_parity_50_samples(checkpoint, export_dir):
    parity = ex.check_parity(checkpoint, export_dir, samples=50, seed=1)
    print('\n' + ex.format_parity(parity))
    for name in GRAPH_IO['image']['outputs']:
        assert parity['image'][name] <= 1e-3, (name, parity['image'][name])
    assert parity['image']['mask_iou_min'] >= 0.99
    assert parity['point']['prompt'] <= 1e-3
    assert parity['text']['prompt'] <= 1e-3
    # The masks compared are not trivial (both classes present at some logit magnitude).
    assert parity['scale']['image.mask_logits'] > 1.0


def test_text_graph_matches_transformers_minilm(engines):
    torch_engine, ort_engine = engines
    for text in ('pick up the red cup', 'the small green block left of the bowl', 'x',
                 'grab the large blue bottle next to the yellow banana on the far side ' * 3):
        ref, ref_mask = torch_engine.encode_text(text)   # transformers MiniLM + text_proj
        got, got_mask = ort_engine.encode_text(text)
        assert got.shape == ref.shape == (1, 24, 128)
        np.testing.assert_array_equal(got_mask, ref_mask)
        assert np.abs(got - ref).max() <= 1e-3


def test_predictor_same_on_torch_and_onnxruntime(engines):
    preds = [ReferringPredictor(e) for e in engines]
    for k, query in enumerate(('pick up the red cup', 'point', 'the small blue box')):
        rgb, _ = synthetic_frame(seed=k)
        queries = [p.encode_point(320, 200, 640, 480) if query == 'point' else p.encode_text(query)
                   for p in preds]
        # Random weights put the mask anywhere between empty and full: threshold at the median
        # probability so the masks compared have both classes (the hardest case for agreement).
        threshold = float(np.median(preds[0].predict(rgb, queries[0]).mask_prob))
        for p in preds:
            p.settings = replace(p.settings, mask_threshold=threshold)
        a, b = (p.predict(rgb, q) for p, q in zip(preds, queries))
        assert a.found == b.found and a.found
        assert a.mask.shape == b.mask.shape == (480, 640)
        assert 0 < a.mask.sum() < a.mask.size
        assert np.mean(a.mask != b.mask) <= 1e-4
        assert abs(a.score - b.score) <= 1e-4
        assert a.box == b.box or np.abs(np.subtract(a.box, b.box)).max() <= 1
        assert a.attributes.keys() == b.attributes.keys()
        assert all(a.attributes[k][0] == b.attributes[k][0] for k in a.attributes)


def test_checkpoint_engine_reuses_cached_export(checkpoint, export_dir):
    mtime = (export_dir / 'model.json').stat().st_mtime_ns
    engine = create_engine('onnxruntime', str(checkpoint))
    assert engine.model_dir == export_dir
    assert (export_dir / 'model.json').stat().st_mtime_ns == mtime
    assert export_dir.parent.parent == ex.cache_root()
    assert engine.input_size == (320, 240)


# ---- errors name the file ---------------------------------------------------------------------
def _linked_copy(src, dst):
    """The export with every file symlinked (cheap), so one file can be replaced."""
    dst.mkdir()
    for f in src.iterdir():
        os.symlink(f, dst / f.name)
    return dst


@pytest.mark.parametrize('verify', [True, False])
def test_corrupt_onnx_names_file(export_dir, tmp_path, verify):
    d = _linked_copy(export_dir, tmp_path / 'export')
    (d / 'image.onnx').unlink()
    (d / 'image.onnx').write_bytes(b'not an onnx model')
    with pytest.raises(EngineError, match=r'image\.onnx'):
        OnnxRuntimeEngine(d, verify=verify)


def test_missing_graph_or_manifest_names_file(export_dir, tmp_path):
    d = _linked_copy(export_dir, tmp_path / 'export')
    (d / 'text.onnx').unlink()
    with pytest.raises(EngineError, match=r'text\.onnx'):
        OnnxRuntimeEngine(d)
    (d / 'model.json').unlink()
    with pytest.raises(EngineError, match=r'model\.json'):
        OnnxRuntimeEngine(d)
    (d / 'model.json').write_text('{"format": ')
    with pytest.raises(EngineError, match=r'model\.json.*corrupt'):
        OnnxRuntimeEngine(d)
    with pytest.raises(EngineError, match='nowhere'):
        OnnxRuntimeEngine(tmp_path / 'nowhere')


def test_corrupt_or_missing_checkpoint_names_file(tmp_path, monkeypatch):
    bad = tmp_path / 'bad.safetensors'
    bad.write_bytes(b'\x00' * 64)
    with pytest.raises(CheckpointError, match=r'bad\.safetensors'):
        OnnxRuntimeEngine(bad)
    with pytest.raises(CheckpointError, match=r'bad\.safetensors'):
        ex.export_onnx(bad, tmp_path / 'out')
    with pytest.raises(CheckpointError, match=r'gone\.safetensors'):
        OnnxRuntimeEngine(tmp_path / 'gone.safetensors')
    monkeypatch.setattr(loading, 'DEFAULT_CHECKPOINT', tmp_path / 'unipixel_sim_v1.safetensors')
    with pytest.raises(CheckpointError, match=r'unipixel_sim_v1\.safetensors.*--checkpoint'):
        loading.resolve_checkpoint(None)
    assert cli.main(['bench', 'model', '--json', str(tmp_path / 'b.json')]) == 1


# ---- CLI --------------------------------------------------------------------------------------
def test_cli_export_onnx_prints_parity(checkpoint, tmp_path, capsys):
    out = tmp_path / 'onnx'
    assert cli.main(['export', '--checkpoint', str(checkpoint), '--format', 'onnx',
                     '--out', str(out), '--parity-samples', '2']) == 0
    printed = capsys.readouterr().out
    assert 'image: max |onnx - torch| mask_logits' in printed and 'opset 17' in printed
    assert all((out / f'{g}.onnx').is_file() for g in GRAPH_IO)
    assert OnnxRuntimeEngine(out).encode_text('red cup')[0].shape == (1, 24, 128)


def test_cli_bench_model_writes_json_and_png(checkpoint, export_dir, tmp_path, capsys):
    out = tmp_path / 'bench' / 'model.json'
    assert cli.main(['bench', 'model', '--checkpoint', str(checkpoint), '--json', str(out),
                     '--runs', '2']) == 0
    result = json.loads(out.read_text())
    for key in ('torch_cpu_ms', 'onnxruntime_cpu_ms', 'input_size', 'ratio', 'onnxruntime_fps',
                'torch_cpu_text_ms', 'onnxruntime_cpu_text_ms'):
        assert key in result, key
    assert result['input_size'] == [320, 240] and result['frame_size'] == [640, 480]
    assert result['ratio'] > 0 and result['onnxruntime_fps'] > 0
    assert out.with_suffix('.png').stat().st_size > 0
    if not torch.cuda.is_available():
        assert 'torch_cuda_fp16' in result['skipped']


# ---- TensorRT ---------------------------------------------------------------------------------
@pytest.mark.skipif(_trt_available() is None, reason='TensorRT works here: no error path')
def test_tensorrt_absent_is_a_clear_engine_error(export_dir):
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        with pytest.raises(EngineError, match='TensorRT is not installed'):
            create_engine('tensorrt', str(export_dir))
    else:  # installed, but no CUDA
        with pytest.raises(EngineError, match='CUDA'):
            create_engine('tensorrt', str(export_dir))


def test_tensorrt_export_cli_fails_clearly_without_tensorrt(checkpoint, tmp_path, capsys):
    try:
        import tensorrt  # noqa: F401
        pytest.skip('TensorRT is installed')
    except ImportError:
        pass
    assert cli.main(['export', '--checkpoint', str(checkpoint), '--format', 'tensorrt',
                     '--out', str(tmp_path / 'trt')]) == 1
    assert 'TensorRT is not installed' in capsys.readouterr().err
    assert not (tmp_path / 'trt').exists()  # failed before the slow ONNX export


@pytest.mark.skipif(_trt_available() is not None, reason=str(_trt_available()))
def test_tensorrt_fp16_matches_onnxruntime(export_dir, engines, tmp_path):
    from unipixel_ros.engines.tensorrt_engine import TensorRTEngine

    trt_engine = TensorRTEngine(export_dir, cache_dir=tmp_path / 'engines')
    assert len(list((tmp_path / 'engines').glob('*.engine'))) == 3
    ort_engine = engines[1]
    prompt = ort_engine.encode_text('pick up the red cup')
    trt_prompt = trt_engine.encode_text('pick up the red cup')
    assert np.abs(trt_prompt[0] - prompt[0]).max() <= 1e-2     # fp32 text engine
    rgb, _ = synthetic_frame(seed=3)
    a = ReferringPredictor(ort_engine)
    b = ReferringPredictor(trt_engine)
    query = a.encode_text('pick up the red cup')       # the same prompt for both image engines
    pa, pb = a.predict(rgb, query), b.predict(rgb, query)
    assert pa.found == pb.found
    assert ex.mask_iou(pa.mask, pb.mask) >= 0.98               # fp16 image engine
    trt_engine.close()
    shutil.rmtree(tmp_path / 'engines', ignore_errors=True)


def test_attribute_verification_turns_a_contradicted_answer_into_not_found(checkpoint):
    """verify_min_prob 1.0 rejects whatever the phrase names (no class has probability 1); a
    phrase that names nothing, or verification off, keeps the answer."""
    engine = create_engine('torch', str(checkpoint))
    rgb, _ = synthetic_frame(seed=0)
    strict = ReferringPredictor(engine, DecisionSettings(
        exists_threshold=0.0, mask_threshold=0.0, verify_attributes=('category', 'color'),
        verify_min_prob=1.0))
    pred = strict.predict(rgb, strict.encode_text('the red cup'))
    assert not pred.found and not pred.mask.any() and pred.box is None
    assert pred.rejected.startswith('category: asked for cup')
    assert strict.predict(rgb, strict.encode_text('the thing on the left')).found
    off = ReferringPredictor(engine, DecisionSettings(exists_threshold=0.0, mask_threshold=0.0))
    red_cup = off.encode_text('the red cup')
    assert off.predict(rgb, red_cup).found
    assert off.predict(rgb, red_cup).rejected == ''
    with pytest.raises(ValueError, match='shape'):
        DecisionSettings(verify_attributes=('shape',))


def test_the_export_cache_is_keyed_by_the_graph_code_too(checkpoint, monkeypatch):
    """Same weights, changed graph code (network.py, objects.py, export.py): a new export, not
    the one cached from the old code."""
    before = ex.cached_export_dir(checkpoint)
    assert before == ex.cached_export_dir(checkpoint)
    monkeypatch.setattr(ex, 'graph_code_sha256', lambda: '0' * 64)
    assert ex.cached_export_dir(checkpoint) != before
