"""Stage timings of the SAM 3 backend: pre-processing, vision, text, decoder, post-processing.

``bench_sam3(model_path)`` runs each requested backend on a synthetic frame and reports, per
stage, the median / min / max milliseconds over ``runs`` timed passes (after ``warmup``
untimed ones), plus the machine, library versions and model size. Text is timed uncached (the
cache is cleared before each pass); in use it is paid once per phrase per command.
"""
from __future__ import annotations

import gc
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

STAGES = ('preprocess_ms', 'vision_ms', 'tokenize_ms', 'text_ms', 'decode_ms', 'postprocess_ms')


def machine_info() -> dict:
    """CPU model, core count, OS, Python and library versions (no GPU probing)."""
    import importlib.metadata as md

    cpu = platform.processor() or ''
    try:
        for line in Path('/proc/cpuinfo').read_text().splitlines():
            if line.startswith('model name'):
                cpu = line.split(':', 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for pkg in ('torch', 'transformers', 'onnxruntime', 'onnx', 'numpy', 'tensorrt'):
        try:
            versions[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            pass
    return {'cpu': cpu, 'logical_cores': os.cpu_count(), 'platform': platform.platform(),
            'python': platform.python_version(), 'versions': versions}


def _summary(values: list[float]) -> dict:
    return {'median': round(statistics.median(values), 3), 'min': round(min(values), 3),
            'max': round(max(values), 3), 'n': len(values)}


def _time_predictor(pred, rgb: np.ndarray, phrases, runs: int, warmup: int) -> dict:
    samples: dict[str, list[float]] = {k: [] for k in STAGES}
    candidates = []
    for i in range(warmup + runs):
        pred.clear_text_cache()
        image = pred.encode_image(rgb)
        texts = [pred.encode_text(p) for p in phrases]
        results = [pred.decode(image, t, score_threshold=0.0, max_candidates=10) for t in texts]
        if i < warmup:
            continue
        for k in ('preprocess_ms', 'vision_ms'):
            samples[k].append(image.timings[k])
        for t in texts:
            for k in ('tokenize_ms', 'text_ms'):
                samples[k].append(t.timings[k])
        for r in results:
            for k in ('decode_ms', 'postprocess_ms'):
                samples[k].append(r.timings[k])
        candidates = [len(r) for r in results]
    stages = {k: _summary(v) for k, v in samples.items() if v}
    per_frame = (stages['preprocess_ms']['median'] + stages['vision_ms']['median']
                 + len(phrases) * (stages['decode_ms']['median']
                                   + stages['postprocess_ms']['median']))
    return {'stages_ms': stages, 'frame_ms_median': round(per_frame, 3),
            'frame_ms_note': f'pre + vision + {len(phrases)} x (decode + post), text cached',
            'candidates_per_phrase': candidates}


def bench_sam3(model_path: str | Path, runs: int = 5, threads: int | None = None,
               backends: tuple[str, ...] = ('torch', 'onnxruntime'),
               frame_hw: tuple[int, int] = (480, 640),
               phrases: tuple[str, ...] = ('red cup', 'blue mug'), warmup: int = 1,
               onnx_dir: str | Path | None = None, cache_root: str | Path | None = None) -> dict:
    """Time every stage of the SAM 3 backend for each backend in ``backends``.

    Args:
        model_path: Hugging Face id or local model directory.
        runs: timed passes (each: 1 frame, ``len(phrases)`` uncached phrases and decodes).
        threads: torch intra-op threads and ONNX Runtime intra-op threads (None: defaults).
        backends: any of ``torch``, ``onnxruntime``, ``tensorrt``.
        frame_hw: synthetic frame size ``(H, W)`` in pixels (masks are returned at this size).
        phrases: concepts decoded per frame.
        warmup: untimed passes first.
        onnx_dir: an existing export (default: :func:`~.export.ensure_sam3_onnx` under
            ``cache_root``).
        cache_root: export cache root (default :func:`~.export.default_cache_root`).

    Returns:
        JSON-serialisable dict: ``machine``, ``model`` (parameters, input size, queries),
        ``settings``, and per backend ``stages_ms`` (median/min/max/n per stage),
        ``frame_ms_median`` and ``load_s``; an unavailable backend gets ``{'skipped': why}``.
    """
    from .export import _parity_inputs, ensure_sam3_onnx
    from .model_dir import resolve_model_path
    from .types import Sam3TensorRTUnavailable

    model_dir = resolve_model_path(model_path)
    rgb = _parity_inputs(frame_hw, seed=1)
    report = {'machine': machine_info(),
              'settings': {'runs': runs, 'warmup': warmup, 'threads': threads,
                           'frame_hw': list(frame_hw), 'phrases': list(phrases)},
              'model': {'path': str(model_path)}, 'backends': {}}
    for backend in backends:
        t0 = time.perf_counter()
        try:
            if backend == 'torch':
                from .torch_backend import Sam3TorchPredictor

                pred = Sam3TorchPredictor(model_dir, threads=threads)
                report['model'].update(
                    parameters=sum(p.numel() for p in pred.model.parameters()),
                    input_hw=list(pred.input_size),
                    num_queries=int(pred.model.config.detr_decoder_config.num_queries))
            elif backend in ('onnxruntime', 'tensorrt'):
                if onnx_dir is None:
                    onnx_dir = ensure_sam3_onnx(model_dir, cache_root, threads=threads).out_dir
                    report['settings']['onnx_dir'] = str(onnx_dir)
                if backend == 'onnxruntime':
                    from .onnx_runner import Sam3OnnxPredictor

                    pred = Sam3OnnxPredictor(onnx_dir, threads=threads)
                else:
                    from .tensorrt_backend import Sam3TensorRTPredictor

                    pred = Sam3TensorRTPredictor(onnx_dir)
            else:
                raise ValueError(f'unknown backend {backend!r}')
        except Sam3TensorRTUnavailable as exc:
            report['backends'][backend] = {'skipped': str(exc)}
            continue
        load_s = time.perf_counter() - t0
        entry = _time_predictor(pred, rgb, phrases, runs, warmup)
        entry['load_s'] = round(load_s, 2)
        report['backends'][backend] = entry
        del pred
        gc.collect()  # free one backend's weights before loading the next
    return report
