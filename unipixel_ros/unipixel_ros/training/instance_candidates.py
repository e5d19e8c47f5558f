"""The default model's own instance candidates as referring-resolver proposals.

The object-centric decoder (``model/objects.py``) finds every object of a frame before any
phrase is read: K instance masks with a centre heat score, and the category head reads each
instance's pooled features. Here those instances become the resolver's candidates of a concept
("cup": the instances whose category head says cup), so that
:func:`~unipixel_ros.inference.resolver.resolve_referring` measures colour, 3D position and
size on them, as it does on SAM 3's candidates. ``unipixel-ros eval-dataset --candidates model
--backend unipixel`` measures the pair on a dataset.

Torch and a checkpoint (this is an evaluation path: the exported graphs return the selected
mask only).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from unipixel_ros.dataset.vocab import CATEGORIES
from unipixel_ros.inference.resolver import Proposals
from unipixel_ros.language.concepts import Concept
from unipixel_ros.model.checkpoint import load_checkpoint

from .data import resize_rgb


@dataclass
class FrameInstances:
    """One frame's instances (N after filtering, H x W the frame).

    Attributes:
        masks: (N, H, W) bool instance masks at frame resolution.
        heat: (N,) float32 sigmoid of the centre heat, in [0, 1].
        category_probs: (N, C) float32 softmax of the category head over :data:`CATEGORIES`.
    """

    masks: np.ndarray
    heat: np.ndarray
    category_probs: np.ndarray


class UnipixelInstanceProposer:
    """Resolver proposals from a unipixel checkpoint's instance candidates.

    Args:
        checkpoint: a unipixel ``.safetensors`` checkpoint.
        min_heat: instances whose centre heat (sigmoid) is below this are dropped.
        nms_iou: an instance overlapping a stronger one by more than this IoU is a duplicate.
        min_pixels: instances with fewer frame pixels are dropped.
        threads: torch CPU threads (0 = torch's default).
    """

    def __init__(self, checkpoint: str | Path, min_heat: float = 0.3, nms_iou: float = 0.5,
                 min_pixels: int = 30, threads: int = 0) -> None:
        if threads:
            torch.set_num_threads(threads)
        self.net, meta = load_checkpoint(checkpoint)
        self.net.eval()
        self.categories = list(meta.get('vocab', {}).get('categories') or CATEGORIES)
        self.min_heat = float(min_heat)
        self.nms_iou, self.min_pixels = float(nms_iou), int(min_pixels)

    @torch.no_grad()
    def encode_image(self, rgb: np.ndarray) -> FrameInstances:
        """Every instance of one frame. ``rgb``: (H, W, 3) uint8."""
        cfg = self.net.config
        x = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None].float() / 255.0
        x = resize_rgb(x, cfg.input_height, cfg.input_width)
        maps = self.net.image_maps(self.net.normalize_image(x))
        obj = self.net.objects.objects(maps, self.net.objects.peaks(maps['heat']))
        h, w = rgb.shape[:2]
        masks = (F.interpolate(obj['masks'], size=(h, w), mode='bilinear',
                               align_corners=False)[0] > 0).numpy()
        heat = torch.sigmoid(obj['heat'][0]).numpy()
        probs = torch.softmax(self.net.category_head(obj['pooled'][0]), -1).numpy()
        keep: list[int] = []
        for k in np.argsort(-heat):
            if heat[k] < self.min_heat or masks[k].sum() < self.min_pixels:
                continue
            if any(np.logical_and(masks[k], masks[j]).sum()
                   > self.nms_iou * np.logical_or(masks[k], masks[j]).sum() for j in keep):
                continue
            keep.append(int(k))
        return FrameInstances(masks[keep], heat[keep].astype(np.float32),
                              probs[keep].astype(np.float32))

    def propose(self, frame: FrameInstances, concept: Concept) -> Proposals:
        """The candidates of one concept: every kept instance, scored by the category head's
        probability of the concept's category (1 for a generic noun such as "object"; a
        category the model does not know has no candidates). The resolver's ``min_score`` and
        ``min_presence`` then decide, as for SAM 3's scores."""
        n = len(frame.heat)
        if concept.category is None:
            score = np.ones(n, np.float32)
        elif concept.category in self.categories:
            score = frame.category_probs[:, self.categories.index(concept.category)]
        else:
            score = np.zeros(n, np.float32)
        sel = np.nonzero(score > 0)[0]
        return Proposals(frame.masks[sel], score[sel].astype(np.float32),
                         float(score[sel].max()) if len(sel) else 0.0)
