"""The Engine interface shared by the torch, ONNX Runtime and TensorRT back-ends.

The graphs, their tensor names and the pre/post-processing are defined once in
:mod:`unipixel_ros.model.graph_io` (torch-free), which the exporter reads too.
"""
from __future__ import annotations

import time
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from unipixel_ros.model.graph_io import preprocess, upsample_logits


class EngineError(RuntimeError):
    """An engine cannot be built or run (missing file, unsupported back-end, bad input)."""


class EngineUnavailable(EngineError):
    """A remote engine's server cannot be reached or did not answer in time; it may come back
    (the next call tries again, nothing needs rebuilding)."""


def _fast_tokenizer(tokenizer_dir: Path, max_tokens: int):
    """A ``tokenizers.Tokenizer`` from ``tokenizer_dir/tokenizer.json`` that truncates and pads
    every text to ``max_tokens`` with the pad token and side of ``tokenizer_config.json``."""
    import json

    from tokenizers import Tokenizer
    tok = Tokenizer.from_file(str(tokenizer_dir / 'tokenizer.json'))
    try:
        cfg = json.loads((tokenizer_dir / 'tokenizer_config.json').read_text())
    except (OSError, ValueError):
        cfg = {}
    pad = cfg.get('pad_token') or '[PAD]'
    pad = pad.get('content', '[PAD]') if isinstance(pad, dict) else pad
    tok.enable_truncation(max_length=max_tokens)
    tok.enable_padding(length=max_tokens, pad_id=tok.token_to_id(pad) or 0, pad_token=pad,
                       direction=cfg.get('padding_side', 'right'))
    return tok


class Engine(ABC):
    """One inference back-end. Subclasses implement the three graph runners."""

    name = 'base'

    def __init__(self, metadata: dict) -> None:
        self.metadata = metadata
        cfg = metadata['model_config']
        self.input_size = (int(cfg['input_width']), int(cfg['input_height']))
        if cfg.get('use_depth') or not cfg.get('object_slots', 1):
            raise EngineError('this model uses a decoder or input that this version no longer '
                              'has (the dense decoder or the depth-input arm); run it from the '
                              'git history (weights/MODEL_CARD.md, "Ancestors")')
        self.max_tokens = int(cfg.get('max_text_tokens', 24))
        self.last_timings: dict = {}
        self._tokenizer = None
        self._fast_tokenizer = None

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

    def tokenize_with_export(self, text: str, tokenizer_dir) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`tokenize` with the tokenizer saved in an export (``tokenizer_dir``, or None).

        With its ``tokenizer.json``, the ``tokenizers`` library alone does it, set up as
        transformers' ``padding='max_length', truncation=True`` (the same ids: test_triton.py):
        transformers' AutoTokenizer imports torch when it is installed, 230 MB of RSS in a
        process that runs its model with ONNX Runtime or on a server. Otherwise transformers.
        """
        if self._fast_tokenizer is None and tokenizer_dir is not None and \
                (Path(tokenizer_dir) / 'tokenizer.json').is_file():
            self._fast_tokenizer = _fast_tokenizer(Path(tokenizer_dir), self.max_tokens)
        if self._fast_tokenizer is not None:
            enc = self._fast_tokenizer.encode(text)
            return np.asarray([enc.ids], np.int64), np.asarray([enc.attention_mask], np.int64)
        if self._tokenizer is None and tokenizer_dir is not None and Path(tokenizer_dir).is_dir():
            from transformers import AutoTokenizer
            self._tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
        return Engine.tokenize(self, text)

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
    def infer(self, rgb: np.ndarray, prompt: np.ndarray, prompt_mask: np.ndarray) -> dict:
        """One frame: rgb (H, W, 3) uint8, prompt (1, L, D), prompt_mask (1, L) -> dict of numpy
        outputs named as in GRAPH_IO['image']['outputs']."""
        t0 = time.perf_counter()
        x = preprocess(rgb, *self.input_size)
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
