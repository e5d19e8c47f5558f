"""SAM 3 predictor on ONNX Runtime, reading only an export directory (no torch, no transformers).

Same API as the torch predictor (:class:`~.predictor.Sam3Predictor`); encodings hold numpy
arrays. Build the export directory with :func:`~.export.export_sam3_onnx`.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .graph_io import GRAPH_FILES, GRAPH_IO, MANIFEST
from .predictor import Sam3Predictor, load_preprocess_and_tokenizer
from .types import DecoderOutput, Sam3ModelError


def open_session(path: Path, providers, threads: int | None):
    """An ONNX Runtime session of one SAM 3 graph (all optimisations; ``threads`` intra-op).

    Raises:
        Sam3ModelError: ONNX Runtime cannot load the file.
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    if threads:
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=providers)
    except Exception as exc:  # onnxruntime raises its own Fail / InvalidGraph types
        raise Sam3ModelError(f'ONNX Runtime cannot load {path}: {exc}') from exc


class Sam3OnnxPredictor(Sam3Predictor):
    """SAM 3 predictor running the three exported graphs with ONNX Runtime.

    Args:
        onnx_dir: export directory (``vision.onnx``, ``text.onnx``, ``decoder.onnx``, tokenizer
            and preprocessor files, manifest).
        providers: ONNX Runtime execution providers (default: CPU).
        threads: intra-op threads per session (default: ONNX Runtime's choice).
        **kwargs: :class:`Sam3Predictor` options (text_cache_size, thresholds).
    """

    backend = 'onnxruntime'

    def __init__(self, onnx_dir: str | Path, providers: list | None = None,
                 threads: int | None = None, **kwargs):
        d = Path(onnx_dir)
        if not d.is_dir():
            raise Sam3ModelError(f'{d} is not a directory (expected a SAM 3 ONNX export)')
        missing = [f for f in GRAPH_FILES.values() if not (d / f).is_file()]
        if missing:
            raise Sam3ModelError(f'{d} is not a complete SAM 3 ONNX export: missing {missing}')
        try:
            #: The export manifest (empty while the exporter's own parity check runs).
            self.manifest = json.loads((d / MANIFEST).read_text())
        except FileNotFoundError:
            self.manifest = {}
        except (OSError, ValueError) as exc:
            raise Sam3ModelError(f'{d / MANIFEST} is unreadable: {exc}') from exc
        super().__init__(*load_preprocess_and_tokenizer(d), **kwargs)
        self.onnx_dir = d
        providers = providers or ['CPUExecutionProvider']
        self.sessions = {g: open_session(d / f, providers, threads) for g, f in GRAPH_FILES.items()}

    def _run_vision(self, pixel_values: np.ndarray):
        return tuple(self.sessions['vision'].run(None, {'pixel_values': pixel_values}))

    def _run_text(self, input_ids: np.ndarray, attention_mask: np.ndarray):
        (emb,) = self.sessions['text'].run(None, {'input_ids': input_ids,
                                                 'attention_mask': attention_mask})
        return emb, attention_mask

    def _run_decoder(self, features, embeddings, mask) -> DecoderOutput:
        names = GRAPH_IO['decoder']['inputs']
        feed = dict(zip(names, (*features, embeddings, mask)))
        masks, logits, boxes, presence = self.sessions['decoder'].run(None, feed)
        return DecoderOutput(mask_logits=masks[0], logits=logits[0], boxes=boxes[0],
                             presence_logit=float(presence.reshape(-1)[0]))
