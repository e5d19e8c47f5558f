"""Training losses shared by the trainers (the object decoder's own terms are in
``object_training.py``)."""
from __future__ import annotations

import torch


def dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Soft Dice loss per sample: logits, target (B, 1, H, W) -> (B,)."""
    prob = torch.sigmoid(logits).flatten(1)
    target = target.flatten(1)
    inter = (prob * target).sum(1)
    return 1.0 - (2 * inter + eps) / (prob.sum(1) + target.sum(1) + eps)
