"""The ``sam3`` backend behind the predictor interface: SAM 3 candidates + the referring resolver.

    predictor = Sam3ReferringPredictor(create_sam3_predictor(model_dir, backend='torch'))
    query = predictor.encode_text('the red cup left of the blue bowl')   # concepts encoded once
    pred = predictor.predict(rgb, query, depth_m=depth_m, intrinsics=intrinsics)

``encode_text`` parses the expression into concepts and constraints
(:func:`~unipixel_ros.language.concepts.parse_referring`) and encodes each concept's phrase
once ("cup", "bowl"; SAM 3's own LRU cache keeps them across commands). ``predict`` runs the
vision encoder once per frame, the decoder once per concept, and
:func:`~.resolver.resolve_referring` on the measured candidates. It needs depth and intrinsics
(``needs_geometry = True``: :func:`~.answer.answer_frame` passes them). The result is a
:class:`Prediction` the answer step, the node and the dataset evaluation already understand;
an ambiguous answer is not found and carries the question in ``Prediction.question``.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from unipixel_ros.language.concepts import Referring, parse_referring
from unipixel_ros.perception import CameraIntrinsics
from unipixel_ros.perception.mask_ops import mask_bbox

from .predictor import Prediction, Query
from .resolver import (DEFAULT_RESOLVER_SETTINGS, Proposals, ResolverSettings, Viewpoint,
                       resolve_referring)
from .settings import DEFAULT_SETTINGS, DecisionSettings


@dataclass(frozen=True)
class Sam3Query(Query):
    """A parsed command: the referring structure and one text encoding per concept phrase."""

    referring: Referring | None = None
    texts: dict = field(default_factory=dict)


@dataclass
class Sam3Prediction(Prediction):
    """A :class:`Prediction` with the resolver's words (``reason``) and its question."""

    reason: str = ''
    noun: str = 'object'

    def description(self) -> str:
        color = self.attributes.get('color', ('', 0.0))[0]
        return ' '.join(w for w in ('a', color, self.noun) if w)


class _EngineHandle:
    """``predictor.engine`` for the node: only ``close()`` and ``last_timings``."""

    def __init__(self, sam3) -> None:
        self.sam3 = sam3
        self.last_timings: dict = {}

    def close(self) -> None:
        close = getattr(self.sam3, 'close', None)
        if close is not None:
            close()


class Sam3ReferringPredictor:
    """SAM 3 + the referring resolver, with the :class:`ReferringPredictor` interface.

    Args:
        sam3: a predictor from ``backends.sam3.create_sam3_predictor`` (``encode_image``,
            ``encode_text``, ``decode``); a cap such as ``max_candidates=20`` bounds the per-frame work; it
            keeps its own score threshold (the resolver applies ``min_score`` on top).
        settings: :class:`DecisionSettings` (``mask_threshold`` is what the answer step reads).
        resolver_settings: the resolver's thresholds.
    """

    needs_geometry = True
    metric_attributes = None

    def __init__(self, sam3, settings: DecisionSettings = DEFAULT_SETTINGS,
                 resolver_settings: ResolverSettings = DEFAULT_RESOLVER_SETTINGS) -> None:
        self.sam3 = sam3
        self.engine = _EngineHandle(sam3)
        self.settings = settings
        self.resolver_settings = resolver_settings
        #: whose left, right and distance the resolver uses (None: the camera's); the node
        #: sets it from its target_frame before each frame
        self.viewpoint: Viewpoint | None = None

    def encode_text(self, text: str) -> Sam3Query:
        """Parse ``text`` and encode each concept phrase once.

        Raises:
            ValueError: empty text.
        """
        text = text.strip()
        if not text:
            raise ValueError('empty query')
        referring = parse_referring(text)
        texts = {c.phrase: self.sam3.encode_text(c.phrase) for c in referring.concepts()}
        target = referring.target
        mentions = {'category': target.category, 'color': target.color, 'size': target.size}
        empty = np.zeros((1, 0), np.float32)
        return Sam3Query(text, empty, empty, mentions, 'text', model_text=text,
                         referring=referring, texts=texts)

    def encode_point(self, u: float, v: float, width: int, height: int) -> Query:
        raise ValueError('the sam3 backend answers words, not clicked points: describe needs '
                         'backend unipixel')

    def predict(self, rgb: np.ndarray, query: Sam3Query, depth_m: np.ndarray | None = None,
                intrinsics: CameraIntrinsics | None = None) -> Sam3Prediction:
        """Ground ``query`` on one RGB-D frame.

        Args:
            rgb: (H, W, 3) uint8; depth_m: (H, W) float32 metres (0 = no reading);
            intrinsics: of the frame. Without depth the resolver cannot measure: the answer is
                not found with that reason.
        """
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f'rgb must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}')
        h, w = rgb.shape[:2]
        t0 = time.perf_counter()
        image = self.sam3.encode_image(rgb)
        t1 = time.perf_counter()
        candidates = self.sam3.decode_many(image, list(query.texts.values()))
        proposals = {phrase: Proposals(c.masks, c.scores, float(c.presence))
                     for phrase, c in zip(query.texts, candidates)}
        t2 = time.perf_counter()
        target = query.referring.target
        if depth_m is None or intrinsics is None:
            res = None
            reason = 'no depth: the resolver measures in 3D'
        else:
            res = resolve_referring(query.referring, proposals, rgb,
                                    np.asarray(depth_m, np.float32), intrinsics,
                                    self.resolver_settings, viewpoint=self.viewpoint)
            reason = res.reason
        t3 = time.perf_counter()
        found = res is not None and res.found
        mask = res.mask if found else np.zeros((h, w), bool)
        score = 0.0 if res is None else float(res.score)
        box = None
        if found:
            rows, cols = mask_bbox(mask)
            box = (int(cols.start), int(rows.start), int(cols.stop) - 1, int(rows.stop) - 1)
        color = res.chosen.color if found else (target.color or '')
        attributes = {'category': (target.category or target.phrase, score),
                      'color': (color, 1.0), 'size': (target.size or '', 1.0)}
        timings = {'vision_ms': (t1 - t0) * 1e3, 'decode_ms': (t2 - t1) * 1e3,
                   'resolve_ms': (t3 - t2) * 1e3, 'model_ms': (t2 - t0) * 1e3,
                   'total_ms': (t3 - t0) * 1e3}
        self.engine.last_timings = timings
        status = 'no depth' if res is None else res.status
        return Sam3Prediction(
            mask.astype(np.float32), mask, score, found, box, attributes, timings,
            rejected='' if found or status == 'ambiguous' else reason,
            question='' if res is None else res.question, reason=reason,
            noun=target.noun or 'object')

    def refine_attributes(self, pred: Prediction, geometry,
                          rgb: np.ndarray | None = None) -> Prediction:
        """No metric head for this backend: ``pred`` unchanged."""
        return pred
