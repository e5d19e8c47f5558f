"""RGB-D sensor effects applied to clean renders (randomized generator).

RGB: exposure, white balance (correcting most of the light's colour cast, with a small error),
optical blur, read + shot noise, JPEG compression. The limits keep colour names true: exposure
within 0.8..1.25, white-balance error within +-4 % per channel.

Depth: stereo cameras (RealSense, ZED) get disparity noise, so the depth error grows with
``z**2``, disparity quantisation (1/8 px) and the invalid band at the left image edge of a
left-referenced stereo pair; time-of-flight cameras (Azure Kinect) get noise ``a + b z**2``.
Both get flying pixels (values between foreground and background) and dropouts at depth
edges, and a few random holes. The clean depth stays available for ground truth.
"""
from __future__ import annotations

import io
import math
from typing import Dict, Tuple

import numpy as np
from PIL import Image, ImageFilter

from unipixel_ros.perception.color_naming import linear_to_srgb, srgb_to_linear

#: Disparity quantisation step, pixels (RealSense D400 subpixel resolution).
DISPARITY_STEP = 1.0 / 8.0


def kelvin_to_rgb(kelvin: float) -> np.ndarray:
    """Approximate sRGB (0..1, max channel 1) of a black body at ``kelvin`` (1000..40000 K),
    after Tanner Helland's fit to Mitchell Charity's blackbody table."""
    t = kelvin / 100.0
    r = 255.0 if t <= 66 else 329.698727446 * (t - 60) ** -0.1332047592
    g = (99.4708025861 * math.log(t) - 161.1195681661 if t <= 66
         else 288.1221695283 * (t - 60) ** -0.0755148492)
    b = 255.0 if t >= 66 else (0.0 if t <= 19 else
                               138.5177312231 * math.log(t - 10) - 305.0447927307)
    rgb = np.clip([r, g, b], 0, 255) / 255.0
    return rgb / rgb.max()


def sample_sensor(rng: np.random.Generator, profile: Dict[str, float],
                  kelvin: float) -> dict:
    """Sensor parameters of one scene.

    Args:
        profile: a :data:`unipixel_sim.randomized.CAMERA_PROFILES` entry.
        kelvin: colour temperature of the scene lights (the white balance corrects it).
    Returns:
        JSON-ready dict: ``rgb`` {exposure, wb_gains (3,), noise_dn, shot, blur_px,
        jpeg_quality (0 = none)} and ``depth`` {stereo, baseline_m, sigma_disp_px or
        tof_a_m / tof_b_per_m, edge_dropout, flying_rate, holes, left_band}.
    """
    tint = kelvin_to_rgb(kelvin)
    correction = float(rng.uniform(0.8, 1.0))
    gains = (1.0 / tint) ** correction * rng.uniform(0.96, 1.04, 3)
    gains = gains / gains[1]
    rgb = {'exposure': float(rng.uniform(0.8, 1.25)), 'wb_gains': gains.tolist(),
           'noise_dn': float(rng.uniform(0.5, 4.0)), 'shot': float(rng.uniform(0.0, 0.4)),
           'blur_px': float(rng.uniform(0.3, 1.2)) if rng.random() < 0.5 else 0.0,
           'jpeg_quality': int(rng.integers(55, 96)) if rng.random() < 0.6 else 0}
    depth = {'stereo': bool(profile['stereo']), 'baseline_m': float(profile['baseline']),
             'edge_dropout': float(rng.uniform(0.2, 0.6)),
             'flying_rate': float(rng.uniform(0.1, 0.5)), 'holes': int(rng.integers(0, 5)),
             'seed': int(rng.integers(2 ** 31))}
    if depth['stereo']:
        depth['sigma_disp_px'] = float(rng.uniform(0.05, 0.15))
        depth['left_band'] = True
    else:
        depth['tof_a_m'] = float(rng.uniform(0.0008, 0.002))
        depth['tof_b_per_m'] = float(rng.uniform(0.0005, 0.0015))
        depth['left_band'] = False
    return {'rgb': rgb, 'depth': depth}


def apply_rgb(rgb: np.ndarray, params: dict, rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) uint8 clean render -> (H, W, 3) uint8 camera image (``params['rgb']``)."""
    p = params['rgb']
    linear = srgb_to_linear(rgb) * (p['exposure'] * np.asarray(p['wb_gains']))[None, None, :]
    image = linear_to_srgb(linear) * 255.0
    if p['blur_px'] > 0:
        blurred = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).filter(
            ImageFilter.GaussianBlur(p['blur_px']))
        image = np.asarray(blurred, dtype=np.float64)
    sigma = np.sqrt(p['noise_dn'] ** 2 + p['shot'] * image)
    image = image + rng.normal(0.0, 1.0, image.shape) * sigma
    out = np.clip(np.rint(image), 0, 255).astype(np.uint8)
    if p['jpeg_quality']:
        buffer = io.BytesIO()
        Image.fromarray(out).save(buffer, format='JPEG', quality=p['jpeg_quality'])
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            out = np.asarray(decoded.convert('RGB')).copy()
    return out


def _neighbourhood(depth: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(min, max) over each pixel's 3x3 neighbourhood of valid (> 0) depth."""
    h, w = depth.shape
    big = np.where(depth > 0, depth, np.inf)
    small = np.where(depth > 0, depth, -np.inf)
    pad_lo = np.pad(big, 1, constant_values=np.inf)
    pad_hi = np.pad(small, 1, constant_values=-np.inf)
    lo = np.min([pad_lo[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)], axis=0)
    hi = np.max([pad_hi[dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)], axis=0)
    return lo, hi


def depth_edges(depth: np.ndarray) -> np.ndarray:
    """(H, W) bool: pixels next to a depth discontinuity (> 1 cm + 2 % of z) or to a pixel
    without depth; the only pixels where flying pixels and edge dropouts occur."""
    lo, hi = _neighbourhood(depth)
    valid = depth > 0
    jump = np.where(valid, (hi - lo) > 0.01 + 0.02 * depth, False)
    has_hole = np.isinf(lo) | np.isinf(hi)
    lo_all = np.pad(depth, 1, constant_values=0.0)
    h, w = depth.shape
    touches_invalid = np.min([lo_all[dy:dy + h, dx:dx + w] for dy in range(3)
                              for dx in range(3)], axis=0) <= 0
    return valid & (jump | has_hole | touches_invalid)


def depth_sigma(z: np.ndarray, params: dict, fx: float) -> np.ndarray:
    """Standard deviation (metres) of the depth noise at depth ``z`` (metres)."""
    p = params['depth']
    z = np.asarray(z, dtype=np.float64)
    if p['stereo']:
        return z ** 2 * p['sigma_disp_px'] / (fx * p['baseline_m'])
    return p['tof_a_m'] + p['tof_b_per_m'] * z ** 2


def depth_quantum(z: np.ndarray, params: dict, fx: float) -> np.ndarray:
    """Depth step (metres) of one disparity quantum at ``z`` (0 for time of flight)."""
    p = params['depth']
    if not p['stereo']:
        return np.zeros_like(np.asarray(z, dtype=np.float64))
    return np.asarray(z, dtype=np.float64) ** 2 * DISPARITY_STEP / (fx * p['baseline_m'])


def apply_depth(depth: np.ndarray, params: dict, fx: float) -> np.ndarray:
    """(H, W) float32 clean depth (metres, 0 = none) -> (H, W) float32 sensor depth.

    Deterministic given ``params['depth']['seed']``. Away from :func:`depth_edges` and holes,
    the result differs from the clean depth by noise of :func:`depth_sigma` plus at most half
    a :func:`depth_quantum`.
    """
    p = params['depth']
    rng = np.random.default_rng(p['seed'])
    clean = np.asarray(depth, dtype=np.float64)
    valid = clean > 0
    h, w = clean.shape
    z = np.where(valid, clean, 1.0)
    if p['stereo']:
        fb = fx * p['baseline_m']
        disparity = fb / z + rng.normal(0.0, p['sigma_disp_px'], z.shape)
        disparity = np.maximum(np.rint(disparity / DISPARITY_STEP) * DISPARITY_STEP,
                               DISPARITY_STEP)
        noisy = fb / disparity
    else:
        noisy = z + rng.normal(0.0, 1.0, z.shape) * depth_sigma(z, params, fx)
    noisy = np.where(valid, noisy, 0.0)
    # Edges: some pixels fly between the two surfaces, some drop out.
    edges = depth_edges(clean)
    lo, hi = _neighbourhood(clean)
    roll = rng.random(clean.shape)
    flying = edges & (roll < p['flying_rate']) & np.isfinite(lo) & np.isfinite(hi)
    t = rng.uniform(0.2, 0.8, clean.shape)
    noisy = np.where(flying, lo + t * (hi - lo), noisy)
    dropped = edges & ~flying & (roll < p['flying_rate'] + p['edge_dropout'])
    noisy[dropped] = 0.0
    # Random holes (specular or dark surfaces, no texture for the stereo matcher).
    yy, xx = np.mgrid[0:h, 0:w]
    for _ in range(p['holes']):
        cy, cx = rng.uniform(0, h), rng.uniform(0, w)
        ry, rx = rng.uniform(3, 20, 2)
        noisy[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1.0] = 0.0
    if p['left_band'] and valid.any():
        # The left camera sees a strip the right camera cannot: width = f B / Z at the scene.
        band = int(math.ceil(fx * p['baseline_m'] / float(np.median(clean[valid]))))
        noisy[:, :min(band, w // 4)] = 0.0
    return noisy.astype(np.float32)
