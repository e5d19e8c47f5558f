"""SAM 3 pre- and post-processing in numpy + PIL, to the numbers of ``preprocessor_config.json``.

transformers' ``Sam3ImageProcessor`` is built on torchvision; this module reproduces what it
does for still images, so the ONNX Runtime and TensorRT paths need neither torch nor
torchvision:

- pre-processing: convert to RGB, resize to ``size`` (1008 x 1008 for ``facebook/sam3``, aspect
  ratio not kept, no padding) with ``resample`` (bilinear, antialiased when shrinking, on uint8
  like torchvision), multiply by ``rescale_factor`` (1/255), normalise with ``image_mean`` /
  ``image_std`` (0.5 / 0.5, so pixel values land in [-1, 1]).
- post-processing (``Sam3Processor.post_process_instance_segmentation``): score =
  ``sigmoid(logit) * sigmoid(presence_logit)``, keep ``score > threshold``, boxes (already
  ``x0, y0, x1, y1`` in [0, 1]) times ``(W, H, W, H)``, masks: ``sigmoid`` at the decoder
  resolution, bilinear (``align_corners=False``, no antialias) to ``(H, W)``, then
  ``> mask_threshold``.
- tokenisation (``Sam3Processor``: CLIP BPE, padded to 32 tokens) with the ``tokenizers``
  package reading ``tokenizer.json``.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .types import DecoderOutput, Sam3ModelError

#: Text length ``Sam3Processor`` pads every phrase to (the CLIP text encoder's 32 positions).
TEXT_LENGTH = 32


@dataclass(frozen=True)
class PreprocessConfig:
    """The image pre-processing numbers (defaults are ``Sam3ImageProcessor``'s).

    Attributes:
        height, width: model input size in pixels.
        resample: PIL resampling code (2 = bilinear, 3 = bicubic).
        rescale_factor: multiplies uint8 values (1/255).
        image_mean, image_std: per-channel normalisation applied after rescaling.
    """

    height: int = 1008
    width: int = 1008
    resample: int = 2
    rescale_factor: float = 1 / 255
    image_mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    image_std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    do_resize: bool = True
    do_rescale: bool = True
    do_normalize: bool = True

    @classmethod
    def from_json(cls, path: str | Path) -> 'PreprocessConfig':
        """Read ``preprocessor_config.json``; Sam3Model errors name the file on a bad one."""
        path = Path(path)
        try:
            d = json.loads(path.read_text())
        except FileNotFoundError:
            raise Sam3ModelError(f'{path} is missing (every SAM 3 model directory has one)')
        except (OSError, ValueError) as exc:
            raise Sam3ModelError(f'{path} is not valid JSON: {exc}') from exc
        return cls.from_dict(d, where=str(path))

    @classmethod
    def from_dict(cls, d: dict, where: str = 'preprocessor config') -> 'PreprocessConfig':
        size = d.get('size') or {}
        try:
            if 'height' in size:
                height, width = int(size['height']), int(size['width'])
            elif 'longest_edge' in size or 'shortest_edge' in size:
                raise Sam3ModelError(f'{where}: size {size} is not a fixed height x width; SAM 3 '
                                     'resizes to a square')
            else:
                height = width = cls.height
            resample = d.get('resample', cls.resample)
            if not isinstance(resample, int):
                resample = {'bilinear': 2, 'bicubic': 3, 'nearest': 0}[str(resample).lower()]
            return cls(height=height, width=width, resample=resample,
                       rescale_factor=float(d.get('rescale_factor', cls.rescale_factor)),
                       image_mean=tuple(float(v) for v in d.get('image_mean', cls.image_mean)),
                       image_std=tuple(float(v) for v in d.get('image_std', cls.image_std)),
                       do_resize=bool(d.get('do_resize', True)),
                       do_rescale=bool(d.get('do_rescale', True)),
                       do_normalize=bool(d.get('do_normalize', True)))
        except (KeyError, TypeError, ValueError) as exc:
            raise Sam3ModelError(f'{where}: unreadable value ({exc!r})') from exc


def _as_rgb_uint8(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.dtype != np.uint8:
        raise ValueError(f'expected a uint8 image, got {rgb.dtype}')
    if rgb.ndim == 2:
        rgb = np.repeat(rgb[:, :, None], 3, axis=2)
    if rgb.ndim != 3 or rgb.shape[2] not in (3, 4) or rgb.shape[0] < 1 or rgb.shape[1] < 1:
        raise ValueError(f'expected an (H, W, 3) RGB image, got shape {rgb.shape}')
    if rgb.shape[2] == 4:
        rgb = rgb[:, :, :3]  # RGBA -> RGB, as PIL's convert('RGB') does
    return np.ascontiguousarray(rgb)


def preprocess(rgb: np.ndarray, config: PreprocessConfig) -> np.ndarray:
    """RGB frame -> model input.

    Args:
        rgb: ``(H, W, 3)`` uint8 RGB (``(H, W)`` grey and ``(H, W, 4)`` RGBA are converted).
        config: the model's :class:`PreprocessConfig`.

    Returns:
        ``(1, 3, height, width)`` float32, C-contiguous.
    """
    from PIL import Image

    rgb = _as_rgb_uint8(rgb)
    if config.do_resize and rgb.shape[:2] != (config.height, config.width):
        # PIL on uint8 matches torchvision's antialiased uint8 resize to +-1 grey level.
        img = Image.fromarray(rgb).resize((config.width, config.height),
                                          resample=Image.Resampling(config.resample))
        rgb = np.asarray(img)
    x = rgb.astype(np.float32)
    if config.do_rescale:
        x *= np.float32(config.rescale_factor)
    if config.do_normalize:
        x -= np.asarray(config.image_mean, np.float32)
        x /= np.asarray(config.image_std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])


def _linear_weights(out_size: int, in_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights of 1-D linear interpolation, ``align_corners=False``.

    Same arithmetic as ``torch.nn.functional.interpolate(mode='bilinear')`` without antialias:
    ``src = max((dst + 0.5) * in / out - 0.5, 0)``.
    """
    scale = in_size / out_size
    src = np.maximum((np.arange(out_size, dtype=np.float64) + 0.5) * scale - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    i1 = np.minimum(i0 + 1, in_size - 1)
    w1 = (src - i0).astype(np.float32)
    return i0, i1, w1


def resize_bilinear(x: np.ndarray, out_hw: tuple[int, int]) -> np.ndarray:
    """Bilinear resize of ``(N, h, w)`` float32 maps to ``(N, H, W)`` (``align_corners=False``).

    Matches ``F.interpolate(x[None], out_hw, mode='bilinear', align_corners=False)[0]`` to
    float32 rounding (~3e-5). Returns a non-contiguous view of an ``(N, W, H)`` buffer: both
    passes gather whole contiguous rows, which is 2x faster than gathering columns.
    """
    x = np.asarray(x, np.float32)
    H, W = int(out_hw[0]), int(out_hw[1])
    return resize_bilinear_indexed(x, _linear_weights(H, x.shape[1]),
                                   _linear_weights(W, x.shape[2]))


def upsample_masks(probs: np.ndarray, out_hw: tuple[int, int], threshold: float) -> np.ndarray:
    """``resize_bilinear(probs, out_hw) > threshold`` computed only inside each mask's support.

    A bilinear output is a convex combination of at most 4 input pixels, so output pixels whose
    sources are all below ``threshold`` cannot pass it. Each mask is interpolated only over the
    output rows and columns reached by its (1-pixel padded) bounding box of input pixels at or
    above ``threshold - 1e-6``: the same result as thresholding the full resize, at a cost
    proportional to the object's size instead of the frame's.

    Args:
        probs: ``(N, h, w)`` float32 mask probabilities.
        out_hw: ``(H, W)`` output size in pixels.
        threshold: probability threshold (strictly greater passes).

    Returns:
        ``(N, H, W)`` bool.
    """
    probs = np.asarray(probs, np.float32)
    n, h, w = probs.shape
    H, W = int(out_hw[0]), int(out_hw[1])
    y0, y1, wy = _linear_weights(H, h)
    x0, x1, wx = _linear_weights(W, w)
    out = np.zeros((n, H, W), bool)
    support = probs >= threshold - 1e-6
    for k in range(n):
        rows = np.flatnonzero(support[k].any(axis=1))
        if rows.size == 0:
            continue
        cols = np.flatnonzero(support[k].any(axis=0))
        r0, r1 = max(rows[0] - 1, 0), min(rows[-1] + 1, h - 1)
        c0, c1 = max(cols[0] - 1, 0), min(cols[-1] + 1, w - 1)
        # output rows/cols with a source inside [r0, r1] x [c0, c1] (contiguous: indices rise)
        ys = np.flatnonzero((y1 >= r0) & (y0 <= r1))
        xs = np.flatnonzero((x1 >= c0) & (x0 <= c1))
        ya, yb, xa, xb = ys[0], ys[-1] + 1, xs[0], xs[-1] + 1
        sy, sx = y0[ya], x0[xa]  # source window origin
        src = probs[k:k + 1, sy:y1[yb - 1] + 1, sx:x1[xb - 1] + 1]
        crop = resize_bilinear_indexed(src, (y0[ya:yb] - sy, y1[ya:yb] - sy, wy[ya:yb]),
                                       (x0[xa:xb] - sx, x1[xa:xb] - sx, wx[xa:xb]))
        out[k, ya:yb, xa:xb] = crop[0] > threshold
    return out


def resize_bilinear_indexed(x: np.ndarray, ys, xs) -> np.ndarray:
    """Bilinear gather with precomputed ``(i0, i1, w1)`` per axis (see :func:`_linear_weights`)."""
    y0, y1, wy = ys
    x0, x1, wx = xs
    rows = x[:, y0, :]
    rows *= (1 - wy)[None, :, None]
    rows += x[:, y1, :] * wy[None, :, None]
    rt = np.ascontiguousarray(rows.transpose(0, 2, 1))
    out = rt[:, x0, :]
    out *= (1 - wx)[None, :, None]
    out += rt[:, x1, :] * wx[None, :, None]
    return out.transpose(0, 2, 1)


def sigmoid(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, np.float32)
    return (0.5 * (1.0 + np.tanh(0.5 * x))).astype(np.float32)  # overflow-free logistic


def select_queries(logits: np.ndarray, presence_logit: float, score_threshold: float,
                   max_candidates: int | None = None) -> tuple[np.ndarray, np.ndarray, float]:
    """The queries post-processing keeps, best first; one rule for every runtime and the server.

    Args:
        logits: ``(Q,)`` per-query classification logits.
        presence_logit: the concept's presence logit.
        score_threshold: keep ``score > score_threshold``, score = sigmoid(logit) *
            sigmoid(presence_logit).
        max_candidates: keep at most this many (None or 0: no cap).

    Returns:
        ``(keep (N,) int64 query indices by descending score (ties: lower index first),
        scores (Q,) float32, presence probability)``.
    """
    presence = float(sigmoid(np.float32(presence_logit)))
    scores = sigmoid(logits) * np.float32(presence)
    keep = np.flatnonzero(scores > score_threshold)
    keep = keep[np.argsort(-scores[keep], kind='stable')]
    if max_candidates:
        keep = keep[:max_candidates]
    return keep.astype(np.int64), scores, presence


def postprocess(raw: DecoderOutput, image_hw: tuple[int, int], phrase: str = '',
                score_threshold: float = 0.3, mask_threshold: float = 0.5,
                max_candidates: int | None = None):
    """Raw decoder outputs -> :class:`ConceptCandidates` at the original frame resolution.

    Args:
        raw: one concept's :class:`DecoderOutput`.
        image_hw: ``(H, W)`` of the original frame, pixels.
        phrase: copied to the result.
        score_threshold: keep queries with ``score > score_threshold`` (official default 0.3).
        mask_threshold: on the upsampled mask probability (official default 0.5).
        max_candidates: keep at most this many (highest scores) before upsampling masks.

    Returns:
        ConceptCandidates sorted by descending score (``timings`` left empty).
    """
    from .types import ConceptCandidates

    H, W = int(image_hw[0]), int(image_hw[1])
    keep, scores, presence = select_queries(raw.logits, raw.presence_logit, score_threshold,
                                            max_candidates)
    boxes = raw.boxes[keep].astype(np.float32) * np.asarray([W, H, W, H], np.float32)
    if keep.size:
        masks = upsample_masks(sigmoid(raw.mask_logits[keep]), (H, W), mask_threshold)
    else:
        masks = np.zeros((0, H, W), bool)
    return ConceptCandidates(phrase=phrase, masks=masks, boxes=boxes,
                             scores=scores[keep].astype(np.float32),
                             query_indices=keep.astype(np.int64), presence=presence)


class Sam3Tokenizer:
    """CLIP BPE tokenisation as ``Sam3Processor`` does it, from ``tokenizer.json`` (no torch).

    Phrases are lower-cased and whitespace-collapsed by the tokenizer's own normaliser, wrapped
    in ``<|startoftext|> ... <|endoftext|>``, truncated to and padded to :data:`TEXT_LENGTH`
    with the pad token (``<|endoftext|>`` for CLIP).
    """

    def __init__(self, tokenizer_json: str | Path, pad_token: str | None = None,
                 length: int = TEXT_LENGTH):
        from tokenizers import Tokenizer

        path = Path(tokenizer_json)
        if not path.is_file():
            raise Sam3ModelError(f'{path} is missing: the SAM 3 tokenizer (CLIP BPE) is needed '
                                 'to encode phrases')
        try:
            self._tok = Tokenizer.from_file(str(path))
        except Exception as exc:  # tokenizers raises a bare Exception on bad JSON
            raise Sam3ModelError(f'{path} is not a valid tokenizer.json: {exc}') from exc
        if pad_token is None:
            cfg = path.with_name('tokenizer_config.json')
            if cfg.is_file():
                tok = json.loads(cfg.read_text()).get('pad_token')
                pad_token = tok['content'] if isinstance(tok, dict) else tok
        pad_token = pad_token or '<|endoftext|>'
        pad_id = self._tok.token_to_id(pad_token)
        if pad_id is None:
            raise Sam3ModelError(f'{path}: pad token {pad_token!r} is not in the vocabulary')
        self.length = int(length)
        self.pad_id = int(pad_id)
        self._tok.no_padding()
        self._tok.no_truncation()

    def __call__(self, phrase: str) -> tuple[np.ndarray, np.ndarray]:
        """One phrase -> ``(input_ids, attention_mask)``, both ``(1, L)`` int64."""
        ids = self._tok.encode(phrase).ids
        if len(ids) > self.length:
            ids = ids[:self.length - 1] + ids[-1:]  # keep <|endoftext|> last, as CLIP does
        n = len(ids)
        input_ids = np.full((1, self.length), self.pad_id, np.int64)
        input_ids[0, :n] = ids
        mask = np.zeros((1, self.length), np.int64)
        mask[0, :n] = 1
        return input_ids, mask
