"""SAM 3 open-vocabulary segmentation backend: phrase + frame -> per-concept candidates.

SAM 3 (Meta, "Segment Anything with Concepts") finds every instance of a short noun phrase in
an image and returns a mask, box and score per instance plus one "presence" score for the
concept. This package runs it encode-once style (vision once per frame, text once per phrase,
the decoders once per concept) in PyTorch, ONNX Runtime or TensorRT::

    from unipixel_ros.backends.sam3 import create_sam3_predictor
    pred = create_sam3_predictor('facebook/sam3', backend='onnxruntime')
    # or, without the gated weights: pred = create_sam3_predictor(make_tiny_sam3(DIR), ...)
    image = pred.encode_image(rgb)                # (H, W, 3) uint8
    cups = pred.decode(image, pred.encode_text('red cup'))
    cups.masks  # (N, H, W) bool    cups.boxes  # (N, 4) px    cups.scores  # (N,)

Getting the weights (``facebook/sam3`` is gated):

1. Sign in on https://huggingface.co, open https://huggingface.co/facebook/sam3 and accept the
   SAM licence (access is granted per account, usually quickly).
2. On the robot or workstation: ``hf auth login`` (or export ``HF_TOKEN``), then any call with
   ``model_path='facebook/sam3'`` downloads config, weights (3.4 GB), tokenizer and
   preprocessor files into the Hugging Face cache once. Offline machines: download the
   repository elsewhere and pass its directory.

Requires ``transformers`` with SAM 3 (``Sam3Model``; 5.x) for the torch backend and for
export; the ONNX Runtime predictor needs only ``onnxruntime``, ``tokenizers``, numpy and PIL.

Modules: ``types`` (dataclasses, errors), ``processing`` (numpy pre/post-processing,
tokeniser), ``predictor`` (shared encode/decode logic), ``torch_backend``, ``export``,
``onnx_runner``, ``tensorrt_backend``, ``bench``, ``fixture`` (tiny random model for tests).
Importing this package imports neither torch nor transformers.
"""
from __future__ import annotations

from pathlib import Path

from .types import (ConceptCandidates, DecoderOutput, ImageEncoding, Sam3Error,
                    Sam3ExportError, Sam3ModelError, Sam3TensorRTUnavailable, TextEncoding)

BACKENDS = ('torch', 'onnxruntime', 'tensorrt')


def create_sam3_predictor(model_path: str | Path, backend: str = 'onnxruntime',
                          onnx_dir: str | Path | None = None, threads: int | None = None,
                          **kwargs):
    """A SAM 3 predictor of the requested backend (all share the :class:`Sam3Predictor` API).

    Args:
        model_path: Hugging Face id or local model directory. For ``onnxruntime`` and
            ``tensorrt`` it is exported once per model sha256 (see ``export.ensure_sam3_onnx``)
            unless ``onnx_dir`` is given; with ``onnx_dir`` it may be None.
        backend: ``torch``, ``onnxruntime`` or ``tensorrt``.
        onnx_dir: an existing export directory.
        threads: CPU threads (torch / ONNX Runtime).
        **kwargs: backend options (``device``, ``dtype`` for torch; ``providers`` for ONNX
            Runtime; ``engine_dir``, ``fp16`` for TensorRT) and predictor options
            (``text_cache_size``, ``score_threshold``, ``mask_threshold``, ``max_candidates``).
    """
    if backend not in BACKENDS:
        raise ValueError(f'unknown SAM 3 backend {backend!r}; choose one of {BACKENDS}')
    if backend == 'torch':
        from .torch_backend import Sam3TorchPredictor

        return Sam3TorchPredictor(model_path, threads=threads, **kwargs)
    if onnx_dir is None:
        from .export import ensure_sam3_onnx

        onnx_dir = ensure_sam3_onnx(model_path, threads=threads).out_dir
    if backend == 'onnxruntime':
        from .onnx_runner import Sam3OnnxPredictor

        return Sam3OnnxPredictor(onnx_dir, threads=threads, **kwargs)
    from .tensorrt_backend import Sam3TensorRTPredictor

    return Sam3TensorRTPredictor(onnx_dir, **kwargs)


def make_tiny_sam3(directory: str | Path, seed: int = 0, full_size: bool = False) -> Path:
    """A randomly initialised SAM 3 in Hugging Face format in ``directory`` (for tests and for
    timing without the gated weights); see :func:`.fixture.make_tiny_sam3`. Imports torch and
    transformers."""
    from .fixture import make_tiny_sam3 as make

    return make(directory, seed=seed, full_size=full_size)


def bench_sam3(model_path: str | Path, **kwargs) -> dict:
    """Stage timings of SAM 3 per runtime; see :func:`.bench.bench_sam3` for the options."""
    from .bench import bench_sam3 as bench

    return bench(model_path, **kwargs)


__all__ = ['BACKENDS', 'ConceptCandidates', 'DecoderOutput', 'ImageEncoding', 'Sam3Error',
           'Sam3ExportError', 'Sam3ModelError', 'Sam3TensorRTUnavailable', 'TextEncoding',
           'bench_sam3', 'create_sam3_predictor', 'make_tiny_sam3']
