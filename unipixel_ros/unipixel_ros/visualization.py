"""Overlay rendering for RViz and reports (numpy + Pillow, no ROS)."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

MASK_COLOR = np.array([0, 220, 90], np.float32)


def draw_overlay(rgb: np.ndarray, mask: np.ndarray | None, box: tuple | None = None,
                 label: str = '', alpha: float = 0.45) -> np.ndarray:
    """RGB (H, W, 3) uint8 with the mask tinted, its outline drawn, its box and a label.

    Only the mask's bounding box is blended (this runs for every published frame), so the
    cost follows the object's size, not the image's.
    """
    out = np.array(rgb, dtype=np.uint8, copy=True)
    if mask is not None:
        ys, xs = np.nonzero(mask)
        if len(ys):
            y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
            m = np.pad(mask[y0:y1, x0:x1].astype(bool), 1)
            inner = m[1:-1, 1:-1]
            edge = inner & ~(m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:])
            crop = out[y0:y1, x0:x1]
            tinted = (1 - alpha) * crop[inner].astype(np.float32) + alpha * MASK_COLOR
            crop[inner] = tinted.clip(0, 255).astype(np.uint8)
            crop[edge] = MASK_COLOR.astype(np.uint8)
    if box is None and not label:
        return out
    image = Image.fromarray(out)
    draw = ImageDraw.Draw(image)
    if box is not None:
        draw.rectangle(box, outline=(255, 230, 0), width=2)
    if label:
        x, y = (box[0], max(0, box[1] - 14)) if box is not None else (4, 4)
        w = draw.textlength(label)
        x = max(0, min(x, out.shape[1] - w - 7))   # keep the label inside the image
        draw.rectangle((x, y, x + w + 6, y + 13), fill=(0, 0, 0))
        draw.text((x + 3, y + 1), label, fill=(255, 255, 255))
    return np.asarray(image)
