"""Training losses: BCE-with-logits + Dice for masks, BCE for existence, CE for attributes."""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from unipixel_ros.model.network import NetworkOutput


@dataclass
class LossWeights:
    mask_bce: float = 1.0
    mask_dice: float = 1.0
    exists: float = 0.5
    attributes: float = 0.3
    selection: float = 1.0
    dense_attributes: float = 0.5
    text_attributes: float = 0.5


def selection_loss(corr: torch.Tensor, instances: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Which object does the phrase mean: cross-entropy over the scene's objects.

    Dense mask losses alone first teach "segment every object"; grounding then emerges slowly.
    This auxiliary loss scores every ground-truth object by the mean of the language-pixel
    correlation map over its mask and asks the target to win, which trains exactly the map the
    mask head adds to its logits.

    Args:
        corr: (B, 1, h, w) correlation logits.
        instances: (B, K, h, w) soft masks of the K object slots at the same resolution
            (all zero for an absent slot).
        target: (B,) long slot index of the referred object; samples with -1 are ignored.
    """
    area = instances.sum((2, 3))                                   # (B, K)
    present = area > 0.5
    scores = (corr * instances).sum((2, 3)) / area.clamp(min=1e-6)  # (B, K)
    scores = scores.masked_fill(~present, -1e4)
    valid = (target >= 0) & present.gather(1, target.clamp(min=0)[:, None]).squeeze(1)
    if not valid.any():
        return corr.sum() * 0
    return F.cross_entropy(scores[valid], target[valid])


def dense_attribute_loss(logits: torch.Tensor, labels: torch.Tensor,
                         background_weight: float = 0.05) -> torch.Tensor:
    """Per-pixel attribute loss that objects cannot lose to the background.

    Objects cover ~3% of a frame, so a plain cross-entropy is minimised by "background
    everywhere" (seen in training: 2.5% category accuracy on object pixels at a low loss).
    Here the background class is down-weighted for object-vs-background, and the attribute
    itself is a cross-entropy over the object classes on object pixels only (the conditional
    p(attribute | object) the attribute matching uses).

    Args:
        logits: (B, 1+n, h, w), class 0 = background.
        labels: (B, h, w) long, 0 = background, 1..n, -100 = ignore.
    """
    weight = torch.ones(logits.shape[1], device=logits.device, dtype=logits.dtype)
    weight[0] = background_weight
    objectness = F.cross_entropy(logits, labels, weight=weight, ignore_index=-100)
    on_object = labels > 0
    if not on_object.any():
        return objectness
    cond = logits[:, 1:].permute(0, 2, 3, 1)[on_object]               # (P, n)
    return objectness + F.cross_entropy(cond, labels[on_object] - 1)


def dice_loss(logits: torch.Tensor, target: torch.Tensor, eps: float = 1.0) -> torch.Tensor:
    """Soft Dice loss per sample: logits, target (B, 1, H, W) -> (B,)."""
    prob = torch.sigmoid(logits).flatten(1)
    target = target.flatten(1)
    inter = (prob * target).sum(1)
    return 1.0 - (2 * inter + eps) / (prob.sum(1) + target.sum(1) + eps)


def referring_loss(out: NetworkOutput, mask: torch.Tensor, exists: torch.Tensor,
                   category: torch.Tensor, color: torch.Tensor, size: torch.Tensor,
                   weights: LossWeights = LossWeights(), instances: torch.Tensor | None = None,
                   target: torch.Tensor | None = None,
                   dense_labels: torch.Tensor | None = None,
                   mentions: torch.Tensor | None = None) -> tuple[torch.Tensor, dict]:
    """Total loss and its parts.

    Args:
        out: network outputs for a batch of B samples.
        mask: (B, 1, H, W) float {0, 1} target mask at the network's input resolution.
        exists: (B,) float {0, 1}; masks and attributes only supervise samples with a target.
        category, color, size: (B,) long class indices, -1 where unknown/absent.
        instances, target: optional object-slot masks (B, K, h, w) at the correlation map's
            resolution and the target slot (B,), for :func:`selection_loss`.
        dense_labels: optional (B, 2, h, w) long per-pixel category+1 / colour+1 of every object
            (0 = background, -100 = ignore) at the dense heads' resolution; a third channel
            (size+1) when the network has a dense size head.
        mentions: optional (B, 3) long category/colour/size the phrase names for its target,
            +1, 0 = not named, -100 = not a phrase (click prompts).
    """
    pos = exists > 0.5
    parts = {'exists': F.binary_cross_entropy_with_logits(out.exists_logit, exists)}
    if pos.any():
        lg, tg = out.mask_logits[pos], mask[pos]
        parts['mask_bce'] = F.binary_cross_entropy_with_logits(lg, tg)
        parts['mask_dice'] = dice_loss(lg, tg).mean()
        attr = []
        for logits, target in ((out.category_logits, category), (out.color_logits, color),
                               (out.size_logits, size)):
            valid = pos & (target >= 0)
            if valid.any():
                attr.append(F.cross_entropy(logits[valid], target[valid]))
        parts['attributes'] = torch.stack(attr).mean() if attr else out.exists_logit.sum() * 0
    else:
        zero = out.mask_logits.sum() * 0
        parts.update(mask_bce=zero, mask_dice=zero, attributes=zero)
    if instances is not None and target is not None and out.corr is not None:
        parts['selection'] = selection_loss(out.corr, instances, target)
    if dense_labels is not None and out.dense_category is not None:
        heads = [out.dense_category, out.dense_color]
        if out.dense_size is not None and dense_labels.shape[1] > 2:
            heads.append(out.dense_size)
        parts['dense_attributes'] = torch.stack([
            dense_attribute_loss(logits, dense_labels[:, j]) for j, logits in enumerate(heads)
        ]).mean()
    if mentions is not None and out.text_attributes is not None:
        terms = [F.cross_entropy(logits, mentions[:, j], ignore_index=-100)
                 for j, logits in enumerate(out.text_attributes) if (mentions[:, j] >= 0).any()]
        parts['text_attributes'] = (torch.stack(terms).mean() if terms
                                    else out.exists_logit.sum() * 0)
    total = sum(getattr(weights, k) * v for k, v in parts.items())
    return total, {k: float(v.detach()) for k, v in parts.items()}
