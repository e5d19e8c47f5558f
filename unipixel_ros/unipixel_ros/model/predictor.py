"""Predictor API: ``set_query(text)`` once per command, ``predict(rgb, depth)`` per frame.

The text (or a clicked point) is encoded once and cached; per frame only the image graph runs.
The predictor is engine-agnostic: it talks to an :class:`unipixel_ros.engines.Engine`
(torch, ONNX Runtime or TensorRT) through numpy arrays.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from unipixel_ros.dataset.vocab import CATEGORIES, COLORS, SIZES
from unipixel_ros.language.mentions import target_mentions
from unipixel_ros.perception.mask_ops import mask_bbox

#: Decision defaults for the shipped model, chosen on the val split (weights/MODEL_CARD.md); the
#: node's parameters, ``unipixel-ros eval`` and ``unipixel-ros evaluate`` start from these.
DEFAULT_EXISTS_THRESHOLD = 0.8
DEFAULT_MASK_THRESHOLD = 0.5
DEFAULT_VERIFY_ATTRIBUTES: tuple = ()
DEFAULT_VERIFY_MIN_PROB = 0.1
VERIFIABLE_ATTRIBUTES = ('category', 'color', 'size')


def parse_attribute_list(value: str) -> tuple:
    """'category,color' -> ('category', 'color'); 'none' or '' -> () (the CLI / parameter form
    of ``verify_attributes``; names are checked by :class:`ReferringPredictor`)."""
    if value.strip().lower() in ('', 'none'):
        return ()
    return tuple(a.strip() for a in value.split(',') if a.strip())


@dataclass
class Prediction:
    """One frame's answer to the active query.

    Attributes:
        mask_prob: (H, W) float32 in [0, 1] at the input image resolution.
        mask: (H, W) bool, ``mask_prob > mask_threshold`` (all False when not found).
        score: target-exists probability in [0, 1].
        found: ``score >= exists_threshold``, the mask is not empty and the attributes agree with
            the words (see ``ReferringPredictor``'s verification).
        box: (x0, y0, x1, y1) int pixel box of ``mask`` (inclusive), or None.
        attributes: {'category'|'color'|'size': (name, probability)} of the pooled object token.
        timings: milliseconds per stage (preprocess, model, postprocess, total).
        rejected: why a selection was turned into "not found" by the attribute check
            (e.g. "category: asked for block, p = 0.03, sees can"), '' otherwise.
        attribute_probs: {'category'|'color'|'size': (K,) float64 probabilities of the heads}.
        attributes_source: 'network' (the heads alone) or 'network+geometry' (category and
            size re-decided with the measured 3D box, see :meth:`ReferringPredictor.refine_attributes`).
    """

    mask_prob: np.ndarray
    mask: np.ndarray
    score: float
    found: bool
    box: tuple | None
    attributes: dict
    timings: dict = field(default_factory=dict)
    rejected: str = ''
    attribute_probs: dict = field(default_factory=dict)
    attributes_source: str = 'network'

    def description(self) -> str:
        """A short noun phrase, e.g. 'a small red cup'."""
        return (f"a {self.attributes['size'][0]} {self.attributes['color'][0]} "
                f"{self.attributes['category'][0]}")


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


class ReferringPredictor:
    """Encode-once / decode-cheap wrapper over an engine.

    Args:
        engine: an Engine (see ``unipixel_ros.engines``).
        exists_threshold: minimum target-exists probability to report ``found``.
        mask_threshold: probability above which a pixel belongs to the mask.
        verify_attributes: attributes ('category', 'color', 'size') checked against the words:
            when the phrase names one for its target (``language.mentions``) and the attribute
            head gives the selected object a probability below ``verify_min_prob`` for it, the
            answer becomes "not found" (``Prediction.rejected`` says why). () = no check.
        verify_min_prob: see ``verify_attributes``.
        metric_attributes: a fitted :class:`~unipixel_ros.model.metric_attributes.MetricAttributeModel`
            for :meth:`refine_attributes`, or None (the heads' answers stand).
    """

    def __init__(self, engine, exists_threshold: float = DEFAULT_EXISTS_THRESHOLD,
                 mask_threshold: float = DEFAULT_MASK_THRESHOLD,
                 verify_attributes: tuple = DEFAULT_VERIFY_ATTRIBUTES,
                 verify_min_prob: float = DEFAULT_VERIFY_MIN_PROB,
                 metric_attributes=None) -> None:
        self.engine = engine
        self.metric_attributes = metric_attributes
        self.exists_threshold = exists_threshold
        self.mask_threshold = mask_threshold
        unknown = set(verify_attributes) - set(VERIFIABLE_ATTRIBUTES)
        if unknown:
            raise ValueError(f'verify_attributes: unknown attributes {sorted(unknown)}')
        self.verify_attributes = tuple(verify_attributes)
        self.verify_min_prob = float(verify_min_prob)
        self._mentions: dict = {}
        self.query: str | None = None
        self._prompt: tuple[np.ndarray, np.ndarray] | None = None
        self._prompt_cache: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.vocab = engine.metadata.get('vocab') or {
            'categories': list(CATEGORIES), 'colors': list(COLORS), 'sizes': list(SIZES)}
        if metric_attributes is not None and (
                list(metric_attributes.categories) != list(self.vocab['categories'])
                or list(metric_attributes.sizes) != list(self.vocab['sizes'])):
            raise ValueError('the metric attribute head was fitted for another vocabulary '
                             f'({metric_attributes.categories}, {metric_attributes.sizes}) than '
                             f"the model's ({self.vocab['categories']}, {self.vocab['sizes']})")

    @property
    def input_size(self) -> tuple[int, int]:
        """(width, height) of the network input."""
        return self.engine.input_size

    def set_query(self, text: str) -> None:
        """Encode ``text`` once (cached per text); subsequent :meth:`predict` calls reuse it."""
        text = text.strip()
        if not text:
            raise ValueError('empty query')
        if text not in self._prompt_cache:
            if len(self._prompt_cache) >= 16:
                self._prompt_cache.pop(next(iter(self._prompt_cache)))
            self._prompt_cache[text] = self.engine.encode_text(text)
        self._prompt = self._prompt_cache[text]
        self.query = text
        self._mentions = target_mentions(text)

    def set_point(self, u: float, v: float, width: int, height: int) -> None:
        """Region prompt: the object at pixel (u, v) of a width x height image (describe)."""
        if not (0 <= u < width and 0 <= v < height):
            raise ValueError(f'pixel ({u}, {v}) is outside the {width}x{height} image')
        self._prompt = self.engine.encode_point((u + 0.5) / width, (v + 0.5) / height)
        self.query = f'<point {u:.0f},{v:.0f}>'
        self._mentions = {}

    def clear(self) -> None:
        self.query, self._prompt, self._mentions = None, None, {}

    def predict(self, rgb: np.ndarray, depth_m: np.ndarray | None = None) -> Prediction:
        """Run the image graph on one frame.

        Args:
            rgb: (H, W, 3) uint8 RGB.
            depth_m: (H, W) float32 metres aligned to ``rgb`` (only used by depth models).
        """
        if self._prompt is None:
            raise RuntimeError('no query set: call set_query(text) first')
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f'rgb must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}')
        t0 = time.perf_counter()
        outputs = self.engine.infer(rgb, depth_m, *self._prompt)
        t1 = time.perf_counter()
        h, w = rgb.shape[:2]
        prob = self.engine.upsample_mask(outputs['mask_logits'], h, w)
        score = float(1.0 / (1.0 + np.exp(-float(np.ravel(outputs['exists_logit'])[0]))))
        mask = prob > self.mask_threshold
        found = score >= self.exists_threshold and bool(mask.any())
        attributes, attribute_probs, rejected = {}, {}, ''
        for key, vocab_key in (('category', 'categories'), ('color', 'colors'), ('size', 'sizes')):
            p = _softmax(np.asarray(outputs[f'{key}_logits'], np.float64).ravel())
            k = int(p.argmax())
            names = self.vocab[vocab_key]
            attributes[key] = (names[k], float(p[k]))
            attribute_probs[key] = p
            said = self._mentions.get(key)
            if (found and not rejected and key in self.verify_attributes and said in names
                    and p[names.index(said)] < self.verify_min_prob):
                rejected = (f'{key}: asked for {said}, p = {p[names.index(said)]:.2f}, '
                            f'sees {names[k]}')
        if rejected:
            found = False
        if not found:
            mask = np.zeros_like(mask)
        box = None
        rows_cols = mask_bbox(mask) if found else None
        if rows_cols is not None:
            rows, cols = rows_cols
            box = (int(cols.start), int(rows.start), int(cols.stop) - 1, int(rows.stop) - 1)
        t2 = time.perf_counter()
        timings = dict(self.engine.last_timings)
        timings.update(model_ms=(t1 - t0) * 1e3, postprocess_ms=(t2 - t1) * 1e3,
                       total_ms=(t2 - t0) * 1e3)
        return Prediction(prob, mask, score, found, box, attributes, timings, rejected,
                          attribute_probs)

    def refine_attributes(self, pred: Prediction, geometry) -> Prediction:
        """Re-decide category and size of a found object from its measured 3D box.

        Args:
            pred: this predictor's answer for the frame.
            geometry: ``estimate_object_geometry`` of ``pred.mask`` on the same frame.
        Returns:
            ``pred`` itself, with ``attributes['category'|'size']`` replaced and
            ``attributes_source = 'network+geometry'`` when a metric head is loaded, the
            object was found and its geometry measured; unchanged otherwise. ``found`` is not
            revisited: the words check (``verify_attributes``) ran on the heads in :meth:`predict`.
        """
        head = self.metric_attributes
        if head is None or geometry is None or not pred.found or not pred.attribute_probs:
            return pred
        category, size = head.predict(geometry, pred.attribute_probs['category'],
                                      pred.attribute_probs['size'])
        pred.attributes = dict(pred.attributes, category=category, size=size)
        pred.attributes_source = 'network+geometry'
        return pred
