"""PyTorch engine: CPU fp32, or CUDA with optional fp16 autocast."""
from __future__ import annotations

import numpy as np
import torch

from unipixel_ros.model.checkpoint import load_checkpoint

from .base import Engine, EngineError


class TorchEngine(Engine):
    name = 'torch'

    def __init__(self, checkpoint: str, device: str = 'cpu', fp16: bool = False,
                 text_encoder: str | None = None) -> None:
        if device.startswith('cuda') and not torch.cuda.is_available():
            raise EngineError(f'device {device!r} requested but CUDA is not available')
        self.device = torch.device(device)
        self.fp16 = fp16 and self.device.type == 'cuda'
        self.net, meta = load_checkpoint(checkpoint, self.device)
        if text_encoder:
            meta['text_encoder'] = text_encoder
        super().__init__(meta)
        from unipixel_ros.model.text_encoder import TextEncoder
        self.text_encoder = TextEncoder(meta.get('text_encoder'), max_tokens=self.max_tokens,
                                        device=self.device)

    def encode_text(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        tf = self.text_encoder.encode([text])
        with torch.no_grad():
            prompt = self.net.encode_text(tf.features)
        return prompt.float().cpu().numpy(), tf.mask.cpu().numpy()

    @torch.no_grad()
    def _run_text(self, input_ids, attention_mask):
        feats = self.text_encoder.model(input_ids=torch.from_numpy(input_ids).to(self.device),
                                        attention_mask=torch.from_numpy(attention_mask).to(self.device))
        return self.net.encode_text(feats.last_hidden_state.float()).cpu().numpy()

    @torch.no_grad()
    def _run_point(self, uv):
        return self.net.encode_point(torch.from_numpy(uv).to(self.device)).float().cpu().numpy()

    @torch.no_grad()
    def _run_image(self, image, prompt, prompt_mask):
        args = [torch.from_numpy(a).to(self.device) for a in (image, prompt, prompt_mask)]
        with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.fp16):
            out = self.net(*args)
        return {k: getattr(out, k).float().cpu().numpy() for k in
                ('mask_logits', 'exists_logit', 'category_logits', 'color_logits', 'size_logits')}

    def close(self) -> None:
        del self.net
        if self.device.type == 'cuda':
            torch.cuda.empty_cache()
