"""SAM 3 model paths: clear errors for missing, incomplete, corrupt or gated checkpoints."""
import json
import shutil

import pytest

from unipixel_ros.backends.sam3.model_dir import (model_sha256, resolve_model_path,
                                                  validate_model_dir)
from unipixel_ros.backends.sam3.types import Sam3ModelError

pytest_plugins = ['sam3_fixtures']  # session fixtures: tiny_sam3_dir, tiny_sam3_export, ...


@pytest.fixture
def model_copy(tiny_sam3_dir, tmp_path):
    d = tmp_path / 'model'
    shutil.copytree(tiny_sam3_dir, d)
    return d


def test_valid_directory_resolves(tiny_sam3_dir):
    assert resolve_model_path(str(tiny_sam3_dir)) == tiny_sam3_dir


def test_missing_path(tmp_path):
    with pytest.raises(Sam3ModelError, match='does not exist'):
        resolve_model_path(tmp_path / 'nope')
    with pytest.raises(Sam3ModelError, match='does not exist'):
        resolve_model_path('./nope/sam3')  # relative path, not a Hub id


@pytest.mark.parametrize('remove, message', [
    ('config.json', 'no config.json'),
    ('model.safetensors', 'no model.safetensors'),
    ('tokenizer.json', 'no tokenizer.json'),
    ('preprocessor_config.json', 'no preprocessor_config.json'),
])
def test_incomplete_directory(model_copy, remove, message):
    (model_copy / remove).unlink()
    with pytest.raises(Sam3ModelError, match=message):
        validate_model_dir(model_copy)


def test_corrupt_files(model_copy):
    weights = model_copy / 'model.safetensors'
    data = weights.read_bytes()
    weights.write_bytes(data[:len(data) // 2])  # interrupted download
    with pytest.raises(Sam3ModelError, match='truncated'):
        validate_model_dir(model_copy)
    weights.write_bytes(b'\x00' * 4)
    with pytest.raises(Sam3ModelError, match='not a valid safetensors'):
        validate_model_dir(model_copy)
    weights.write_bytes(data)
    (model_copy / 'config.json').write_text('{"model_type": ')
    with pytest.raises(Sam3ModelError, match='not valid JSON'):
        validate_model_dir(model_copy)
    (model_copy / 'config.json').write_text(json.dumps({'model_type': 'clip'}))
    with pytest.raises(Sam3ModelError, match="model_type 'clip'"):
        validate_model_dir(model_copy)


def test_torch_loader_reports_bad_directory(tmp_path):
    from unipixel_ros.backends.sam3.torch_backend import Sam3TorchPredictor

    with pytest.raises(Sam3ModelError, match='no config.json'):
        Sam3TorchPredictor(tmp_path)


def test_onnx_runner_reports_incomplete_export(tmp_path):
    from unipixel_ros.backends.sam3.onnx_runner import Sam3OnnxPredictor

    with pytest.raises(Sam3ModelError, match='missing'):
        Sam3OnnxPredictor(tmp_path)


def test_gated_hub_id_explains_the_licence_step(monkeypatch):
    from types import SimpleNamespace

    import huggingface_hub
    from huggingface_hub.errors import GatedRepoError

    def gated(*args, **kwargs):  # what the Hub answers an account without access (403)
        raise GatedRepoError('403 gated', response=SimpleNamespace(headers={}, request=None))
    monkeypatch.setattr(huggingface_hub, 'snapshot_download', gated)
    with pytest.raises(Sam3ModelError, match='accept the SAM licence'):
        resolve_model_path('facebook/sam3')


def test_sha256_changes_with_the_weights(model_copy, tiny_sam3_dir):
    a = model_sha256(tiny_sam3_dir)
    assert a == model_sha256(model_copy) and len(a) == 64
    w = model_copy / 'model.safetensors'
    data = bytearray(w.read_bytes())
    data[-1] ^= 1
    w.write_bytes(bytes(data))
    assert model_sha256(model_copy) != a
