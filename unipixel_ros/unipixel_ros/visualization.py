"""Overlay rendering for RViz and reports (numpy + Pillow, no ROS)."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

MASK_COLOR = np.array([0, 220, 90], np.float32)


def draw_overlay(rgb: np.ndarray, mask: np.ndarray | None, box: tuple | None = None,
                 label: str = '', alpha: float = 0.45) -> np.ndarray:
    """RGB (H, W, 3) uint8 with the mask tinted, its box drawn and a label -> (H, W, 3) uint8."""
    out = rgb.astype(np.float32).copy()
    if mask is not None and mask.any():
        m = mask.astype(bool)
        out[m] = (1 - alpha) * out[m] + alpha * MASK_COLOR
        edge = m & ~(np.roll(m, 1, 0) & np.roll(m, -1, 0) & np.roll(m, 1, 1) & np.roll(m, -1, 1))
        out[edge] = MASK_COLOR
    image = Image.fromarray(out.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    if box is not None:
        draw.rectangle(box, outline=(255, 230, 0), width=2)
    if label:
        x, y = (box[0], max(0, box[1] - 14)) if box is not None else (4, 4)
        w = draw.textlength(label)
        draw.rectangle((x, y, x + w + 6, y + 13), fill=(0, 0, 0))
        draw.text((x + 3, y + 1), label, fill=(255, 255, 255))
    return np.asarray(image)
