"""Typed inputs and outputs of the SAM 3 backends (numpy only; shared by torch, ORT, TensorRT).

The predictor is split nanoowl-style into explicit encode and decode steps::

    image = predictor.encode_image(rgb)          # once per frame   -> ImageEncoding
    text = predictor.encode_text('red cup')      # once per phrase  -> TextEncoding (LRU cached)
    cands = predictor.decode(image, text)        # per concept      -> ConceptCandidates

Encodings hold backend-native arrays (``torch.Tensor`` for the torch backend, ``numpy`` for ONNX
Runtime); pass an encoding only to the predictor that made it.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


class Sam3Error(RuntimeError):
    """Base class of the errors raised by the SAM 3 backend."""


class Sam3ModelError(Sam3Error):
    """The model path is missing, incomplete, corrupt, gated or of the wrong model type."""


class Sam3ExportError(Sam3Error):
    """ONNX export, its checks or its parity comparison failed."""


class Sam3TensorRTUnavailable(Sam3Error):
    """The ``tensorrt`` (or CUDA runtime) Python package is not importable here."""


@dataclass(frozen=True)
class ImageEncoding:
    """Vision features of one frame, reusable for any number of concepts.

    Attributes:
        features: the three FPN levels the detector and mask decoder read, backend-native,
            float32, shapes ``(1, C, 4g, 4g)``, ``(1, C, 2g, 2g)``, ``(1, C, g, g)`` with
            ``g = image_size / 14`` (``facebook/sam3``: C = 256, g = 72, so 288/144/72).
        image_hw: ``(H, W)`` of the original frame in pixels; decode maps masks and boxes here.
        backend: name of the backend that produced ``features``.
        timings: ``preprocess_ms`` and ``vision_ms`` of this frame, milliseconds.
    """

    features: tuple[Any, ...]
    image_hw: tuple[int, int]
    backend: str
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class TextEncoding:
    """Text embedding of one noun phrase, computed once and reused across frames.

    Attributes:
        phrase: the phrase as given (the cache key is its normalised form).
        embeddings: backend-native float32 ``(1, L, D)`` projected token features (``L = 32``
            tokens, ``D`` = DETR hidden size, 256 for ``facebook/sam3``).
        mask: backend-native int64 ``(1, L)``: 1 for real tokens, 0 for padding.
        backend: name of the backend that produced the arrays.
        timings: ``tokenize_ms`` and ``text_ms`` of the call that computed it.
        cached: True when this object came from the predictor's text cache.
    """

    phrase: str
    embeddings: Any
    mask: Any
    backend: str
    timings: dict[str, float] = field(default_factory=dict)
    cached: bool = False


@dataclass(frozen=True)
class ConceptCandidates:
    """All instances of one concept in one frame that pass the score threshold, best first.

    SAM 3 scores each of its object queries against the phrase and also predicts one
    "presence" probability that the concept is in the image at all; an instance's score is
    ``sigmoid(query_logit) * sigmoid(presence_logit)``, as in the official post-processing.

    Attributes:
        phrase: the noun phrase these candidates answer.
        masks: ``(N, H, W)`` bool at the original frame resolution.
        boxes: ``(N, 4)`` float32 ``x0, y0, x1, y1`` in pixels of the original frame
            (continuous coordinates: 0 is the left edge of the first pixel, W the right edge of
            the last).
        scores: ``(N,)`` float32 in [0, 1], descending.
        query_indices: ``(N,)`` int64 DETR query index of each candidate (stable id within a
            frame, useful for debugging and for matching the low-resolution outputs).
        presence: float in [0, 1], probability that the concept is present in the frame.
        timings: ``decode_ms`` (DETR + mask decoder) and ``postprocess_ms``, milliseconds.
    """

    phrase: str
    masks: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    query_indices: np.ndarray
    presence: float
    timings: dict[str, float] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.scores.shape[0])

    @property
    def empty(self) -> bool:
        return len(self) == 0


@dataclass(frozen=True)
class DecoderOutput:
    """Raw decoder outputs of one concept, numpy, before post-processing (batch of 1 removed).

    Attributes:
        mask_logits: ``(Q, h, w)`` float32 mask logits at the decoder resolution
            (``h = w = 4 * image_size / 14``, 288 for ``facebook/sam3``).
        logits: ``(Q,)`` float32 per-query classification logits against the phrase.
        boxes: ``(Q, 4)`` float32 ``x0, y0, x1, y1`` normalised to [0, 1] of the model input.
        presence_logit: float, logit of "the concept is in the image".
    """

    mask_logits: np.ndarray
    logits: np.ndarray
    boxes: np.ndarray
    presence_logit: float
