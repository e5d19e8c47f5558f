"""SAM 3 on a Triton Inference Server (``unipixel-ros serve --backend sam3``), from the robot.

Same API as the in-process predictors (:class:`~.predictor.Sam3Predictor`), with the encode-once
split kept across the network (tensors in :data:`~.graph_io.TRITON_IO`):

* ``encode_text(phrase)``: the robot tokenises, ``sam3_text`` returns the embedding; once per
  concept of a command (LRU-cached here, as in process);
* ``encode_image(rgb)``: nothing is sent yet; the frame is kept for the decode;
* ``decode_many(image, texts)``: one ``sam3_frame`` request with the uint8 frame and every
  concept's embedding; the server pre-processes the frame, runs the vision encoder once and the
  decoders per concept, and answers only the queries that pass the score threshold, which this
  client post-processes exactly as in process (same thresholds, same upsampling).

So the vision timing is part of ``decode_ms`` here (``vision_ms`` is 0), and a server that is
down raises :class:`~unipixel_ros.engines.EngineUnavailable` (the node reports it and retries
on the next frame, as with the unipixel Triton engine).
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Sequence

import numpy as np

from unipixel_ros.engines.triton_connection import DEFAULT_URL, TritonConnection

from .graph_io import TRITON_IO, TRITON_MODELS
from .predictor import Sam3Predictor, load_preprocess_and_tokenizer
from .processing import postprocess
from .types import (ConceptCandidates, DecoderOutput, ImageEncoding, Sam3Error, Sam3ModelError,
                    TextEncoding)


class Sam3TritonPredictor(Sam3Predictor):
    """SAM 3 predictor whose graphs run on a Triton server.

    Args:
        model_path: a local directory with the model's ``tokenizer.json`` and
            ``preprocessor_config.json`` (a Hugging Face directory, a SAM 3 ONNX export or the
            folder the server was started on); only those files are read.
        url: gRPC ``host:port`` of the server.
        timeout_s: deadline of one request, seconds.
        reconnect_backoff_s: the longest wait between reconnection attempts, seconds.
        **kwargs: :class:`Sam3Predictor` options (text_cache_size, thresholds, max_candidates).
    Raises:
        Sam3ModelError: no tokenizer or preprocessor files at ``model_path``.
        EngineError: tritonclient is not installed.
    """

    backend = 'triton'

    def __init__(self, model_path: str | Path, url: str = DEFAULT_URL, timeout_s: float = 2.0,
                 reconnect_backoff_s: float = 1.0, **kwargs):
        d = Path(model_path)
        if not d.is_dir():
            raise Sam3ModelError(f'{d} is not a directory: the sam3 Triton client reads the '
                                 "model's tokenizer.json and preprocessor_config.json from one")
        super().__init__(*load_preprocess_and_tokenizer(d), **kwargs)
        self.connection = TritonConnection(url, tuple(TRITON_MODELS.values()), timeout_s,
                                           reconnect_backoff_s)

    @property
    def state(self) -> str:
        return self.connection.state

    def _run_text(self, input_ids: np.ndarray, attention_mask: np.ndarray):
        names = [n for n, _, _ in TRITON_IO['text']['outputs']]
        out = self.connection.infer(TRITON_MODELS['text'], [('input_ids', input_ids),
                                                            ('attention_mask', attention_mask)],
                                    names)
        return out['text_embeds'], attention_mask

    def encode_image(self, rgb: np.ndarray) -> ImageEncoding:
        """Keep the frame for :meth:`decode_many` (the server encodes it there).

        Args:
            rgb: ``(H, W, 3)`` uint8 RGB frame.
        """
        rgb = np.ascontiguousarray(rgb)
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f'rgb must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}')
        return ImageEncoding(features=(rgb,), image_hw=(int(rgb.shape[0]), int(rgb.shape[1])),
                             backend=self.backend,
                             timings={'preprocess_ms': 0.0, 'vision_ms': 0.0})

    def decode(self, image: ImageEncoding, text: TextEncoding, **kwargs) -> ConceptCandidates:
        return self.decode_many(image, [text], **kwargs)[0]

    def decode_many(self, image: ImageEncoding, texts: Sequence[TextEncoding],
                    score_threshold: float | None = None, mask_threshold: float | None = None,
                    max_candidates: int | None = None) -> list[ConceptCandidates]:
        """All concepts of a command on one frame, one request (see the module docstring).

        Returns:
            One :class:`ConceptCandidates` per text, in order; ``timings['decode_ms']`` is the
            request (vision + decoders on the server, and the network).
        Raises:
            EngineUnavailable: the server is down or missed the deadline.
        """
        for what, enc in (('image', image), *(('text', t) for t in texts)):
            if enc.backend != self.backend:
                raise Sam3Error(f'{what} encoding comes from the {enc.backend!r} backend; this '
                                f'predictor is {self.backend!r}')
        if not texts:
            return []
        score_threshold = self.score_threshold if score_threshold is None else score_threshold
        mask_threshold = self.mask_threshold if mask_threshold is None else mask_threshold
        max_candidates = self.max_candidates if max_candidates is None else max_candidates
        embeds = np.concatenate([np.asarray(t.embeddings, np.float32) for t in texts])
        masks = np.concatenate([np.asarray(t.mask, np.int64) for t in texts])
        t0 = time.perf_counter()
        out = self.connection.infer(
            TRITON_MODELS['frame'],
            [('image', image.features[0][None]), ('text_embeds', embeds[None]),
             ('text_mask', masks[None]),
             ('score_threshold', np.asarray([[score_threshold]], np.float32)),
             ('max_candidates', np.asarray([[max_candidates or 0]], np.int64))],
            [n for n, _, _ in TRITON_IO['frame']['outputs']])
        t1 = time.perf_counter()
        results = []
        for k, text in enumerate(texts):
            idx = out['query_indices'][0, k]
            real = idx >= 0
            raw = DecoderOutput(mask_logits=out['pred_masks'][0, k][real],
                                logits=out['pred_logits'][0, k][real],
                                boxes=out['pred_boxes'][0, k][real],
                                presence_logit=float(out['presence_logits'][0, k]))
            t2 = time.perf_counter()
            c = postprocess(raw, image.image_hw, phrase=text.phrase,
                            score_threshold=score_threshold, mask_threshold=mask_threshold,
                            max_candidates=max_candidates)
            c = ConceptCandidates(c.phrase, c.masks, c.boxes, c.scores,
                                  idx[real][c.query_indices].astype(np.int64), c.presence,
                                  {'decode_ms': (t1 - t0) * 1e3 / len(texts),
                                   'postprocess_ms': (time.perf_counter() - t2) * 1e3})
            results.append(c)
        return results

    def _run_vision(self, pixel_values):
        raise NotImplementedError('the server runs the vision encoder (see decode_many)')

    def _run_decoder(self, features, embeddings, mask):
        raise NotImplementedError('the server runs the decoders (see decode_many)')

    def close(self) -> None:
        self.connection.close()
