"""The Engine interface shared by the torch, ONNX Runtime and TensorRT back-ends.

Two graphs, with names shared by the exporter and every engine (``GRAPH_IO``):

* ``text``: token ids + attention mask -> prompt tokens, run once per command;
* ``image``: image + prompt tokens + prompt mask -> mask logits, exists logit, attribute logits,
  run per frame.
(A tiny ``point`` graph maps a clicked pixel to a one-token prompt for region -> words.)

Pre/post-processing is numpy + Pillow so engines without torch stay light.
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod

import numpy as np
from PIL import Image

from unipixel_ros.model.network import IMAGE_MEAN, IMAGE_STD

#: Input and output tensor names of each exported graph (the single source of truth).
GRAPH_IO = {
    'text': {'inputs': ['input_ids', 'attention_mask'], 'outputs': ['prompt']},
    'point': {'inputs': ['uv'], 'outputs': ['prompt']},
    'image': {'inputs': ['image', 'prompt', 'prompt_mask'],
              'outputs': ['mask_logits', 'exists_logit', 'category_logits', 'color_logits',
                          'size_logits']},
}

_MEAN = np.asarray(IMAGE_MEAN, np.float32).reshape(1, 3, 1, 1)
_STD = np.asarray(IMAGE_STD, np.float32).reshape(1, 3, 1, 1)


class EngineError(RuntimeError):
    """An engine cannot be built or run (missing file, unsupported back-end, bad input)."""


def preprocess(rgb: np.ndarray, depth_m: np.ndarray | None, width: int, height: int,
               use_depth: bool) -> np.ndarray:
    """(H, W, 3) uint8 RGB [+ (H, W) depth metres] -> (1, 3|4, height, width) float32 input.

    Area (box) resampling, as in training; depth is resampled nearest and scaled by 1/2.
    """
    if rgb.shape[:2] != (height, width):
        rgb = np.asarray(Image.fromarray(rgb).resize((width, height), Image.BOX))
    x = (rgb.astype(np.float32).transpose(2, 0, 1)[None] / 255.0 - _MEAN) / _STD
    if use_depth:
        if depth_m is None:
            raise EngineError('this model needs a depth image')
        d = np.nan_to_num(np.asarray(depth_m, np.float32), nan=0.0, posinf=0.0, neginf=0.0)
        if d.shape != (height, width):
            d = np.asarray(Image.fromarray(d, mode='F').resize((width, height), Image.NEAREST))
        x = np.concatenate([x, d[None, None] / 2.0], axis=1)
    return np.ascontiguousarray(x, dtype=np.float32)


def upsample_logits(logits: np.ndarray, height: int, width: int) -> np.ndarray:
    """(1, 1, h, w) mask logits -> (height, width) probabilities (bilinear, then sigmoid)."""
    lg = np.asarray(logits, np.float32).reshape(logits.shape[-2:])
    if lg.shape != (height, width):
        lg = np.asarray(Image.fromarray(lg, mode='F').resize((width, height), Image.BILINEAR))
    if lg.base is not None or not lg.flags.writeable:   # never write into the caller's logits
        lg = lg.copy()
    # the sigmoid in place: three image-sized temporaries fewer per frame
    np.negative(lg, out=lg)
    np.exp(lg, out=lg)
    lg += 1.0
    return np.reciprocal(lg, out=lg)


class Engine(ABC):
    """One inference back-end. Subclasses implement the three graph runners."""

    name = 'base'

    def __init__(self, metadata: dict) -> None:
        self.metadata = metadata
        cfg = metadata['model_config']
        self.input_size = (int(cfg['input_width']), int(cfg['input_height']))
        self.use_depth = bool(cfg.get('use_depth', False))
        self.max_tokens = int(cfg.get('max_text_tokens', 24))
        self.last_timings: dict = {}
        self._tokenizer = None

    # ---- text -------------------------------------------------------------------------------
    def tokenize(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """-> input_ids (1, L) int64, attention_mask (1, L) int64, padded to max_tokens."""
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            from unipixel_ros.model.text_encoder import resolve_text_encoder
            src = resolve_text_encoder(self.metadata.get('text_encoder'))
            self._tokenizer = AutoTokenizer.from_pretrained(src)
        enc = self._tokenizer([text], padding='max_length', truncation=True,
                              max_length=self.max_tokens, return_tensors='np')
        return enc['input_ids'].astype(np.int64), enc['attention_mask'].astype(np.int64)

    def encode_text(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """-> prompt (1, L, D) float32, prompt_mask (1, L) float32. Once per command."""
        ids, mask = self.tokenize(text)
        return self._run_text(ids, mask), mask.astype(np.float32)

    def encode_point(self, u: float, v: float) -> tuple[np.ndarray, np.ndarray]:
        """Normalised click (u, v) in [0, 1] -> a one-token prompt padded to L tokens."""
        point = self._run_point(np.asarray([[u, v]], np.float32))      # (1, 1, D)
        prompt = np.zeros((1, self.max_tokens, point.shape[-1]), np.float32)
        prompt[:, :1] = point
        mask = np.zeros((1, self.max_tokens), np.float32)
        mask[0, 0] = 1.0
        return prompt, mask

    # ---- image ------------------------------------------------------------------------------
    def infer(self, rgb: np.ndarray, depth_m: np.ndarray | None, prompt: np.ndarray,
              prompt_mask: np.ndarray) -> dict:
        """One frame -> dict of numpy outputs named as in GRAPH_IO['image']['outputs']."""
        t0 = time.perf_counter()
        x = preprocess(rgb, depth_m, *self.input_size, self.use_depth)
        t1 = time.perf_counter()
        out = self._run_image(x, prompt, prompt_mask)
        t2 = time.perf_counter()
        self.last_timings = {'preprocess_ms': (t1 - t0) * 1e3, 'network_ms': (t2 - t1) * 1e3}
        return out

    @staticmethod
    def upsample_mask(logits: np.ndarray, height: int, width: int) -> np.ndarray:
        return upsample_logits(logits, height, width)

    @abstractmethod
    def _run_text(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _run_point(self, uv: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _run_image(self, image: np.ndarray, prompt: np.ndarray,
                   prompt_mask: np.ndarray) -> dict: ...

    def close(self) -> None:
        """Release accelerator memory (lifecycle cleanup)."""
