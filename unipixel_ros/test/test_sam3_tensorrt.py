"""SAM 3 TensorRT path: engine cache keys everywhere; building only where TensorRT exists."""
import importlib.util

import numpy as np
import pytest

from sam3_fixtures import smooth_frame
from unipixel_ros.backends.sam3.tensorrt_backend import build_sam3_tensorrt, engine_cache_key
from unipixel_ros.backends.sam3.types import Sam3TensorRTUnavailable

pytest_plugins = ['sam3_fixtures']  # session fixtures: tiny_sam3_dir, tiny_sam3_export, ...

HAVE_TRT = importlib.util.find_spec('tensorrt') is not None
NO_TRT = 'TensorRT (tensorrt >= 10, NVIDIA GPU) is not installable on this machine'


def test_engine_cache_key_covers_model_gpu_version_precision():
    base = dict(model_sha256='a' * 64, graph='vision', trt_version='10.9.0', gpu='H100 sm_90',
                fp16=True)
    key = engine_cache_key(**base)
    assert key == engine_cache_key(**base) and len(key) == 16
    for change in (dict(model_sha256='b' * 64), dict(graph='decoder'),
                   dict(trt_version='10.10.0'), dict(gpu='Orin sm_87'), dict(fp16=False)):
        assert engine_cache_key(**{**base, **change}) != key, change


@pytest.mark.skipif(HAVE_TRT, reason='TensorRT is installed: the real build test runs instead')
def test_without_tensorrt_build_says_what_is_missing(tmp_path):
    with pytest.raises(Sam3TensorRTUnavailable, match='TensorRT is not installed'):
        build_sam3_tensorrt(tmp_path)


@pytest.mark.skipif(not HAVE_TRT, reason=NO_TRT)
def test_build_cache_and_parity_with_onnxruntime(tiny_sam3_export, tmp_path):
    from unipixel_ros.backends.sam3.onnx_runner import Sam3OnnxPredictor
    from unipixel_ros.backends.sam3.tensorrt_backend import Sam3TensorRTPredictor

    built = build_sam3_tensorrt(tiny_sam3_export.out_dir, tmp_path, fp16=False)
    assert set(built['built']) == {'vision', 'text', 'decoder'}
    again = build_sam3_tensorrt(tiny_sam3_export.out_dir, tmp_path, fp16=False)
    assert sorted(again['cached']) == ['decoder', 'text', 'vision'] and not again['built']
    trt_p = Sam3TensorRTPredictor(tiny_sam3_export.out_dir, engine_dir=tmp_path, fp16=False)
    ort_p = Sam3OnnxPredictor(tiny_sam3_export.out_dir)
    rgb = smooth_frame()
    a = trt_p.decode_raw(trt_p.encode_image(rgb), trt_p.encode_text('red cup'))
    b = ort_p.decode_raw(ort_p.encode_image(rgb), ort_p.encode_text('red cup'))
    np.testing.assert_allclose(a.logits, b.logits, atol=1e-3)
    np.testing.assert_allclose(a.boxes, b.boxes, atol=1e-3)
