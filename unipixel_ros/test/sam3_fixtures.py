"""Shared pytest fixtures of the SAM 3 backend tests: one tiny random model (+ its ONNX export)
per test run, built in a temporary directory and reused by every test module that imports them."""
from __future__ import annotations

import pytest

_BUILT: dict[str, object] = {}


@pytest.fixture(scope='session')
def tiny_sam3_dir(tmp_path_factory):
    """A tiny random SAM 3 checkpoint directory (224 px, 20 queries, hidden 32)."""
    if 'model' not in _BUILT:
        from unipixel_ros.backends.sam3.fixture import make_tiny_sam3

        _BUILT['model'] = make_tiny_sam3(tmp_path_factory.mktemp('sam3_tiny'))
    return _BUILT['model']


@pytest.fixture(scope='session')
def tiny_sam3_export(tiny_sam3_dir, tmp_path_factory):
    """``export_sam3_onnx`` result of the tiny model (parity checked)."""
    if 'export' not in _BUILT:
        from unipixel_ros.backends.sam3.export import export_sam3_onnx

        _BUILT['export'] = export_sam3_onnx(tiny_sam3_dir,
                                            tmp_path_factory.mktemp('sam3_onnx'), threads=1)
    return _BUILT['export']


@pytest.fixture(scope='session')
def tiny_torch_predictor(tiny_sam3_dir):
    from unipixel_ros.backends.sam3.torch_backend import Sam3TorchPredictor

    if 'torch' not in _BUILT:
        _BUILT['torch'] = Sam3TorchPredictor(tiny_sam3_dir, threads=1)
    return _BUILT['torch']


def smooth_frame(h: int = 60, w: int = 80, seed: int = 0):
    """A smooth random uint8 RGB frame (not the model's input size, to exercise resizing)."""
    from unipixel_ros.backends.sam3.export import _parity_inputs

    return _parity_inputs((h, w), seed)
