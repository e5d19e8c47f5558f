"""Overlay rendering for RViz and reports (numpy + Pillow, no ROS)."""
from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

MASK_COLOR = np.array([0, 220, 90], np.float32)
BOX_COLOR = np.array([255, 230, 0], np.uint8)


def draw_overlay(rgb: np.ndarray, mask: np.ndarray | None, box: tuple | None = None,
                 label: str = '', alpha: float = 0.45) -> np.ndarray:
    """RGB (H, W, 3) uint8 with the mask tinted, its outline drawn, its box and a label.

    This runs for every published frame, so the work follows the object's size, not the
    image's: the tint is blended inside the mask's box only, the box is drawn with array
    slices and only the label's own small patch goes through Pillow.

    Args:
        box: (x0, y0, x1, y1) inclusive pixel box, or None.
    """
    out = np.array(rgb, dtype=np.uint8, copy=True)
    h, w = out.shape[:2]
    if mask is not None:
        rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
        if len(rows):
            y0, y1, x0, x1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
            m = np.pad(mask[y0:y1, x0:x1].astype(bool), 1)
            inner = m[1:-1, 1:-1]
            edge = inner & ~(m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:])
            crop = out[y0:y1, x0:x1]
            tinted = (1 - alpha) * crop[inner].astype(np.float32) + alpha * MASK_COLOR
            crop[inner] = tinted.clip(0, 255).astype(np.uint8)
            crop[edge] = MASK_COLOR.astype(np.uint8)
    if box is not None:
        x0, y0 = max(0, int(box[0])), max(0, int(box[1]))
        x1, y1 = min(w - 1, int(box[2])), min(h - 1, int(box[3]))
        if x1 >= x0 and y1 >= y0:
            out[y0:y0 + 2, x0:x1 + 1] = BOX_COLOR
            out[max(y0, y1 - 1):y1 + 1, x0:x1 + 1] = BOX_COLOR
            out[y0:y1 + 1, x0:x0 + 2] = BOX_COLOR
            out[y0:y1 + 1, max(x0, x1 - 1):x1 + 1] = BOX_COLOR
    if label:
        x, y = (int(box[0]), max(0, int(box[1]) - 14)) if box is not None else (4, 4)
        probe = ImageDraw.Draw(Image.new('RGB', (1, 1)))
        pw = min(w, int(probe.textlength(label)) + 6)
        patch = Image.new('RGB', (pw, 13), (0, 0, 0))
        ImageDraw.Draw(patch).text((3, 1), label, fill=(255, 255, 255))
        x = max(0, min(x, w - pw))   # keep the label inside the image
        y = max(0, min(y, h - 13))
        region = np.asarray(patch)[:h - y, :w - x]
        out[y:y + region.shape[0], x:x + region.shape[1]] = region
    return out
