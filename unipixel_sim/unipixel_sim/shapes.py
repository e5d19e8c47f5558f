"""Parametric object shapes for the randomized generator, built from MuJoCo primitives.

Each category has shape variants (a cup with or without a handle, tapered, a mug; bowls of
different depth and flare; bottles with different necks and shoulders; ...) and one continuous
size parameter ``scale`` in [0, 1]. :func:`sample_shape` draws the parameters;
:func:`shape_geoms` turns them into geoms in the object's body frame (base centre at the origin,
z up), the same convention as :mod:`unipixel_sim.scene`.

Distractors (category :data:`DISTRACTOR`) are objects outside the vocabulary, referred to only
with generic nouns ("object", "thing", "item").
"""
from __future__ import annotations

import math
from typing import Dict, List, Tuple

import mujoco
import numpy as np

#: Category name stored for distractors (outside ``unipixel_ros.dataset.vocab.CATEGORIES``).
DISTRACTOR = 'object'

#: Shape variants per category (vocabulary categories plus distractors).
SHAPE_VARIANTS: Dict[str, Tuple[str, ...]] = {
    'cup': ('plain', 'handle', 'tapered', 'mug', 'tapered_handle'),
    'bowl': ('shallow', 'deep', 'steep'),
    'box': ('flat', 'upright', 'cubic', 'lidded'),
    'ball': ('sphere', 'ellipsoid'),
    'bottle': ('long_neck', 'short_neck', 'shoulder', 'square'),
    'can': ('standard', 'squat', 'tall_slim'),
    'block': ('cube', 'bar', 'rounded'),
    DISTRACTOR: ('torus', 'capsule', 'plate', 'mallet', 'dumbbell'),
}

_BOX, _CYL, _SPH, _CAP, _ELL = (mujoco.mjtGeom.mjGEOM_BOX, mujoco.mjtGeom.mjGEOM_CYLINDER,
                                mujoco.mjtGeom.mjGEOM_SPHERE, mujoco.mjtGeom.mjGEOM_CAPSULE,
                                mujoco.mjtGeom.mjGEOM_ELLIPSOID)
_WALL = 0.004
_SEGMENTS = 16


def _lerp(lo: float, hi: float, t: float) -> float:
    return lo + (hi - lo) * t


def sample_shape(category: str, variant: str, scale: float,
                 rng: np.random.Generator) -> Dict[str, float]:
    """Shape parameters (metres, radians) of one object.

    Args:
        category, variant: see :data:`SHAPE_VARIANTS`.
        scale: 0..1, the size parameter (0 = smallest of the category's range).
        rng: jitter of the secondary proportions.
    Returns:
        Parameters read by :func:`shape_geoms` and :func:`shape_extents`.
    """
    u = float(scale)
    j = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
    if category == 'cup':
        radius = _lerp(0.026, 0.034, u)
        height = _lerp(0.070, 0.115, u)
        flare = math.radians(j(6.0, 10.0)) if variant.startswith('tapered') else 0.0
        if variant == 'mug':
            height = _lerp(0.070, 0.095, u)
        return {'radius': radius, 'height': height, 'flare': flare,
                'wall': 0.006 if variant == 'mug' else _WALL,
                'handle': float(variant in ('handle', 'mug', 'tapered_handle')),
                'handle_reach': 0.030 if variant == 'mug' else 0.025}
    if category == 'bowl':
        radius = _lerp(0.050, 0.090, u)
        if variant == 'shallow':
            height, flare = radius * j(0.45, 0.6), math.radians(j(35.0, 45.0))
        elif variant == 'deep':
            height, flare = radius * j(0.7, 0.85), math.radians(j(18.0, 25.0))
        else:  # steep: nearly vertical walls
            height, flare = radius * j(0.6, 0.75), math.radians(j(4.0, 8.0))
        return {'radius': radius, 'height': height, 'flare': flare, 'wall': _WALL}
    if category == 'bottle':
        body_r = _lerp(0.020, 0.033, u)
        body_h = _lerp(0.090, 0.150, u)
        if variant == 'long_neck':
            neck_r, neck_h, shoulder = j(0.008, 0.011), j(0.035, 0.045), j(0.008, 0.012)
        elif variant == 'short_neck':
            neck_r, neck_h, shoulder = body_r * j(0.55, 0.7), j(0.012, 0.02), 0.0
        else:  # shoulder (rounded) and square (box body)
            neck_r, neck_h, shoulder = j(0.009, 0.012), j(0.02, 0.03), body_r * j(0.5, 0.8)
        return {'radius': body_r, 'body_height': body_h, 'neck_radius': neck_r,
                'neck_height': neck_h, 'shoulder': shoulder, 'cap_height': j(0.006, 0.012)}
    if category == 'can':
        if variant == 'tall_slim':
            radius = _lerp(0.020, 0.026, u)
            height = 2 * radius * j(2.2, 2.7)
        else:
            radius = _lerp(0.024, 0.034, u)
            aspect = j(1.2, 1.8) if variant == 'standard' else j(0.6, 0.85)
            height = 2 * radius * aspect
        return {'radius': radius, 'height': height}
    if category == 'box':
        narrow = _lerp(0.035, 0.062, u)
        if variant == 'flat':
            return {'sx': narrow * j(1.6, 2.3), 'sy': narrow, 'sz': j(0.025, 0.045), 'lid': 0.0}
        if variant == 'cubic':
            return {'sx': narrow * j(1.0, 1.15), 'sy': narrow, 'sz': narrow * j(0.9, 1.1),
                    'lid': 0.0}
        return {'sx': narrow * j(1.3, 2.0), 'sy': narrow, 'sz': _lerp(0.07, 0.13, u),
                'lid': float(variant == 'lidded')}
    if category == 'block':
        side = _lerp(0.025, 0.055, u)
        if variant == 'bar':
            return {'sx': min(0.10, side * j(2.0, 2.5)), 'sy': side * 0.8, 'sz': side * 0.8,
                    'round': 0.0}
        return {'sx': side, 'sy': side, 'sz': side,
                'round': side * j(0.15, 0.25) if variant == 'rounded' else 0.0}
    if category == 'ball':
        radius = _lerp(0.020, 0.034, u)
        return {'radius': radius, 'squash': j(0.7, 0.8) if variant == 'ellipsoid' else 1.0}
    if category == DISTRACTOR:
        if variant == 'torus':
            return {'major': _lerp(0.028, 0.045, u), 'minor': j(0.006, 0.010)}
        if variant == 'capsule':
            return {'radius': _lerp(0.012, 0.020, u), 'half_length': j(0.03, 0.05)}
        if variant == 'plate':
            return {'radius': _lerp(0.05, 0.08, u), 'thickness': j(0.008, 0.014)}
        if variant == 'mallet':
            return {'radius': j(0.007, 0.010), 'half_length': _lerp(0.05, 0.07, u),
                    'head_radius': j(0.016, 0.022), 'head_half': j(0.03, 0.04)}
        return {'radius': _lerp(0.018, 0.026, u), 'bar': j(0.03, 0.045)}  # dumbbell
    raise ValueError(f'unknown category {category!r}')


def _quat_yaw_tilt(yaw: float, tilt: float) -> List[float]:
    quat = np.zeros(4)
    q_yaw = np.array([math.cos(yaw / 2), 0, 0, math.sin(yaw / 2)])
    q_tilt = np.array([math.cos(tilt / 2), 0, math.sin(tilt / 2), 0])
    mujoco.mju_mulQuat(quat, q_yaw, q_tilt)
    return quat.tolist()


def _vessel(radius: float, height: float, flare: float, wall: float) -> List[dict]:
    """A bottom disc and a ring of wall boxes tilted outwards by ``flare`` (a cup or bowl)."""
    bottom = radius - height * math.tan(flare)
    geoms = [{'type': _CYL, 'size': [bottom, wall / 2, 0], 'pos': [0, 0, wall / 2]}]
    wall_len = height / math.cos(flare)
    mid = 0.5 * (radius + bottom) - wall / 2
    half_width = math.pi * (mid + wall) / _SEGMENTS * 1.08
    for k in range(_SEGMENTS):
        angle = 2.0 * math.pi * k / _SEGMENTS
        geoms.append({'type': _BOX, 'size': [wall / 2, half_width, wall_len / 2],
                      'pos': [mid * math.cos(angle), mid * math.sin(angle), height / 2],
                      'quat': _quat_yaw_tilt(angle, flare)})
    return geoms


def shape_geoms(category: str, variant: str, p: Dict[str, float]) -> List[dict]:
    """Primitive geoms in the body frame: dicts with ``type`` (mjtGeom), ``size`` (MuJoCo
    half-sizes, metres), ``pos``, optional ``quat`` and ``accent`` (True for small parts drawn in
    the accent colour, e.g. a bottle cap or a can lid)."""
    if category in ('cup', 'bowl'):
        geoms = _vessel(p['radius'], p['height'], p['flare'], p['wall'])
        if p.get('handle'):
            t, reach, h = 0.006, p['handle_reach'], p['height']
            top, bottom = 0.78 * h, 0.30 * h
            attach = p['radius'] - 0.5 * h * math.tan(p['flare'])
            outer = attach + reach - t / 2
            geoms += [
                {'type': _BOX, 'size': [reach / 2, t / 2, t / 2],
                 'pos': [attach + reach / 2 - p['wall'] / 2, 0, top]},
                {'type': _BOX, 'size': [reach / 2, t / 2, t / 2],
                 'pos': [attach + reach / 2 - p['wall'] / 2, 0, bottom]},
                {'type': _BOX, 'size': [t / 2, t / 2, (top - bottom) / 2 + t / 2],
                 'pos': [outer, 0, (top + bottom) / 2]}]
        return geoms
    if category == 'bottle':
        r, hb = p['radius'], p['body_height']
        if variant == 'square':
            geoms = [{'type': _BOX, 'size': [r, r, hb / 2], 'pos': [0, 0, hb / 2]}]
        else:
            geoms = [{'type': _CYL, 'size': [r, hb / 2, 0], 'pos': [0, 0, hb / 2]}]
        top = hb
        if p['shoulder'] > 0:
            # Half an ellipsoid above the body (its lower half is hidden inside the body).
            geoms.append({'type': _ELL, 'size': [r * 0.999, r * 0.999, p['shoulder']],
                          'pos': [0, 0, hb]})
            top = hb + 0.8 * p['shoulder']
        geoms.append({'type': _CYL, 'size': [p['neck_radius'], p['neck_height'] / 2, 0],
                      'pos': [0, 0, top + p['neck_height'] / 2]})
        cap_z = top + p['neck_height'] + p['cap_height'] / 2
        geoms.append({'type': _CYL, 'size': [p['neck_radius'] + 0.0015, p['cap_height'] / 2, 0],
                      'pos': [0, 0, cap_z], 'accent': True})
        return geoms
    if category == 'can':
        r, h = p['radius'], p['height']
        return [{'type': _CYL, 'size': [r, h / 2 - 0.0015, 0], 'pos': [0, 0, h / 2]},
                {'type': _CYL, 'size': [r * 0.93, 0.0015, 0], 'pos': [0, 0, h - 0.0015],
                 'accent': True},
                {'type': _CYL, 'size': [r * 0.93, 0.0015, 0], 'pos': [0, 0, 0.0015],
                 'accent': True}]
    if category == 'box':
        sx, sy, sz = p['sx'], p['sy'], p['sz']
        geoms = [{'type': _BOX, 'size': [sx / 2, sy / 2, sz / 2], 'pos': [0, 0, sz / 2]}]
        if p.get('lid'):
            geoms.append({'type': _BOX, 'size': [sx / 2 + 0.003, sy / 2 + 0.003, 0.006],
                          'pos': [0, 0, sz - 0.006], 'accent': True})
        return geoms
    if category == 'block':
        sx, sy, sz, rr = p['sx'], p['sy'], p['sz'], p['round']
        if rr <= 0:
            return [{'type': _BOX, 'size': [sx / 2, sy / 2, sz / 2], 'pos': [0, 0, sz / 2]}]
        geoms = [{'type': _BOX, 'size': [sx / 2 - rr, sy / 2, sz / 2], 'pos': [0, 0, sz / 2]},
                 {'type': _BOX, 'size': [sx / 2, sy / 2 - rr, sz / 2], 'pos': [0, 0, sz / 2]}]
        for cx in (-1, 1):
            for cy in (-1, 1):
                geoms.append({'type': _CYL, 'size': [rr, sz / 2, 0],
                              'pos': [cx * (sx / 2 - rr), cy * (sy / 2 - rr), sz / 2]})
        return geoms
    if category == 'ball':
        r, s = p['radius'], p['squash']
        if s >= 1.0:
            return [{'type': _SPH, 'size': [r, 0, 0], 'pos': [0, 0, r]}]
        return [{'type': _ELL, 'size': [r, r, r * s], 'pos': [0, 0, r * s]}]
    if category == DISTRACTOR:
        if variant == 'torus':
            big, small = p['major'], p['minor']
            half = math.pi * big / 12 * 1.05
            geoms = []
            for k in range(12):
                a = 2 * math.pi * k / 12
                # Capsules lie along the ring's tangent (their axis is the local z axis).
                quat = np.zeros(4)
                mujoco.mju_mulQuat(quat, np.array([math.cos(a / 2), 0, 0, math.sin(a / 2)]),
                                   np.array([math.cos(math.pi / 4), math.sin(math.pi / 4), 0, 0]))
                geoms.append({'type': _CAP, 'size': [small, half, 0],
                              'pos': [big * math.cos(a), big * math.sin(a), small],
                              'quat': quat.tolist()})
            return geoms
        along_x = [math.cos(math.pi / 4), 0, math.sin(math.pi / 4), 0]
        if variant == 'capsule':
            return [{'type': _CAP, 'size': [p['radius'], p['half_length'], 0],
                     'pos': [0, 0, p['radius']], 'quat': along_x}]
        if variant == 'plate':
            return [{'type': _CYL, 'size': [p['radius'], p['thickness'] / 2, 0],
                     'pos': [0, 0, p['thickness'] / 2]}]
        if variant == 'mallet':
            hr = p['head_radius']
            return [{'type': _CAP, 'size': [p['radius'], p['half_length'], 0],
                     'pos': [-hr, 0, hr], 'quat': along_x},
                    {'type': _CYL, 'size': [hr, p['head_half'], 0],
                     'pos': [p['half_length'], 0, hr],
                     'quat': [math.cos(math.pi / 4), math.sin(math.pi / 4), 0, 0],
                     'accent': True}]
        r, bar = p['radius'], p['bar']
        return [{'type': _SPH, 'size': [r, 0, 0], 'pos': [-bar, 0, r]},
                {'type': _SPH, 'size': [r, 0, 0], 'pos': [bar, 0, r]},
                {'type': _CAP, 'size': [0.35 * r, bar, 0], 'pos': [0, 0, r], 'quat': along_x,
                 'accent': True}]
    raise ValueError(f'unknown category {category!r}')


def shape_extents(category: str, variant: str, p: Dict[str, float]) -> Tuple[float, float,
                                                                            float]:
    """Full bounding-box size (metres) along the object's x, y, z axes (handles along +x)."""
    if category in ('cup', 'bowl'):
        d = 2 * p['radius']
        reach = p['handle_reach'] if p.get('handle') else 0.0
        return (d + reach, d, p['height'])
    if category == 'bottle':
        top = p['body_height'] + (0.8 * p['shoulder'] if p['shoulder'] > 0 else 0.0)
        return (2 * p['radius'], 2 * p['radius'], top + p['neck_height'] + p['cap_height'])
    if category == 'can':
        return (2 * p['radius'], 2 * p['radius'], p['height'])
    if category in ('box', 'block'):
        lid = 0.006 if p.get('lid') else 0.0
        return (p['sx'] + lid, p['sy'] + lid, p['sz'])
    if category == 'ball':
        return (2 * p['radius'], 2 * p['radius'], 2 * p['radius'] * p['squash'])
    if variant == 'torus':
        d = 2 * (p['major'] + p['minor'])
        return (d, d, 2 * p['minor'])
    if variant == 'capsule':
        return (2 * (p['half_length'] + p['radius']), 2 * p['radius'], 2 * p['radius'])
    if variant == 'plate':
        return (2 * p['radius'], 2 * p['radius'], p['thickness'])
    if variant == 'mallet':
        hr = p['head_radius']
        return (2 * p['half_length'] + 2 * hr, 2 * p['head_half'], 2 * hr)
    return (2 * (p['bar'] + p['radius']), 2 * p['radius'], 2 * p['radius'])


def footprint_radius(category: str, variant: str, p: Dict[str, float]) -> float:
    """Radius (metres) of a circle about the body origin that covers the object from above."""
    sx, sy, _ = shape_extents(category, variant, p)
    if category in ('cup', 'bowl', 'can', 'ball') or (category == 'bottle'
                                                      and variant != 'square'):
        return p['radius'] + (p['handle_reach'] if p.get('handle') else 0.0)
    if category == DISTRACTOR and variant == 'mallet':
        return math.hypot(p['half_length'] + p['head_radius'], p['head_half'])
    return 0.5 * math.hypot(sx, sy)


def shape_volume(category: str, variant: str, p: Dict[str, float]) -> float:
    """Bounding volume (cubic metres) used to compare sizes (cylinder for round objects)."""
    sx, sy, sz = shape_extents(category, variant, p)
    if category in ('cup', 'bowl', 'can', 'ball') or (category == 'bottle'
                                                      and variant != 'square'):
        return math.pi * p['radius'] ** 2 * sz
    return sx * sy * sz
