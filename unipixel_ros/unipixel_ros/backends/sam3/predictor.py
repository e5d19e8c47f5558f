"""Backend-independent half of a SAM 3 predictor: pre/post-processing, text cache, timings.

Subclasses (torch, ONNX Runtime, TensorRT) implement three array functions:

- ``_run_vision(pixel_values (1, 3, S, S) float32) -> tuple of 3 FPN levels``
- ``_run_text(input_ids (1, L) int64, attention_mask (1, L) int64)
  -> (embeddings (1, L, D), mask (1, L))``, both in the form the decoder takes
- ``_run_decoder(features, embeddings, mask) -> DecoderOutput`` (numpy)

This module imports neither torch nor transformers.
"""
from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .processing import PreprocessConfig, Sam3Tokenizer, postprocess, preprocess
from .types import ConceptCandidates, DecoderOutput, ImageEncoding, Sam3Error, TextEncoding


def normalise_phrase(phrase: str) -> str:
    """Cache key of a phrase: CLIP lower-cases and collapses whitespace, so these are equal."""
    return re.sub(r'\s+', ' ', str(phrase)).strip().lower()


class Sam3Predictor:
    """Encode once, decode per concept. See :mod:`.types` for the data flow.

    Args:
        preprocess_config: image numbers from ``preprocessor_config.json``.
        tokenizer: phrase -> ``(input_ids, attention_mask)``.
        text_cache_size: phrases whose embeddings are kept (least recently used evicted).
        score_threshold, mask_threshold, max_candidates: defaults of :meth:`decode`.

    Thread safety: ``encode_image`` and ``decode`` may run on a worker thread while another
    thread calls ``encode_text``: the text cache is guarded by a lock, torch and ONNX Runtime
    allow concurrent runs, and the TensorRT predictor serialises runs per engine.
    """

    backend = 'base'

    def __init__(self, preprocess_config: PreprocessConfig, tokenizer: Sam3Tokenizer,
                 text_cache_size: int = 64, score_threshold: float = 0.3,
                 mask_threshold: float = 0.5, max_candidates: int | None = None):
        self.preprocess_config = preprocess_config
        self.tokenizer = tokenizer
        self.text_cache_size = int(text_cache_size)
        self.score_threshold = float(score_threshold)
        self.mask_threshold = float(mask_threshold)
        self.max_candidates = max_candidates
        self._text_cache: OrderedDict[str, TextEncoding] = OrderedDict()
        self._lock = threading.Lock()
        #: Number of text-encoder runs so far (cache misses); tests and benchmarks read it.
        self.text_encoder_calls = 0

    # -- to implement ------------------------------------------------------------------------
    def _run_vision(self, pixel_values: np.ndarray) -> tuple[Any, ...]:
        raise NotImplementedError

    def _run_text(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> tuple[Any, Any]:
        """-> ``(embeddings (1, L, D), mask (1, L))`` backend-native."""
        raise NotImplementedError

    def _run_decoder(self, features: tuple[Any, ...], embeddings: Any, mask: Any) -> DecoderOutput:
        raise NotImplementedError

    # -- public API --------------------------------------------------------------------------
    @property
    def input_size(self) -> tuple[int, int]:
        """``(height, width)`` of the model input in pixels."""
        return self.preprocess_config.height, self.preprocess_config.width

    def encode_image(self, rgb: np.ndarray) -> ImageEncoding:
        """Run the vision encoder (ViT + FPN neck) once for a frame.

        Args:
            rgb: ``(H, W, 3)`` uint8 RGB frame, any size (resized to the model input).

        Returns:
            ImageEncoding with the FPN features and ``(H, W)``.
        """
        t0 = time.perf_counter()
        pixel_values = preprocess(rgb, self.preprocess_config)
        t1 = time.perf_counter()
        features = self._run_vision(pixel_values)
        t2 = time.perf_counter()
        rgb = np.asarray(rgb)
        return ImageEncoding(features=tuple(features), image_hw=(int(rgb.shape[0]),
                                                                  int(rgb.shape[1])),
                             backend=self.backend,
                             timings={'preprocess_ms': (t1 - t0) * 1e3,
                                      'vision_ms': (t2 - t1) * 1e3})

    def encode_text(self, phrase: str) -> TextEncoding:
        """Embedding of one noun phrase, from the LRU cache when it was encoded before.

        Args:
            phrase: e.g. ``"red cup"``; case and repeated whitespace do not matter.

        Returns:
            TextEncoding (``cached=True`` when no encoder run was needed).
        """
        key = normalise_phrase(phrase)
        if not key:
            raise ValueError('empty phrase')
        with self._lock:
            hit = self._text_cache.get(key)
            if hit is not None:
                self._text_cache.move_to_end(key)
                return TextEncoding(phrase=phrase, embeddings=hit.embeddings, mask=hit.mask,
                                    backend=hit.backend, timings=hit.timings, cached=True)
        t0 = time.perf_counter()
        input_ids, attention_mask = self.tokenizer(key)
        t1 = time.perf_counter()
        embeddings, mask = self._run_text(input_ids, attention_mask)
        t2 = time.perf_counter()
        enc = TextEncoding(phrase=phrase, embeddings=embeddings, mask=mask, backend=self.backend,
                           timings={'tokenize_ms': (t1 - t0) * 1e3, 'text_ms': (t2 - t1) * 1e3})
        with self._lock:
            self.text_encoder_calls += 1
            self._text_cache[key] = enc
            self._text_cache.move_to_end(key)
            while len(self._text_cache) > self.text_cache_size:
                self._text_cache.popitem(last=False)
        return enc

    def clear_text_cache(self) -> None:
        with self._lock:
            self._text_cache.clear()

    def decode_raw(self, image: ImageEncoding, text: TextEncoding) -> DecoderOutput:
        """DETR encoder/decoder + mask decoder for one concept, no post-processing."""
        for what, enc in (('image', image), ('text', text)):
            if enc.backend != self.backend:
                raise Sam3Error(f'{what} encoding comes from the {enc.backend!r} backend; this '
                                f'predictor is {self.backend!r}')
        return self._run_decoder(image.features, text.embeddings, text.mask)

    def decode(self, image: ImageEncoding, text: TextEncoding,
               score_threshold: float | None = None, mask_threshold: float | None = None,
               max_candidates: int | None = None) -> ConceptCandidates:
        """Candidates of one concept in one frame, on the cached image and text encodings.

        Args:
            image: from :meth:`encode_image` of this predictor.
            text: from :meth:`encode_text` of this predictor.
            score_threshold: keep ``score > score_threshold`` (default: the predictor's, 0.3).
            mask_threshold: binarise upsampled mask probabilities (default 0.5).
            max_candidates: cap on N, highest scores first (default: the predictor's, None).

        Returns:
            ConceptCandidates: masks ``(N, H, W)`` bool, boxes ``(N, 4)`` px, scores ``(N,)``,
            presence, timings ``decode_ms`` / ``postprocess_ms``.
        """
        t0 = time.perf_counter()
        raw = self.decode_raw(image, text)
        t1 = time.perf_counter()
        out = postprocess(
            raw, image.image_hw, phrase=text.phrase,
            score_threshold=self.score_threshold if score_threshold is None else score_threshold,
            mask_threshold=self.mask_threshold if mask_threshold is None else mask_threshold,
            max_candidates=self.max_candidates if max_candidates is None else max_candidates)
        t2 = time.perf_counter()
        out.timings.update(decode_ms=(t1 - t0) * 1e3, postprocess_ms=(t2 - t1) * 1e3)
        return out

    def decode_many(self, image: ImageEncoding, texts: Sequence[TextEncoding],
                    **decode_kwargs) -> list[ConceptCandidates]:
        """:meth:`decode` of each concept of a command on one frame, in ``texts`` order.

        In process this is a loop; a remote predictor (``triton_client``) answers all concepts
        in one request, so that the frame crosses the network once.
        """
        return [self.decode(image, text, **decode_kwargs) for text in texts]

    def segment(self, rgb: np.ndarray, phrases: Sequence[str],
                **decode_kwargs) -> dict[str, ConceptCandidates]:
        """Convenience: one vision pass, then :meth:`decode` for each phrase (text cached)."""
        image = self.encode_image(rgb)
        return {p: self.decode(image, self.encode_text(p), **decode_kwargs) for p in phrases}


def load_preprocess_and_tokenizer(directory: str | Path) -> tuple[PreprocessConfig, Sam3Tokenizer]:
    """Read ``preprocessor_config.json`` and ``tokenizer.json`` of a model or export directory."""
    d = Path(directory)
    return PreprocessConfig.from_json(d / 'preprocessor_config.json'), \
        Sam3Tokenizer(d / 'tokenizer.json')
