"""Model speed per engine: median ms per 640x480 frame through :class:`ReferringPredictor`.

A frame's time covers what the node pays per frame: resize + normalise (pre-processing), the image
graph, and upsampling the mask to 640x480 + thresholding + attributes (post-processing). The text
prompt is encoded once beforehand and timed separately (``*_text_ms``), as in use.
"""
from __future__ import annotations

import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

FRAME_SIZE = (640, 480)  # (width, height) of the camera frames fed to the predictor
QUERY = 'pick up the red cup'


def synthetic_frame(width: int = FRAME_SIZE[0], height: int = FRAME_SIZE[1],
                    seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A tabletop-like (height, width, 3) uint8 RGB frame with a few coloured boxes, and its
    (height, width) float32 depth in metres."""
    rng = np.random.default_rng(seed)
    rgb = np.empty((height, width, 3), np.uint8)
    rgb[:] = (150, 120, 90)
    rgb = np.clip(rgb + rng.normal(0, 8, rgb.shape), 0, 255).astype(np.uint8)
    depth = np.full((height, width), 0.8, np.float32)
    for _ in range(4):
        w, h = rng.integers(30, 90, 2)
        x, y = rng.integers(0, width - w), rng.integers(0, height - h)
        rgb[y:y + h, x:x + w] = rng.integers(0, 256, 3)
        depth[y:y + h, x:x + w] = 0.75
    return rgb, depth


def _time_engine(engine, runs: int, warmup: int, rgb: np.ndarray, depth: np.ndarray) -> dict:
    """-> {'frame_ms', 'preprocess_ms', 'network_ms', 'postprocess_ms', 'text_ms'} medians."""
    from unipixel_ros.inference.predictor import ReferringPredictor

    pred = ReferringPredictor(engine)
    query = pred.encode_text(QUERY)  # first call loads the tokenizer: not timed
    text = []
    for _ in range(3):   # the text graph itself (the predictor would answer from its cache)
        t0 = time.perf_counter()
        engine.encode_text(QUERY)
        text.append((time.perf_counter() - t0) * 1e3)
    for _ in range(warmup):
        pred.predict(rgb, query)
    rows = [pred.predict(rgb, query).timings for _ in range(runs)]
    med = lambda key: round(statistics.median(r[key] for r in rows), 3)  # noqa: E731
    return {'frame_ms': med('total_ms'), 'preprocess_ms': med('preprocess_ms'),
            'network_ms': med('network_ms'),
            'postprocess_ms': med('postprocess_ms'),
            'text_ms': round(statistics.median(text), 3)}


def bench_model(checkpoint: str | Path, runs: int = 30, warmup: int = 3, threads: int = 0,
                seed: int = 0) -> dict:
    """Benchmark torch CPU, ONNX Runtime CPU and, where present, torch CUDA fp16 and TensorRT.

    Args:
        checkpoint: ``.safetensors`` checkpoint (exported to the ONNX cache on first use).
        runs: timed frames per engine (medians are reported).
        warmup: untimed frames per engine first.
        threads: CPU threads for torch and ONNX Runtime (0 = each library's default).

    Returns:
        JSON-ready dict: ``torch_cpu_ms``, ``onnxruntime_cpu_ms`` (median ms per frame incl.
        pre/post-processing), ``ratio`` (torch / onnxruntime), ``onnxruntime_fps``, ``input_size``
        [w, h], ``frame_size``, per-stage medians per engine, ``*_text_ms`` (one text encode),
        ``torch_cuda_fp16_ms`` / ``tensorrt_fp16_ms`` when a GPU (and TensorRT) is present, and
        ``skipped`` with the reason for each engine that could not run.
    """
    import torch

    from unipixel_ros.engines import EngineError, create_engine

    rgb, depth = synthetic_frame(seed=seed)
    torch_threads_before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    result: dict = {'checkpoint': str(checkpoint), 'runs': runs, 'frame_size': list(FRAME_SIZE),
                    'query': QUERY, 'cpu_count': os.cpu_count(), 'machine': platform.machine(),
                    'torch_threads': torch.get_num_threads(),
                    'onnxruntime_threads': threads or 'default', 'skipped': {}}
    stages = {}
    try:
        t0 = time.perf_counter()
        ort_engine = create_engine('onnxruntime', str(checkpoint), threads=threads)
        result['onnxruntime_load_s'] = round(time.perf_counter() - t0, 2)  # incl. a first export
        result['input_size'] = list(ort_engine.input_size)
        stages['onnxruntime_cpu'] = _time_engine(ort_engine, runs, warmup, rgb, depth)
        ort_engine.close()

        stages['torch_cpu'] = _time_engine(create_engine('torch', str(checkpoint), device='cpu'),
                                           runs, warmup, rgb, depth)
        if torch.cuda.is_available():
            gpu = create_engine('torch', str(checkpoint), device='cuda', fp16=True)
            stages['torch_cuda_fp16'] = _time_engine(gpu, runs, warmup, rgb, depth)
            gpu.close()
            result['gpu'] = torch.cuda.get_device_name()
            try:
                trt_engine = create_engine('tensorrt', str(checkpoint))
                stages['tensorrt_fp16'] = _time_engine(trt_engine, runs, warmup, rgb, depth)
                trt_engine.close()
            except EngineError as exc:
                result['skipped']['tensorrt_fp16'] = str(exc)
        else:
            result['skipped']['torch_cuda_fp16'] = 'CUDA is not available'
            result['skipped']['tensorrt_fp16'] = 'CUDA is not available'
    finally:
        torch.set_num_threads(torch_threads_before)

    for name, s in stages.items():
        result[f'{name}_ms'] = s['frame_ms']
        result[f'{name}_text_ms'] = s['text_ms']
    result['stages'] = stages
    result['ratio'] = round(result['torch_cpu_ms'] / result['onnxruntime_cpu_ms'], 3)
    result['onnxruntime_fps'] = round(1e3 / result['onnxruntime_cpu_ms'], 2)
    result['note'] = ('ratio = torch_cpu_ms / onnxruntime_cpu_ms; CPU timings on a shared machine '
                      'are noisy, compare runs on the same machine only')
    return result
