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


def _depth_tile(depth: np.ndarray, caption: str, tile_width: int, far: float) -> Image.Image:
    """Depth (H, W) metres as a grey ramp (near bright), no reading black, caption on top."""
    valid = depth > 0
    grey = np.where(valid, 255 * (1.0 - np.clip(depth / far, 0.0, 1.0)) * 0.85 + 30, 0)
    rgb = np.repeat(grey[..., None], 3, axis=2).astype(np.uint8)
    rgb[~valid] = (120, 0, 0)
    return render_tile(rgb, np.zeros(depth.shape, bool), caption, tile_width)


def _label_objects(tile: Image.Image, frame, labels, scale: float) -> None:
    """Write ``labels[i]`` at the projected centre of object i of ``frame`` on ``tile``."""
    draw = ImageDraw.Draw(tile)
    font = ImageFont.load_default(size=11)
    k = frame.intrinsics
    for obj, label in zip(frame.objects, labels):
        x, y, z = obj.center_camera
        if z <= 0 or obj.visible_pixels == 0:
            continue
        u, v = (k.fx * x / z + k.cx) * scale, (k.fy * y / z + k.cy) * scale
        w = draw.textlength(label, font=font)
        draw.rectangle([u - w / 2 - 2, v - 7, u + w / 2 + 2, v + 7], fill=(0, 0, 0))
        draw.text((u - w / 2, v - 6), label, fill=(255, 255, 120), font=font)


def _gallery(categories, seed: int, tile_width: int, caption: str) -> Image.Image:
    """One object of every shape variant of ``categories`` on a grid, labelled, seen from
    above-front with a fixed camera and light (randomized generator, no robot)."""
    import math as _math

    import mujoco

    from .randomized import (CAMERA_PROFILES, OBJECT_PALETTE, RandomObjectSpec,
                             build_random_model, generate_random_scene)
    from .render import SceneRenderer
    from .scene import CameraSpec, look_at_quat, set_observe_pose, settle
    from .shapes import DISTRACTOR, SHAPE_VARIANTS, sample_shape

    scene = generate_random_scene(seed, 'train')
    rng = np.random.default_rng(seed)
    variants = [(c, v) for c in categories for v in SHAPE_VARIANTS[c]]
    cols = int(_math.ceil(len(variants) / 3))
    colors = [c for c in OBJECT_PALETTE if c not in ('white', 'black')]
    objects = []
    for n, (category, variant) in enumerate(variants):
        color = colors[n % len(colors)]
        params = sample_shape(category, variant, 0.7, rng)
        from unipixel_ros.perception.color_naming import name_color
        from .randomized import _sample_color
        rgb = _sample_color(rng, OBJECT_PALETTE[color][0])
        objects.append(RandomObjectSpec(
            category=category, color=name_color(rgb).basic, size='large',
            rgba=list(rgb) + [1.0], dims={}, x=0.30 + 0.40 * (n // cols) / 2,
            y=-0.33 + 0.66 * (n % cols) / max(cols - 1, 1), yaw=0.6,
            shape_variant=variant, scale=0.7, params=params, color_extended=color,
            distractor=category == DISTRACTOR,
            pattern=('checker', 'speckle', 'gradient', 'solid')[n % 4] if category == DISTRACTOR
            else 'solid', rgba2=[0.95, 0.95, 0.95, 1.0], color2='white'))
    scene.objects = objects
    target = np.array([0.50, 0.0, 0.03])
    pos = target + np.array([-0.55, 0.0, 0.55])
    scene.camera = CameraSpec(pos=pos.tolist(), quat=look_at_quat(pos, target).tolist(),
                              fovy=CAMERA_PROFILES['realsense_d455']['vfov'])
    scene.lights = [{'type': 'directional', 'pos': [0.5, 0, 2], 'dir': [0.3, 0.2, -1],
                     'diffuse': [0.7, 0.7, 0.7], 'castshadow': True}]
    scene.surfaces['table']['kind'] = 'plain'
    model = build_random_model(scene, with_robot=False)
    data = mujoco.MjData(model)
    set_observe_pose(model, data)
    settle(model, data, steps=50)
    with SceneRenderer(model, 640, 480, scene=scene) as renderer:
        frame = renderer.render(data, 'head')
    tile = render_tile(frame.rgb, np.zeros(frame.instances.shape, bool), caption, tile_width)
    _label_objects(tile, frame, [f'{o.category[:6]}/{o.shape_variant}' for o in objects],
                   tile_width / 640)
    return tile


def _palette_tile(tile_width: int) -> Image.Image:
    """Swatches of the object colours: extended name -> basic term (held-out names marked)."""
    from matplotlib.colors import XKCD_COLORS, to_rgb

    from unipixel_ros.perception.color_naming import name_color

    from .randomized import HELD_OUT, OBJECT_PALETTE
    names = [(basic, ext) for basic, exts in OBJECT_PALETTE.items() for ext in exts]
    height = int(tile_width * 0.75)
    tile = Image.new('RGB', (tile_width, height), (40, 40, 40))
    draw = ImageDraw.Draw(tile)
    font = ImageFont.load_default(size=11)
    cols = 3
    rows = int(np.ceil(len(names) / cols))
    cell_w, cell_h = tile_width // cols, (height - 24) // rows
    draw.text((5, 4), 'object colours: survey colour -> name_color (* held out)',
              fill=(255, 255, 255), font=font)
    for n, (basic, ext) in enumerate(names):
        rgb = np.array(to_rgb(XKCD_COLORS['xkcd:' + ext]))
        got = name_color(rgb)
        x0, y0 = (n % cols) * cell_w, 24 + (n // cols) * cell_h
        draw.rectangle([x0 + 3, y0 + 2, x0 + 25, y0 + cell_h - 3],
                       fill=tuple(int(v * 255) for v in rgb))
        star = '*' if ext in HELD_OUT['color_extended'] else ''
        draw.text((x0 + 29, y0 + 2), f'{ext}{star} -> {got.basic}', fill=(255, 255, 255),
                  font=font)
    return tile


def make_randomized_preview(out: Union[str, os.PathLike], tile_width: int = 400,
                            seed: int = 0, progress: bool = True) -> Path:
    """Contact sheet of the randomized generator's factors, 4 x 4 tiles:

    row 1: training scenes (texture, lighting, camera, target mask of one expression);
    row 2: shifted scenes (held-out factors named); row 3: clean depth, sensor depth, their
    difference and the sensor RGB of one scene; row 4: the shape variants of every category,
    distractors with patterns, and the object colour palette with its names.
    """
    from tqdm import tqdm

    from .generate import render_scene
    tiles = []
    bar = tqdm(total=14, desc='preview', unit='tile', disable=not progress)
    for split in ('train', 'shifted'):
        for k in range(4):
            scene = render_scene(seed + k, generator='randomized', split=split)
            f = scene.factors
            exprs = [e for e in scene.expressions if e['target'] is not None] or \
                scene.expressions
            expr = exprs[0]
            mask = scene.frame.instances == (expr['target'] + 1 if expr['target'] is not None
                                             else -1)
            if split == 'train':
                info = (f"table {f['table_texture']}, light {f['lighting']} "
                        f"({f['n_lights']}, {f['color_temperature_k']:.0f} K), "
                        f"{f['camera_profile']} el {f['elevation_deg']:.0f} "
                        f"d {f['distance_m']:.2f}, {f['clutter']}")
            else:
                info = 'held out: ' + ', '.join(f['held_out'])
            tiles.append(render_tile(scene.frame.rgb, mask, f'"{expr["text"]}" | {info}',
                                     tile_width))
            bar.update()
    scene = render_scene(seed + 1, generator='randomized')
    d = scene.spec.sensor['depth']
    kind = 'stereo' if d['stereo'] else 'time of flight'
    far = float(np.percentile(scene.depth_clean[scene.depth_clean > 0], 99))
    diff = np.abs(scene.frame.depth - scene.depth_clean)
    diff_rgb = np.zeros(diff.shape + (3,), np.uint8)
    diff_rgb[..., 0] = np.clip(diff / 0.01 * 255, 0, 255).astype(np.uint8)
    diff_rgb[(scene.frame.depth == 0) & (scene.depth_clean > 0)] = (255, 255, 255)
    rgb_p = scene.spec.sensor['rgb']
    tiles += [_depth_tile(scene.depth_clean, 'clean depth (ground truth)', tile_width, far),
              _depth_tile(scene.frame.depth, f'sensor depth ({kind}, '
                          f'{scene.factors["camera_profile"]}): holes dark red', tile_width,
                          far),
              render_tile(diff_rgb, np.zeros(diff.shape, bool),
                          '|sensor - clean| (red, 1 cm = full), lost readings white',
                          tile_width),
              render_tile(scene.frame.rgb, np.zeros(diff.shape, bool),
                          f"sensor RGB: exposure {rgb_p['exposure']:.2f}, noise "
                          f"{rgb_p['noise_dn']:.1f} DN, blur {rgb_p['blur_px']:.1f} px, "
                          f"JPEG {rgb_p['jpeg_quality'] or 'off'}", tile_width)]
    bar.update(2)
    tiles.append(_gallery(('cup', 'bowl', 'bottle', 'can'), seed + 11, tile_width,
                          'shape variants: cup, bowl, bottle, can'))
    bar.update()
    tiles.append(_gallery(('box', 'block', 'ball'), seed + 12, tile_width,
                          'shape variants: box, block, ball'))
    bar.update()
    tiles.append(_gallery(('object',), seed + 13, tile_width,
                          'distractors ("object/thing/item"), patterns'))
    tiles.append(_palette_tile(tile_width))
    bar.update()
    bar.close()
    tile_w = tile_width
    tile_h = max(t.height for t in tiles)
    sheet = Image.new('RGB', (4 * tile_w, 4 * tile_h), (30, 30, 30))
    for k, tile in enumerate(tiles):
        sheet.paste(tile, ((k % 4) * tile_w, (k // 4) * tile_h))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out
