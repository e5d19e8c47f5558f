"""Domain-randomized tabletop scenes and the held-out ("shifted") factor values.

A randomized scene varies what the default generator (:mod:`unipixel_sim.scene`) keeps fixed:
procedural table / floor / wall textures, lighting (number, kind and direction of lights,
colour temperature, intensity, ambient, shadows), the camera (elevation, distance, yaw, roll and
the vertical field of view of real RGB-D cameras), parametric object shapes with continuous
sizes (:mod:`unipixel_sim.shapes`), colours sampled continuously and named with
:mod:`unipixel_ros.perception.color_naming`, patterned objects, distractors and clutter.
Sensor effects on the rendered images live in :mod:`unipixel_sim.sensor`.

Every factor has training values and held-out values (:data:`HELD_OUT`). ``split='train'``
scenes never use a held-out value; ``split='shifted'`` scenes draw each factor from its held-out
values with probability :data:`SHIFT_PROBABILITY` (at least one scene-level factor always), and
name them in ``factors['held_out']``.

Same conventions as :mod:`unipixel_sim.scene`: z up, metres, table top at z = 0, one body
``obj_<i>`` with free joint ``obj_<i>_joint`` per object, camera ``head``.
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

os.environ.setdefault('MUJOCO_GL', 'egl')

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from unipixel_ros.dataset.vocab import CATEGORIES, COLORS, SIZES  # noqa: E402
from unipixel_ros.perception.color_naming import (lab_to_srgb,  # noqa: E402
                                                  name_color, srgb_to_lab)

from . import shapes  # noqa: E402
from .sensor import kelvin_to_rgb  # noqa: E402
from .scene import (MAX_RENDER_SIZE, WORKSPACE_X, WORKSPACE_Y, CameraSpec, ObjectSpec,  # noqa
                    _attach_robot, look_at_quat)

#: Vertical field of view (degrees) of the colour stream of real RGB-D cameras, and whether the
#: depth is from stereo (noise grows with z^2, invalid band at the left edge) or time of flight.
#: Sources: Intel RealSense D400 datasheet (D435 RGB 69 x 42 deg, D455 RGB 90 x 65 deg),
#: Azure Kinect DK hardware specification (RGB 16:9 90 x 59 deg, 4:3 90 x 74.3 deg),
#: Stereolabs ZED (90 x 60 deg) and ZED 2 / 2i (110 x 70 deg) datasheets.
CAMERA_PROFILES: Dict[str, Dict[str, float]] = {
    'realsense_d435': {'vfov': 42.0, 'stereo': 1.0, 'baseline': 0.050},
    'realsense_d455': {'vfov': 65.0, 'stereo': 1.0, 'baseline': 0.095},
    'azure_kinect_16x9': {'vfov': 59.0, 'stereo': 0.0, 'baseline': 0.0},
    'zed': {'vfov': 60.0, 'stereo': 1.0, 'baseline': 0.120},
    'azure_kinect_4x3': {'vfov': 74.3, 'stereo': 0.0, 'baseline': 0.0},
    'zed2': {'vfov': 70.0, 'stereo': 1.0, 'baseline': 0.120},
}
SURFACE_TEXTURES = ('wood', 'checker', 'tiles', 'noise', 'plain', 'fabric', 'marble', 'dots')
LIGHTING_SETUPS = ('overhead', 'side', 'multi', 'soft', 'grazing')
PATTERNS = ('solid', 'speckle', 'checker', 'gradient')
#: Object colours: extended colour name per vocabulary colour (each is named so by
#: :func:`name_color` with high confidence at its survey colour).
OBJECT_PALETTE: Dict[str, Tuple[str, ...]] = {
    'red': ('red', 'scarlet', 'crimson'),
    'green': ('green', 'forest green', 'emerald', 'dark green', 'light green', 'lime', 'mint',
              'olive'),
    'blue': ('blue', 'sky blue', 'light blue', 'royal blue', 'dark blue', 'navy'),
    'yellow': ('yellow', 'mustard', 'gold'),
    'orange': ('orange',),
    'purple': ('purple', 'violet', 'lilac', 'plum'),
    'white': ('white',),
    'black': ('black',),
    'pink': ('pink', 'hot pink', 'magenta'),
}
#: Colours of distractors (any basic term, also those outside the model's vocabulary).
DISTRACTOR_PALETTE = ('red', 'green', 'blue', 'yellow', 'orange', 'purple', 'pink', 'brown',
                      'grey', 'white', 'black', 'tan')

#: Factor values that training scenes never use and shifted scenes draw from.
HELD_OUT: Dict[str, Tuple] = {
    'texture': ('marble', 'dots'),
    'lighting': ('grazing',),
    'camera_profile': ('azure_kinect_4x3', 'zed2'),
    'shape_variant': ('cup/tapered_handle', 'bowl/steep', 'box/lidded', 'ball/ellipsoid',
                      'bottle/square', 'can/tall_slim', 'block/rounded', 'object/dumbbell'),
    'color_extended': ('crimson', 'olive', 'navy', 'gold', 'plum', 'magenta'),
    'pattern': ('gradient',),
}
#: Continuous camera ranges: (training interval, held-out interval).
CAMERA_RANGES = {'elevation_deg': ((25.0, 65.0), (65.0, 75.0)),
                 'distance_m': ((0.40, 1.20), (1.20, 1.50))}
SCENE_FACTORS = ('texture', 'lighting', 'camera_profile', 'elevation_deg', 'distance_m')
OBJECT_FACTORS = ('shape_variant', 'color_extended', 'pattern')
#: Probability that a shifted scene draws a factor from its held-out values.
SHIFT_PROBABILITY = 0.5
SPLIT_KINDS = ('train', 'shifted')
#: Share of objects that are distractors (outside the vocabulary).
DISTRACTOR_RATE = 0.15
#: Volume ratio that makes an object clearly the small / large one of its category in a scene.
RELATIVE_SIZE_RATIO = 1.5
#: Largest half-height (metres) of the camera's view at its target point.
MAX_HALF_VIEW_M = 0.95
#: Minimum name_color confidence of a sampled object colour.
COLOR_CONFIDENCE = 0.8
_CLUTTER = {'sparse': ((3, 5), (0.03, 0.06)), 'normal': ((4, 8), (0.01, 0.03)),
            'cluttered': ((7, 12), (0.0, 0.004))}


@dataclass
class RandomObjectSpec(ObjectSpec):
    """An :class:`~unipixel_sim.scene.ObjectSpec` with a parametric shape.

    Extra attributes:
        shape_variant: see :data:`unipixel_sim.shapes.SHAPE_VARIANTS`.
        scale: 0..1 size parameter (``size`` is its tertile: small / medium / large).
        params: shape parameters (metres, radians) of :func:`unipixel_sim.shapes.shape_geoms`.
        color_extended: extended colour name (or the basic term).
        pattern: 'solid', 'speckle', 'checker' or 'gradient'.
        rgba2: second pattern colour (checker, gradient), 4 floats 0..1.
        color2: basic term of ``rgba2``.
        accent_rgba: colour of small parts (caps, lids, can ends).
        specular, shininess: material gloss, 0..1.
        distractor: outside the vocabulary (``category`` is 'object').
    """

    shape_variant: str = ''
    scale: float = 0.5
    params: Dict[str, float] = field(default_factory=dict)
    color_extended: str = ''
    pattern: str = 'solid'
    rgba2: List[float] = field(default_factory=lambda: [1.0, 1.0, 1.0, 1.0])
    color2: str = ''
    accent_rgba: List[float] = field(default_factory=lambda: [0.7, 0.7, 0.7, 1.0])
    specular: float = 0.3
    shininess: float = 0.3
    distractor: bool = False

    @property
    def height(self) -> float:
        """Total height (metres)."""
        return self.extents[2]

    @property
    def extents(self) -> Tuple[float, float, float]:
        """Full bounding-box size (metres) along the object's x, y, z axes."""
        return shapes.shape_extents(self.category, self.shape_variant, self.params)

    @property
    def footprint_radius(self) -> float:
        """Radius (metres) of a circle about the base centre that covers the object from above."""
        return shapes.footprint_radius(self.category, self.shape_variant, self.params)

    @property
    def volume(self) -> float:
        """Bounding volume (cubic metres), used to rank sizes."""
        return shapes.shape_volume(self.category, self.shape_variant, self.params)

    @property
    def graspable(self) -> bool:
        """Vocabulary object the Panda (8 cm opening) can close across (< 7 cm)."""
        return (not self.distractor and self.category != 'bowl'
                and min(self.extents[:2]) < 0.07)

    @property
    def color_terms(self) -> List[str]:
        """Every basic colour term that may describe the object (two for two-tone patterns)."""
        terms = [self.color]
        if self.pattern in ('checker', 'gradient') and self.color2 not in terms:
            terms.append(self.color2)
        return terms


@dataclass
class RandomSceneSpec:
    """Everything needed to rebuild a randomized scene; JSON-ready through :meth:`to_dict`.

    Attributes:
        seed, split: the scene seed and 'train' or 'shifted' (which factor values it draws).
        objects: the objects.
        camera: head camera (pose, vertical FOV).
        lights: each ``{'type': 'directional'|'spot', 'pos', 'dir', 'diffuse', 'castshadow'}``.
        ambient, headlight: RGB of the global ambient and the camera headlight.
        surfaces: texture per surface ``{'table'|'floor'|'wall': {'kind', 'rgb1', 'rgb2',
            'seed', 'scale'}}``.
        sensor: the camera model and the RGB / depth effect parameters (:mod:`.sensor`).
        factors: the factor values of the scene, ``held_out`` lists the held-out ones.
    """

    seed: int
    split: str
    objects: List[RandomObjectSpec]
    camera: CameraSpec
    lights: List[dict]
    ambient: List[float]
    headlight: List[float]
    surfaces: Dict[str, dict]
    sensor: dict
    factors: dict
    meta: Dict[str, object] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Plain JSON-ready dict, with ``generator: 'randomized'``."""
        return dict(asdict(self), generator='randomized')

    @classmethod
    def from_dict(cls, data: dict) -> 'RandomSceneSpec':
        """Inverse of :meth:`to_dict`."""
        data = {k: v for k, v in data.items() if k != 'generator'}
        data['objects'] = [RandomObjectSpec(**o) for o in data['objects']]
        data['camera'] = CameraSpec(**data['camera'])
        return cls(**data)


# ----------------------------------------------------------------------------------- sampling

class _Draw:
    """Draws factor values for one scene, held-out or not, and records the held-out ones."""

    def __init__(self, rng: np.random.Generator, split: str) -> None:
        if split not in SPLIT_KINDS:
            raise ValueError(f'split must be one of {SPLIT_KINDS}, got {split!r}')
        self.rng, self.split = rng, split
        self.held_out: List[str] = []
        self.forced: Optional[str] = None

    def shifted(self, factor: str) -> bool:
        if self.split != 'shifted':
            return False
        if self.forced is not None:
            return factor == self.forced
        return bool(self.rng.random() < SHIFT_PROBABILITY)

    def choice(self, factor: str, values: Sequence, held: Sequence) -> object:
        shift = self.shifted(factor)
        pool = [v for v in values if (v in held) == shift] or [v for v in values
                                                               if v not in held]
        value = pool[int(self.rng.integers(len(pool)))]
        if value in held:
            self.held_out.append(factor)
        return value

    def interval(self, factor: str) -> float:
        train, held = CAMERA_RANGES[factor]
        shift = self.shifted(factor)
        if shift:
            self.held_out.append(factor)
        lo, hi = held if shift else train
        return float(self.rng.uniform(lo, hi))


def _sample_lights(rng: np.random.Generator, setup: str) -> Tuple[List[dict], float, float,
                                                                  float]:
    """Lights of one setup: (lights, ambient level, headlight level, colour temperature K).

    Colour temperature stays within 4000-7000 K and the sensor's white balance corrects most
    of the cast, so that colour names stay true.
    """
    kelvin = float(rng.uniform(4000.0, 7000.0))
    tint = kelvin_to_rgb(kelvin)
    count = {'overhead': 1, 'side': int(rng.integers(1, 3)), 'multi': int(rng.integers(2, 4)),
             'soft': int(rng.integers(2, 4)), 'grazing': 1}[setup]
    elev_range = {'overhead': (70, 88), 'side': (35, 60), 'multi': (40, 85), 'soft': (50, 85),
                  'grazing': (15, 25)}[setup]
    total = {'overhead': (0.6, 0.9), 'side': (0.6, 0.9), 'multi': (0.7, 1.0),
             'soft': (0.4, 0.6), 'grazing': (0.7, 0.9)}[setup]
    shadows = setup != 'soft' and bool(rng.random() < 0.75)
    level = float(rng.uniform(*total)) / count
    lights = []
    for k in range(count):
        az = rng.uniform(-math.pi, math.pi)
        el = math.radians(rng.uniform(*elev_range))
        toward = np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az),
                           math.sin(el)])
        centre = np.array([0.5, 0.0, 0.0])
        kind = 'directional' if setup in ('overhead', 'grazing') or rng.random() < 0.5 \
            else 'spot'
        lights.append({'type': kind, 'pos': (centre + 2.0 * toward).tolist(),
                       'dir': (-toward).tolist(),
                       'diffuse': (level * rng.uniform(0.85, 1.15) * tint).tolist(),
                       'castshadow': bool(shadows and k == 0)})
    ambient = float(rng.uniform(0.25, 0.4) if setup == 'soft' else rng.uniform(0.1, 0.3))
    headlight = float(rng.uniform(0.1, 0.3))
    return lights, ambient, headlight, kelvin


def _random_hue_rgb(rng: np.random.Generator, sat: Tuple[float, float],
                    val: Tuple[float, float]) -> List[float]:
    import colorsys
    return list(colorsys.hsv_to_rgb(float(rng.random()), float(rng.uniform(*sat)),
                                    float(rng.uniform(*val))))


def _sample_surface(rng: np.random.Generator, kind: str, role: str) -> dict:
    """Texture parameters of one surface; colours muted for the table so objects stand out."""
    if kind == 'wood':
        base = np.array([0.55, 0.38, 0.22]) * rng.uniform(0.7, 1.3) + rng.uniform(-0.05, 0.05, 3)
        rgb1, rgb2 = np.clip(base, 0, 1).tolist(), np.clip(base * 0.7, 0, 1).tolist()
    else:
        sat = (0.0, 0.35) if role == 'table' else (0.0, 0.6)
        rgb1 = _random_hue_rgb(rng, sat, (0.35, 0.85))
        rgb2 = _random_hue_rgb(rng, sat, (0.2, 0.9))
    return {'kind': kind, 'rgb1': [float(v) for v in rgb1], 'rgb2': [float(v) for v in rgb2],
            'seed': int(rng.integers(2 ** 31)), 'scale': float(rng.uniform(0.5, 2.0))}


def _sample_color(rng: np.random.Generator, extended: str) -> np.ndarray:
    """An sRGB colour (0..1) near the survey colour of ``extended`` that :func:`name_color`
    names with the same basic term and extended name, with confidence >= COLOR_CONFIDENCE."""
    from matplotlib.colors import XKCD_COLORS, to_rgb
    proto = srgb_to_lab(np.array(to_rgb(XKCD_COLORS['xkcd:' + extended])))
    basic = name_color(lab_to_srgb(proto)).basic
    for _ in range(40):
        rgb = lab_to_srgb(proto + rng.normal(0.0, [5.0, 6.0, 6.0]))
        name = name_color(rgb)
        if (name.basic == basic and name.extended == extended
                and name.confidence >= COLOR_CONFIDENCE):
            return rgb
    return lab_to_srgb(proto)


def _size_label(scale: float) -> str:
    return SIZES[min(2, int(scale * 3))]


def _sample_object(rng: np.random.Generator, draw: _Draw, held: List[str]) -> RandomObjectSpec:
    distractor = bool(rng.random() < DISTRACTOR_RATE)
    category = shapes.DISTRACTOR if distractor else CATEGORIES[int(rng.integers(len(CATEGORIES)))]
    variants = [f'{category}/{v}' for v in shapes.SHAPE_VARIANTS[category]]
    variant = draw.choice('shape_variant', variants, HELD_OUT['shape_variant']).split('/')[1]
    scale = float(rng.random())
    params = shapes.sample_shape(category, variant, scale, rng)
    if distractor:
        extended = DISTRACTOR_PALETTE[int(rng.integers(len(DISTRACTOR_PALETTE)))]
        rgb = _sample_color(rng, extended)
        name = name_color(rgb)
        color, extended = name.basic, name.extended
    else:
        color = COLORS[int(rng.integers(len(COLORS)))]
        extended = draw.choice('color_extended', OBJECT_PALETTE[color],
                               HELD_OUT['color_extended'])
        rgb = _sample_color(rng, extended)
    pattern = draw.choice('pattern', PATTERNS, HELD_OUT['pattern']) \
        if rng.random() < 0.3 else 'solid'
    second = DISTRACTOR_PALETTE[int(rng.integers(len(DISTRACTOR_PALETTE)))]
    rgb2 = _sample_color(rng, second)
    accent = [float(v) for v in rng.choice([[0.85, 0.85, 0.85], [0.1, 0.1, 0.1],
                                            [0.6, 0.6, 0.62]])]
    held += [f for f in draw.held_out if f not in held]
    return RandomObjectSpec(
        category=category, color=color, size=_size_label(scale),
        rgba=[float(v) for v in rgb] + [1.0], dims={}, x=0.0, y=0.0,
        yaw=float(rng.uniform(-math.pi, math.pi)),
        handle=bool(params.get('handle', 0.0)), shape_variant=variant, scale=scale,
        params={k: float(v) for k, v in params.items()}, color_extended=extended,
        pattern=pattern, rgba2=[float(v) for v in rgb2] + [1.0], color2=name_color(rgb2).basic,
        accent_rgba=accent + [1.0], specular=float(rng.uniform(0.0, 0.3)),
        shininess=float(rng.uniform(0.1, 0.9)), distractor=distractor)


def _layout(rng: np.random.Generator, objects: List[RandomObjectSpec],
            margin: Tuple[float, float]) -> List[RandomObjectSpec]:
    """Place objects on non-overlapping footprints (gap ``margin`` metres; 0 lets them touch)."""
    placed: List[RandomObjectSpec] = []
    for obj in objects:
        gap = float(rng.uniform(*margin))
        for _attempt in range(150):
            obj.x = float(rng.uniform(*WORKSPACE_X))
            obj.y = float(rng.uniform(*WORKSPACE_Y))
            if all(math.hypot(obj.x - o.x, obj.y - o.y)
                   >= obj.footprint_radius + o.footprint_radius + gap + 0.002 for o in placed):
                placed.append(obj)
                break
    return placed


def relative_sizes(objects: Sequence[ObjectSpec]) -> List[Optional[str]]:
    """Per object 'small' / 'large' when it is clearly (volume ratio >= RELATIVE_SIZE_RATIO)
    the smallest / largest of at least two objects of its category in the scene, else None.
    Distractors get None (no size words for "objects")."""
    out: List[Optional[str]] = []
    for i, obj in enumerate(objects):
        others = [o.volume for k, o in enumerate(objects)
                  if k != i and o.category == obj.category]
        label = None
        if others and not getattr(obj, 'distractor', False):
            if all(v >= obj.volume * RELATIVE_SIZE_RATIO for v in others):
                label = 'small'
            elif all(obj.volume >= v * RELATIVE_SIZE_RATIO for v in others):
                label = 'large'
        out.append(label)
    return out


def _sample_camera(rng: np.random.Generator, draw: _Draw) -> Tuple[CameraSpec, dict]:
    profile = draw.choice('camera_profile', tuple(CAMERA_PROFILES), HELD_OUT['camera_profile'])
    elevation = draw.interval('elevation_deg')
    distance = draw.interval('distance_m')
    # Wide lenses far away make objects a few pixels wide: keep the half-height of the view at
    # the target within MAX_HALF_VIEW_M (only shortens held-out distances of the widest lenses).
    cap = MAX_HALF_VIEW_M / math.tan(math.radians(CAMERA_PROFILES[profile]['vfov']) / 2)
    lo, hi = CAMERA_RANGES['distance_m'][1 if 'distance_m' in draw.held_out else 0]
    if hi > cap:
        # Squeeze the interval [lo, hi] into [lo, max(cap, lo + 2 cm)] (the value stays in it).
        distance = lo + (distance - lo) * (max(cap, lo + 0.02) - lo) / (hi - lo)
    # Yaw: the camera looks from the robot's side of the table, up to 80 deg to either side.
    azimuth = 180.0 + float(rng.uniform(-80.0, 80.0))
    roll = float(rng.uniform(-4.0, 4.0))
    target = np.array([0.5 + rng.uniform(-0.06, 0.06), rng.uniform(-0.08, 0.08), 0.03])
    el, az = math.radians(elevation), math.radians(azimuth)
    pos = target + distance * np.array([math.cos(el) * math.cos(az),
                                        math.cos(el) * math.sin(az), math.sin(el)])
    quat = look_at_quat(pos, target, roll=math.radians(roll))
    fovy = CAMERA_PROFILES[profile]['vfov']
    values = {'camera_profile': profile, 'fovy_deg': fovy, 'elevation_deg': elevation,
              'distance_m': distance, 'azimuth_deg': azimuth, 'roll_deg': roll}
    return CameraSpec(pos=pos.tolist(), quat=quat.tolist(), fovy=fovy), values


def generate_random_scene(seed: int, split: str = 'train') -> RandomSceneSpec:
    """A randomized scene, identical for identical ``(seed, split)``.

    Args:
        seed: scene seed.
        split: 'train' (no held-out factor value) or 'shifted' (held-out values, see module).
    """
    from . import sensor
    rng = np.random.default_rng([int(seed), SPLIT_KINDS.index(split), 0xD0_4A1])
    draw = _Draw(rng, split)
    textures = {role: draw.choice('texture', SURFACE_TEXTURES, HELD_OUT['texture'])
                for role in ('table', 'floor', 'wall')}
    surfaces = {role: _sample_surface(rng, kind, role) for role, kind in textures.items()}
    setup = draw.choice('lighting', LIGHTING_SETUPS, HELD_OUT['lighting'])
    lights, ambient, headlight, kelvin = _sample_lights(rng, setup)
    camera, cam_values = _sample_camera(rng, draw)
    if split == 'shifted' and not draw.held_out:
        # Guarantee one scene-level shift: redraw the camera elevation from its held-out range.
        draw.forced = 'elevation_deg'
        camera, cam_values = _sample_camera(rng, draw)
    draw.forced = None
    scene_held = sorted(set(draw.held_out))
    clutter = ('sparse', 'normal', 'cluttered')[int(rng.choice(3, p=[0.25, 0.5, 0.25]))]
    (lo, hi), margin = _CLUTTER[clutter]
    object_held: List[str] = []
    objects = []
    for _ in range(int(rng.integers(lo, hi + 1))):
        draw.held_out = []
        objects.append(_sample_object(rng, draw, object_held))
    objects = _layout(rng, objects, margin)
    profile = CAMERA_PROFILES[cam_values['camera_profile']]
    sensor_params = sensor.sample_sensor(rng, profile, kelvin)
    factors = {
        'split': split, 'table_texture': textures['table'], 'floor_texture': textures['floor'],
        'wall_texture': textures['wall'], 'lighting': setup, 'n_lights': len(lights),
        'shadows': any(lt['castshadow'] for lt in lights), 'color_temperature_k': kelvin,
        **cam_values, 'clutter': clutter, 'n_objects': len(objects),
        'n_distractors': sum(o.distractor for o in objects),
        'shape_variants': [f'{o.category}/{o.shape_variant}' for o in objects],
        'colors_extended': [o.color_extended for o in objects],
        'patterns': [o.pattern for o in objects],
        'held_out': sorted(set(scene_held) | {f for f in object_held
                                              if _object_value_held(f, objects)}),
    }
    return RandomSceneSpec(seed=int(seed), split=split, objects=objects, camera=camera,
                           lights=lights, ambient=[ambient] * 3, headlight=[headlight] * 3,
                           surfaces=surfaces, sensor=sensor_params, factors=factors)


def _object_value_held(factor: str, objects: Sequence[RandomObjectSpec]) -> bool:
    """Whether a placed object (layout may drop some) still carries a held-out ``factor``."""
    for o in objects:
        if factor == 'shape_variant' and f'{o.category}/{o.shape_variant}' in \
                HELD_OUT['shape_variant']:
            return True
        if factor == 'color_extended' and o.color_extended in HELD_OUT['color_extended']:
            return True
        if factor == 'pattern' and o.pattern in HELD_OUT['pattern']:
            return True
    return False


def held_out_values(factors: dict) -> List[Tuple[str, object]]:
    """(factor, value) of every held-out value found in a scene's ``factors`` dict."""
    found = []
    for role in ('table_texture', 'floor_texture', 'wall_texture'):
        if factors[role] in HELD_OUT['texture']:
            found.append((role, factors[role]))
    for key in ('lighting', 'camera_profile'):
        if factors[key] in HELD_OUT[key]:
            found.append((key, factors[key]))
    for key, (_train, (lo, hi)) in CAMERA_RANGES.items():
        if lo <= factors[key] <= hi and not _train[0] <= factors[key] < _train[1]:
            found.append((key, factors[key]))
    for key, name in (('shape_variants', 'shape_variant'), ('colors_extended', 'color_extended'),
                      ('patterns', 'pattern')):
        found += [(name, v) for v in factors[key] if v in HELD_OUT[name]]
    return found


# --------------------------------------------------------------------------------- textures

def _value_noise(rng: np.random.Generator, size: int, cells: int) -> np.ndarray:
    """(size, size) smooth noise 0..1: a random ``cells`` grid, bilinearly upsampled."""
    grid = rng.random((cells + 1, cells + 1))
    t = np.linspace(0, cells, size, endpoint=False)
    i = t.astype(int)
    f = t - i
    f = f * f * (3 - 2 * f)
    rows = grid[i] * (1 - f)[:, None] + grid[i + 1] * f[:, None]
    return rows[:, i] * (1 - f)[None, :] + rows[:, i + 1] * f[None, :]


def surface_image(surface: dict, size: int = 256) -> np.ndarray:
    """(size, size, 3) uint8 texture of a surface spec (see :func:`_sample_surface`)."""
    rng = np.random.default_rng(surface['seed'])
    kind, scale = surface['kind'], surface['scale']
    c1, c2 = np.array(surface['rgb1']), np.array(surface['rgb2'])
    y, x = np.mgrid[0:size, 0:size] / size
    fine = _value_noise(rng, size, 64)
    if kind == 'wood':
        warp = _value_noise(rng, size, 6)
        rings = 0.5 + 0.5 * np.sin((x * 40 * scale + 6 * warp) * math.pi)
        t = 0.7 * rings ** 3 + 0.3 * fine
    elif kind == 'checker':
        n = int(round(4 * scale)) * 2
        t = ((np.floor(x * n) + np.floor(y * n)) % 2).astype(float)
    elif kind == 'tiles':
        n = max(2, int(round(4 * scale)))
        gx, gy = (x * n) % 1, (y * n) % 1
        grout = (np.minimum(gx, 1 - gx) < 0.04) | (np.minimum(gy, 1 - gy) < 0.04)
        t = np.where(grout, 1.0, 0.1 * fine)
    elif kind == 'noise':
        t = 0.6 * _value_noise(rng, size, max(2, int(8 * scale))) + 0.4 * fine
    elif kind == 'plain':
        t = 0.08 * fine
    elif kind == 'fabric':
        n = 48 * scale
        t = 0.5 + 0.25 * np.sin(2 * math.pi * x * n) * np.sign(np.sin(2 * math.pi * y * n)) \
            + 0.25 * fine
    elif kind == 'marble':
        turb = sum(_value_noise(rng, size, 2 ** k) / 2 ** k for k in range(1, 6))
        t = np.abs(np.sin((x + y) * 6 * scale * math.pi + 8 * turb)) ** 0.3
    elif kind == 'dots':
        n = max(3, int(round(8 * scale)))
        gx, gy = (x * n) % 1 - 0.5, (y * n) % 1 - 0.5
        t = (np.hypot(gx, gy) < 0.22).astype(float)
    else:
        raise ValueError(f'unknown texture kind {kind!r}')
    rgb = c1[None, None, :] * (1 - t[..., None]) + c2[None, None, :] * t[..., None]
    return (np.clip(rgb, 0, 1) * 255).astype(np.uint8)


# ------------------------------------------------------------------------------------ build

def _add_surfaces(spec: mujoco.MjSpec, scene: RandomSceneSpec) -> None:
    for role, surface in scene.surfaces.items():
        image = surface_image(surface)
        tex = spec.add_texture(name=f'{role}_tex', type=mujoco.mjtTexture.mjTEXTURE_2D,
                               width=image.shape[1], height=image.shape[0], nchannel=3)
        tex.data = image.tobytes()
        repeat = {'table': [3, 3], 'floor': [4, 4], 'wall': [3, 2]}[role]
        mat = spec.add_material(name=f'{role}_mat', texrepeat=repeat, specular=0.15,
                                shininess=0.2)
        mat.textures[int(mujoco.mjtTextureRole.mjTEXROLE_RGB)] = tex.name
    world = spec.worldbody
    world.add_geom(name='floor', type=mujoco.mjtGeom.mjGEOM_PLANE, size=[3, 3, 0.1],
                   pos=[0.5, 0, -0.75], material='floor_mat')
    world.add_geom(name='table', type=mujoco.mjtGeom.mjGEOM_BOX, size=[0.6, 0.6, 0.02],
                   pos=[0.35, 0.0, -0.02], material='table_mat')
    for i, (lx, ly) in enumerate([(-0.2, -0.55), (-0.2, 0.55), (0.9, -0.55), (0.9, 0.55)]):
        world.add_geom(name=f'table_leg_{i}', type=mujoco.mjtGeom.mjGEOM_BOX,
                       size=[0.025, 0.025, 0.365], pos=[lx, ly, -0.405], material='floor_mat')
    # Visual-only walls 2.5 m around the workspace centre (no collisions).
    for i, (px, py, sx, sy) in enumerate([(3.0, 0, 0.02, 2.5), (-2.0, 0, 0.02, 2.5),
                                          (0.5, 2.5, 2.5, 0.02), (0.5, -2.5, 2.5, 0.02)]):
        world.add_geom(name=f'wall_{i}', type=mujoco.mjtGeom.mjGEOM_BOX, size=[sx, sy, 1.5],
                       pos=[px, py, 0.75], material='wall_mat', contype=0, conaffinity=0)


def _object_material(spec: mujoco.MjSpec, i: int, obj: RandomObjectSpec) -> str:
    name = f'obj_{i}_mat'
    if obj.pattern == 'solid':
        spec.add_material(name=name, rgba=obj.rgba, specular=obj.specular,
                          shininess=obj.shininess)
        return name
    builtin = {'speckle': mujoco.mjtBuiltin.mjBUILTIN_FLAT,
               'checker': mujoco.mjtBuiltin.mjBUILTIN_CHECKER,
               'gradient': mujoco.mjtBuiltin.mjBUILTIN_GRADIENT}[obj.pattern]
    main = np.array(obj.rgba[:3])
    kwargs = dict(name=f'obj_{i}_tex', type=mujoco.mjtTexture.mjTEXTURE_CUBE, builtin=builtin,
                  rgb1=main.tolist(), rgb2=obj.rgba2[:3], width=64, height=64)
    if obj.pattern == 'speckle':
        kwargs.update(mark=mujoco.mjtMark.mjMARK_RANDOM, random=0.08,
                      markrgb=(main * 0.6).tolist())
    spec.add_texture(**kwargs)
    mat = spec.add_material(name=name, specular=obj.specular, shininess=obj.shininess,
                            texrepeat=[2, 2] if obj.pattern == 'checker' else [1, 1])
    mat.textures[int(mujoco.mjtTextureRole.mjTEXROLE_RGB)] = f'obj_{i}_tex'
    return name


def build_random_spec(scene: RandomSceneSpec, with_robot: bool = True) -> mujoco.MjSpec:
    """The uncompiled :class:`mujoco.MjSpec` of a randomized scene (see :func:`build_model`)."""
    spec = mujoco.MjSpec()
    spec.modelname = f'unipixel_random_{scene.split}_{scene.seed}'
    spec.option.timestep = 0.002
    spec.visual.global_.offwidth, spec.visual.global_.offheight = MAX_RENDER_SIZE
    spec.visual.map.znear = 0.005
    spec.visual.map.zfar = 10.0
    spec.stat.extent = 2.0
    spec.stat.center = [0.35, 0.0, 0.2]
    spec.visual.headlight.ambient = scene.ambient
    spec.visual.headlight.diffuse = scene.headlight
    spec.visual.headlight.specular = [0.1, 0.1, 0.1]
    spec.visual.quality.shadowsize = 2048
    _add_surfaces(spec, scene)
    for i, lt in enumerate(scene.lights):
        kind = (mujoco.mjtLightType.mjLIGHT_DIRECTIONAL if lt['type'] == 'directional'
                else mujoco.mjtLightType.mjLIGHT_SPOT)
        spec.worldbody.add_light(name=f'light_{i}', type=kind, pos=lt['pos'], dir=lt['dir'],
                                 diffuse=lt['diffuse'], specular=[0.2, 0.2, 0.2],
                                 castshadow=lt['castshadow'], cutoff=70.0, exponent=1.0)
    cam = scene.camera
    spec.worldbody.add_camera(name='head', pos=cam.pos, quat=cam.quat, fovy=cam.fovy)
    for i, obj in enumerate(scene.objects):
        material = _object_material(spec, i, obj)
        accent = f'obj_{i}_accent'
        spec.add_material(name=accent, rgba=obj.accent_rgba, specular=0.5, shininess=0.5)
        body = spec.worldbody.add_body(name=f'obj_{i}', pos=[obj.x, obj.y, 0.0],
                                       quat=[math.cos(obj.yaw / 2), 0, 0, math.sin(obj.yaw / 2)])
        body.add_freejoint(name=f'obj_{i}_joint')
        for k, g in enumerate(shapes.shape_geoms(obj.category, obj.shape_variant, obj.params)):
            geom = body.add_geom(name=f'obj_{i}_geom_{k}', type=g['type'], size=g['size'],
                                 pos=g['pos'], material=accent if g.get('accent') else material,
                                 density=400.0, friction=[1.0, 0.01, 0.001], condim=4)
            if 'quat' in g:
                geom.quat = g['quat']
    scene.meta['robot'] = bool(with_robot and _attach_robot(spec))
    return spec


def build_random_model(scene: RandomSceneSpec, with_robot: bool = True) -> mujoco.MjModel:
    """Compile a randomized scene: table (top at z = 0), walls, floor, lights, camera ``head``,
    objects ``obj_<i>`` and the Panda at the origin when ``with_robot`` and available."""
    return build_random_spec(scene, with_robot).compile()


def object_truth_extras(scene: RandomSceneSpec) -> List[dict]:
    """Per object, the fields the randomized generator adds to ``meta.json`` objects:
    shape_variant, color_extended, color_terms, pattern, distractor, size_relative, color_rgb
    (sRGB 0..1 of the material), scale."""
    rel = relative_sizes(scene.objects)
    return [{'shape_variant': o.shape_variant, 'color_extended': o.color_extended,
             'color_terms': o.color_terms, 'pattern': o.pattern, 'distractor': o.distractor,
             'size_relative': rel[i], 'color_rgb': o.rgba[:3], 'scale': o.scale}
            for i, o in enumerate(scene.objects)]
