"""SAM 3 in PyTorch via transformers' ``Sam3Model``, split into the three deployable graphs.

The same three ``nn.Module`` graphs (:class:`VisionGraph`, :class:`TextGraph`,
:class:`DecoderGraph`) serve the torch predictor and the ONNX export, so "torch vs ONNX" parity
compares identical computations, and a test checks the split against ``Sam3Model.forward``.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from .model_dir import resolve_model_path
from .predictor import Sam3Predictor, load_preprocess_and_tokenizer
from .types import DecoderOutput, Sam3ModelError


class VisionGraph(nn.Module):
    """ViT backbone + the FPN levels the image detector reads.

    ``pixel_values (1, 3, S, S)`` -> ``fpn_0 (1, C, 4g, 4g), fpn_1 (1, C, 2g, 2g),
    fpn_2 (1, C, g, g)`` with ``g = S / patch_size``. The neck's fourth (0.5x) level feeds only
    the video tracker, so it is not computed.
    """

    def __init__(self, model):
        super().__init__()
        self.backbone = model.vision_encoder.backbone
        self.fpn_layers = model.vision_encoder.neck.fpn_layers[:-1]
        self.patch_size = model.config.vision_config.backbone_config.patch_size

    def forward(self, pixel_values: torch.Tensor):
        hidden = self.backbone(pixel_values).last_hidden_state  # (1, g*g, hidden)
        b = hidden.shape[0]
        h = pixel_values.shape[-2] // self.patch_size
        w = pixel_values.shape[-1] // self.patch_size
        spatial = hidden.view(b, h, w, -1).permute(0, 3, 1, 2)
        return tuple(layer(spatial) for layer in self.fpn_layers)


class TextGraph(nn.Module):
    """CLIP text encoder + projection: ``input_ids, attention_mask (1, L)`` -> ``(1, L, D)``."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        return self.model.get_text_features(input_ids=input_ids,
                                            attention_mask=attention_mask).pooler_output


class DecoderGraph(nn.Module):
    """DETR encoder/decoder, scoring, presence head and mask decoder for one concept.

    Calls ``Sam3Model.forward`` with precomputed ``vision_embeds`` and ``text_embeds`` (the
    official encode-once path). Sine position encodings depend only on the feature shape, so
    they are recomputed here (constants in an exported graph) instead of being graph inputs.
    """

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, fpn_0, fpn_1, fpn_2, text_embeds, text_mask):
        from transformers.modeling_outputs import BaseModelOutputWithPooling
        from transformers.models.sam3.modeling_sam3 import Sam3VisionEncoderOutput

        feats = (fpn_0, fpn_1, fpn_2)
        pe = self.model.vision_encoder.neck.position_encoding
        pos = tuple(pe(f.shape, f.device, f.dtype) for f in feats)
        # forward() drops the last FPN level ([:-1]); a None stands in for the unused 0.5x level.
        vision = Sam3VisionEncoderOutput(fpn_hidden_states=feats + (None,),
                                         fpn_position_encoding=pos + (None,))
        out = self.model(vision_embeds=vision,
                         text_embeds=BaseModelOutputWithPooling(pooler_output=text_embeds),
                         attention_mask=text_mask)
        return out.pred_masks, out.pred_logits, out.pred_boxes, out.presence_logits


def load_sam3(model_path: str | Path, device: str | torch.device = 'cpu',
              dtype: torch.dtype = torch.float32):
    """``Sam3Model`` in eval mode from a Hub id or local directory (validated first).

    Returns:
        ``(model, model_dir)``.
    """
    from transformers import Sam3Model

    model_dir = resolve_model_path(model_path)
    try:
        model = Sam3Model.from_pretrained(str(model_dir), dtype=dtype)
    except Exception as exc:  # transformers raises many kinds on bad checkpoints
        raise Sam3ModelError(f'could not load SAM 3 from {model_dir}: {exc}') from exc
    return model.to(device).eval().requires_grad_(False), model_dir


class Sam3TorchPredictor(Sam3Predictor):
    """SAM 3 predictor running PyTorch.

    Args:
        model_path: Hugging Face id (``facebook/sam3``) or local directory.
        device: torch device (``cpu``, ``cuda``, ``cuda:1``).
        dtype: weights/activations dtype (float16/bfloat16 on GPU; outputs are float32 numpy).
        threads: ``torch.set_num_threads`` (process-wide) when given.
        **kwargs: :class:`Sam3Predictor` options (text_cache_size, thresholds).
    """

    backend = 'torch'

    def __init__(self, model_path: str | Path, device: str = 'cpu',
                 dtype: torch.dtype = torch.float32, threads: int | None = None, **kwargs):
        if threads:
            torch.set_num_threads(int(threads))
        self.model, self.model_dir = load_sam3(model_path, device, dtype)
        super().__init__(*load_preprocess_and_tokenizer(self.model_dir), **kwargs)
        self.device = torch.device(device)
        self.dtype = dtype
        self.vision_graph = VisionGraph(self.model).eval()
        self.text_graph = TextGraph(self.model).eval()
        self.decoder_graph = DecoderGraph(self.model).eval()

    @torch.inference_mode()
    def _run_vision(self, pixel_values: np.ndarray):
        x = torch.from_numpy(pixel_values).to(self.device, self.dtype)
        return self.vision_graph(x)

    @torch.inference_mode()
    def _run_text(self, input_ids: np.ndarray, attention_mask: np.ndarray):
        ids = torch.from_numpy(input_ids).to(self.device)
        mask = torch.from_numpy(attention_mask).to(self.device)
        return self.text_graph(ids, mask), mask

    @torch.inference_mode()
    def _run_decoder(self, features, embeddings, mask) -> DecoderOutput:
        masks, logits, boxes, presence = self.decoder_graph(*features, embeddings, mask)

        def np32(t):
            return t[0].float().cpu().numpy()

        return DecoderOutput(mask_logits=np32(masks), logits=np32(logits), boxes=np32(boxes),
                             presence_logit=float(presence.reshape(-1)[0]))
