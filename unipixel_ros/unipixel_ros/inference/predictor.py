"""The predictor: encode a query once, decode it on every frame (nanoowl style).

    query = predictor.encode_text('the red cup')      # once per command (cached per text)
    pred = predictor.predict(rgb, query)               # per frame: only the image graph runs

The query is a value passed in and returned, never hidden state of the predictor, so a one-off
job (a service call, a clicked point) cannot disturb the command being tracked. The predictor
is engine-agnostic: it talks to an :class:`unipixel_ros.engines.Engine` (torch, ONNX Runtime or
TensorRT) through numpy arrays.
"""
from __future__ import annotations

import time
from collections import OrderedDict
from dataclasses import dataclass, field

import numpy as np

from unipixel_ros.dataset.vocab import CATEGORIES, COLORS, SIZES
from unipixel_ros.language.canonical import canonical_text
from unipixel_ros.language.mentions import target_mentions
from unipixel_ros.perception.mask_ops import mask_bbox

from .resolver import color_word
from .settings import DEFAULT_SETTINGS, DecisionSettings

#: encoded texts kept per predictor (a robot hears few distinct commands)
TEXT_CACHE_SIZE = 16


@dataclass(frozen=True)
class Query:
    """An encoded prompt: a referring expression or a clicked point.

    Attributes:
        text: the expression ('the red cup'), or '<point u,v>' for a click.
        model_text: what the model read: ``text`` in its own vocabulary
            (``language.canonical``) when ``DecisionSettings.canonical_words``, else ``text``.
        prompt: (1, L, D) float32 prompt tokens.
        prompt_mask: (1, L) float32, 1 = real token, 0 = padding.
        mentions: {'category'|'color'|'size': word or None} the text names for its target
            (``language.mentions``; empty for a point).
        kind: 'text' or 'point'.
    """

    text: str
    prompt: np.ndarray
    prompt_mask: np.ndarray
    mentions: dict
    kind: str = 'text'
    model_text: str = ''


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
        attributes_source: 'network' (the heads alone), plus '+geometry' (category and size
            re-decided with the measured 3D box) and '+pixels' (colour named from the mask's
            pixels), see :meth:`ReferringPredictor.refine_attributes`.
        question: a backend that resolves referring expressions (``sam3``) sets this when
            several objects fit ("Which one, the left or the right red cup?"); '' otherwise.
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
    question: str = ''

    def description(self) -> str:
        """A short noun phrase, e.g. 'a small red cup'."""
        return (f"a {self.attributes['size'][0]} {self.attributes['color'][0]} "
                f"{self.attributes['category'][0]}")

    def description_confidence(self) -> float:
        """How likely the description's category and colour are both right, in [0, 1]:
        p(category) x p(colour) of the named classes (the category's after the metric head,
        when refined). ``unipixel/describe`` returns it as ``score``; its calibration is
        measured by ``unipixel-ros eval-dataset --describe``."""
        return describe_confidence(self.attributes)


def describe_confidence(attributes: dict) -> float:
    """p(category) x p(colour) from ``{'category'|'color': (name, probability)}`` (0 when
    either is missing)."""
    try:
        return float(attributes['category'][1]) * float(attributes['color'][1])
    except (KeyError, IndexError, TypeError):
        return 0.0


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max())
    return e / e.sum()


class ReferringPredictor:
    """Encode-once / decode-cheap wrapper over an engine.

    Args:
        engine: an Engine (see ``unipixel_ros.engines``).
        settings: the :class:`DecisionSettings` (replace ``predictor.settings`` to change them;
            the next :meth:`predict` uses the new ones).
        metric_attributes: a fitted :class:`~.metric_attributes.MetricAttributeModel` for
            :meth:`refine_attributes`, or None (the heads' answers stand).
    Raises:
        ValueError: the metric attribute head was fitted for another vocabulary.
    """

    def __init__(self, engine, settings: DecisionSettings = DEFAULT_SETTINGS,
                 metric_attributes=None) -> None:
        self.engine = engine
        self.settings = settings
        self.metric_attributes = metric_attributes
        self._text_cache: OrderedDict[str, Query] = OrderedDict()
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

    def encode_text(self, text: str) -> Query:
        """Encode a referring expression (the text graph runs once per distinct text).

        Raises:
            ValueError: empty text.
        """
        text = text.strip()
        if not text:
            raise ValueError('empty query')
        model_text = text
        if self.settings.canonical_words:
            v = self.vocab
            model_text = canonical_text(text, v['categories'], v['colors'])
        key = (text, model_text)
        query = self._text_cache.get(key)
        if query is None:
            prompt, prompt_mask = self.engine.encode_text(model_text)
            query = Query(text, prompt, prompt_mask, target_mentions(model_text),
                          model_text=model_text)
            self._text_cache[key] = query
            if len(self._text_cache) > TEXT_CACHE_SIZE:
                self._text_cache.popitem(last=False)
        else:
            self._text_cache.move_to_end(key)
        return query

    def encode_point(self, u: float, v: float, width: int, height: int) -> Query:
        """Region prompt: the object at pixel (u, v) of a width x height image (describe).

        Raises:
            ValueError: the pixel is outside the image.
        """
        if not (0 <= u < width and 0 <= v < height):
            raise ValueError(f'pixel ({u}, {v}) is outside the {width}x{height} image')
        prompt, prompt_mask = self.engine.encode_point((u + 0.5) / width, (v + 0.5) / height)
        return Query(f'<point {u:.0f},{v:.0f}>', prompt, prompt_mask, {}, kind='point')

    def predict(self, rgb: np.ndarray, query: Query) -> Prediction:
        """Run the image graph on one frame for an encoded query.

        Args:
            rgb: (H, W, 3) uint8 RGB.
            query: from :meth:`encode_text` or :meth:`encode_point`.
        """
        settings = self.settings
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f'rgb must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}')
        t0 = time.perf_counter()
        outputs = self.engine.infer(rgb, query.prompt, query.prompt_mask)
        t1 = time.perf_counter()
        h, w = rgb.shape[:2]
        prob = self.engine.upsample_mask(outputs['mask_logits'], h, w)
        score = float(1.0 / (1.0 + np.exp(-float(np.ravel(outputs['exists_logit'])[0]))))
        mask = prob > settings.mask_threshold
        found = score >= settings.exists_threshold and bool(mask.any())
        attributes, attribute_probs, rejected = {}, {}, ''
        for key, vocab_key in (('category', 'categories'), ('color', 'colors'), ('size', 'sizes')):
            p = _softmax(np.asarray(outputs[f'{key}_logits'], np.float64).ravel())
            k = int(p.argmax())
            names = self.vocab[vocab_key]
            attributes[key] = (names[k], float(p[k]))
            attribute_probs[key] = p
            said = query.mentions.get(key)
            if (found and not rejected and key in settings.verify_attributes and said in names
                    and p[names.index(said)] < settings.verify_min_prob):
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

    def refine_attributes(self, pred: Prediction, geometry,
                          rgb: np.ndarray | None = None) -> Prediction:
        """Re-decide the attributes of a found object from measurements: category and size
        from its 3D box (the metric head), colour from its pixels
        (``settings.describe_color == 'measured'``).

        Args:
            pred: this predictor's answer for the frame.
            geometry: ``estimate_object_geometry`` of ``pred.mask`` on the same frame, or None.
            rgb: (H, W, 3) uint8, the frame (None: the colour head's word stands).
        Returns:
            ``pred`` itself, with the re-decided attributes replaced and ``attributes_source``
            naming the measurements used ('network', 'network+geometry',
            'network+pixels', 'network+geometry+pixels'). ``found`` is not revisited: the
            words check (``verify_attributes``) ran on the heads in :meth:`predict`.
        """
        if not pred.found:
            return pred
        sources = ['network']
        head = self.metric_attributes
        if head is not None and geometry is not None and pred.attribute_probs:
            category, size = head.predict(geometry, pred.attribute_probs['category'],
                                          pred.attribute_probs['size'])
            pred.attributes = dict(pred.attributes, category=category, size=size)
            sources.append('geometry')
        if rgb is not None and self.settings.describe_color == 'measured' and pred.mask.any():
            pred.attributes = dict(pred.attributes, color=color_word(rgb, pred.mask))
            sources.append('pixels')
        pred.attributes_source = '+'.join(sources)
        return pred
