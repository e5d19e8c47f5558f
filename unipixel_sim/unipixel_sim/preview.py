"""Contact sheet of a generated dataset: RGB + one expression's target mask + its text."""
from __future__ import annotations

import os
import textwrap
from pathlib import Path
from typing import Optional, Union

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from unipixel_ros.dataset import load_index, load_scene

_MASK_RGB = np.array([0, 255, 120], dtype=np.float32)
_ALPHA = 0.45


def _boundary(mask: np.ndarray, width: int = 2) -> np.ndarray:
    """(H, W) bool: pixels of ``mask`` within ``width`` pixels of its outside."""
    inner = mask.copy()
    for _ in range(width):
        shrunk = inner.copy()
        shrunk[1:, :] &= inner[:-1, :]
        shrunk[:-1, :] &= inner[1:, :]
        shrunk[:, 1:] &= inner[:, :-1]
        shrunk[:, :-1] &= inner[:, 1:]
        inner = shrunk
    return mask & ~inner


def render_tile(rgb: np.ndarray, mask: np.ndarray, caption: str,
                tile_width: int = 400) -> Image.Image:
    """RGB (H, W, 3) uint8 with ``mask`` (H, W) bool tinted and outlined, caption on top."""
    image = rgb.astype(np.float32)
    image[mask] = (1.0 - _ALPHA) * image[mask] + _ALPHA * _MASK_RGB
    image[_boundary(mask)] = (255, 255, 0)
    tile = Image.fromarray(image.astype(np.uint8))
    scale = tile_width / tile.width
    tile = tile.resize((tile_width, int(round(tile.height * scale))), Image.BILINEAR)
    draw = ImageDraw.Draw(tile)
    font = ImageFont.load_default(size=14)
    lines = textwrap.wrap(caption, width=48)
    box_h = 18 * len(lines) + 6
    draw.rectangle([0, 0, tile.width, box_h], fill=(0, 0, 0))
    for k, line in enumerate(lines):
        draw.text((5, 3 + 18 * k), line, fill=(255, 255, 255), font=font)
    return tile


def make_preview(data: Union[str, os.PathLike], out: Union[str, os.PathLike], rows: int = 4,
                 cols: int = 4, split: Optional[str] = None, tile_width: int = 400) -> Path:
    """Write a ``rows`` x ``cols`` contact sheet of the first scenes of ``data`` to ``out``.

    Tile k shows expression ``k mod len(expressions)`` of its scene, so the sheet mixes types;
    absent expressions show no mask and say so.
    """
    root = Path(data)
    scenes = [s for s in load_index(root)['scenes'] if split is None or s['split'] == split]
    scenes = [s for s in scenes if s['expressions'] > 0][:rows * cols]
    if not scenes:
        raise ValueError(f'{root}: no scenes with expressions to preview')
    tiles = []
    for k, entry in enumerate(scenes):
        record = load_scene(root / entry['split'] / entry['id'])
        e_index = k % len(record.expressions)
        expr = record.expressions[e_index]
        mask = record.target_mask(e_index)
        kind = expr['type'] if expr['type'] == expr['inner_type'] else \
            f"{expr['type']}/{expr['inner_type']}"
        target = 'ABSENT: no such object, no mask' if expr['target'] is None else \
            f"target obj_{expr['target']}"
        tiles.append(render_tile(record.rgb, mask,
                                 f'"{expr["text"]}" [{kind}] {target} ({record.scene_id})',
                                 tile_width))
    tile_w, tile_h = tiles[0].size
    sheet = Image.new('RGB', (cols * tile_w, rows * tile_h), (30, 30, 30))
    for k, tile in enumerate(tiles):
        sheet.paste(tile, ((k % cols) * tile_w, (k // cols) * tile_h))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out
