"""The SAM 3 models of the Triton server: ``sam3_text`` and ``sam3_frame`` over a SAM 3 ONNX export.

Runs in the server's environment (PyTriton, ONNX Runtime, numpy < 2, PIL; no torch, no
tokenizers: the robot tokenises). The wire protocol is :data:`~unipixel_ros.backends.sam3.
graph_io.TRITON_IO`; the robot side is :class:`~unipixel_ros.backends.sam3.triton_client.
Sam3TritonPredictor`.

Per frame request (:func:`decode_frame`): pre-process the uint8 frame to the numbers of the
export's ``preprocessor_config.json``, run ``vision.onnx`` once, ``decoder.onnx`` once per
concept, then keep per concept the queries that pass the client's score threshold and cap
(:func:`~unipixel_ros.backends.sam3.processing.select_queries`, the rule every runtime uses).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from unipixel_ros.backends.sam3.graph_io import GRAPH_FILES, GRAPH_IO, MANIFEST, TRITON_IO
from unipixel_ros.backends.sam3.onnx_runner import open_session
from unipixel_ros.backends.sam3.processing import PreprocessConfig, preprocess, select_queries


def is_sam3_export(model_dir: str | Path) -> bool:
    """True when ``model_dir`` is a SAM 3 ONNX export (its manifest is there)."""
    return (Path(model_dir) / MANIFEST).is_file()


class Sam3Graphs:
    """The three ONNX Runtime sessions and the pre-processing numbers of a SAM 3 export.

    Args:
        export_dir: ``export_sam3_onnx``'s directory.
        threads: intra-op threads per session (0: ONNX Runtime's choice).
    """

    def __init__(self, export_dir: str | Path, threads: int = 0) -> None:
        d = Path(export_dir)
        self.manifest = json.loads((d / MANIFEST).read_text())
        self.config = PreprocessConfig.from_json(d / 'preprocessor_config.json')
        self.sessions = {g: open_session(d / f, ['CPUExecutionProvider'], threads or None)
                         for g, f in GRAPH_FILES.items()}

    def text(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """``(1, L)`` int64 ids and mask -> ``(1, L, D)`` float32 embeddings."""
        (emb,) = self.sessions['text'].run(None, {'input_ids': input_ids,
                                                 'attention_mask': attention_mask})
        return emb

    def decode_frame(self, rgb: np.ndarray, text_embeds: np.ndarray, text_mask: np.ndarray,
                     score_threshold: float, max_candidates: int) -> dict[str, np.ndarray]:
        """One frame, K concepts -> the ``sam3_frame`` outputs without the batch dimension.

        Args:
            rgb: ``(H, W, 3)`` uint8 frame.
            text_embeds: ``(K, L, D)`` float32; text_mask: ``(K, L)`` int64.
            score_threshold: keep queries with score above it; max_candidates: at most this
                many per concept (0: no cap).

        Returns:
            ``pred_masks (K, N, h, w)``, ``pred_logits (K, N)``, ``pred_boxes (K, N, 4)``,
            ``presence_logits (K,)``, ``query_indices (K, N)`` (-1 pads concepts with fewer than
            N passing queries; N >= 1).
        """
        pixel_values = preprocess(rgb, self.config)
        features = self.sessions['vision'].run(None, {'pixel_values': pixel_values})
        names = GRAPH_IO['decoder']['inputs']
        per_concept = []
        h, w = features[0].shape[-2:]      # the mask decoder's resolution: the finest FPN level
        for k in range(text_embeds.shape[0]):
            feed = dict(zip(names, (*features, text_embeds[k:k + 1], text_mask[k:k + 1])))
            masks, logits, boxes, presence = self.sessions['decoder'].run(None, feed)
            h, w = masks.shape[-2:]
            presence = float(presence.reshape(-1)[0])
            keep, _, _ = select_queries(logits[0], presence, score_threshold, max_candidates)
            per_concept.append((masks[0][keep], logits[0][keep], boxes[0][keep], presence, keep))
        n = max([1] + [len(c[4]) for c in per_concept])
        K = len(per_concept)
        out = {'pred_masks': np.zeros((K, n, h, w), np.float32),
               'pred_logits': np.full((K, n), -1e4, np.float32),
               'pred_boxes': np.zeros((K, n, 4), np.float32),
               'presence_logits': np.zeros((K,), np.float32),
               'query_indices': np.full((K, n), -1, np.int64)}
        for k, (m, lg, b, presence, keep) in enumerate(per_concept):
            j = len(keep)
            out['pred_masks'][k, :j], out['pred_logits'][k, :j] = m, lg
            out['pred_boxes'][k, :j], out['query_indices'][k, :j] = b, keep
            out['presence_logits'][k] = presence
        return out


def make_sam3_infer_functions(export_dir: str | Path, threads: int, stats) -> tuple[dict, dict]:
    """({'text': infer callable, 'frame': infer callable}, the export's manifest).

    Each callable takes PyTriton's list of requests (a dynamic batch, each a dict of arrays with
    a leading batch dimension of 1) and returns one output dict per request; ``stats.add``
    counts them (see ``triton_server._Stats``).
    """
    graphs = Sam3Graphs(export_dir, threads)

    def text(requests):
        t0 = time.perf_counter()
        responses = [{'text_embeds': graphs.text(np.ascontiguousarray(r['input_ids']),
                                                 np.ascontiguousarray(r['attention_mask']))}
                     for r in requests]
        stats.add('text', len(requests), time.perf_counter() - t0)
        return responses

    def frame(requests):
        t0 = time.perf_counter()
        responses = []
        for r in requests:
            out = graphs.decode_frame(
                np.ascontiguousarray(r['image'][0]), np.ascontiguousarray(r['text_embeds'][0]),
                np.ascontiguousarray(r['text_mask'][0]),
                float(np.asarray(r['score_threshold']).reshape(-1)[0]),
                int(np.asarray(r['max_candidates']).reshape(-1)[0]))
            responses.append({k: v[None] for k, v in out.items()})
        stats.add('frame', len(requests), time.perf_counter() - t0)
        return responses

    return {'text': text, 'frame': frame}, graphs.manifest


def sam3_tensors() -> dict:
    """PyTriton Tensor specs per model, from :data:`TRITON_IO` (shapes without the batch)."""
    from pytriton.model_config import Tensor

    def spec(items):
        return [Tensor(name=name, dtype=np.dtype(dtype).type, shape=shape)
                for name, dtype, shape in items]
    return {model: (spec(io['inputs']), spec(io['outputs'])) for model, io in TRITON_IO.items()}
