"""The referring resolver: every instance of each concept in, one object (or a reason) out.

An open-vocabulary detector (SAM 3) returns every instance of "cup" and every instance of
"bowl". "The red cup left of the blue bowl" needs one of them. The resolver measures each
candidate on the RGB-D frame and applies the constraints of
:func:`unipixel_ros.language.concepts.parse_referring`:

- **colour**: the robust colour of the mask (eroded by ``erode_px``; the median linear RGB of
  the pixels between the ``color_low_pct`` and ``color_high_pct`` lightness percentiles, i.e.
  the lit side without speculars), brightness-normalised (max channel scaled to
  ``color_normalise``, so shading does not turn red into brown; dark colours are also named as
  measured, ``dark_blend``, so that brown, olive and plum survive) and named with the XKCD survey
  votes (:mod:`unipixel_ros.perception.color_naming`, the source the randomized simulator
  uses). Achromatic colours (chroma < ``achromatic_chroma``) are white / grey / black by
  lightness. A **two-tone** object (a label, a gradient, a checker pattern: two colour clusters
  of the mask, 2-means in CIELAB, each holding ``two_tone_min_share`` and ``two_tone_min_delta_e``
  apart) is also named per tone, and a colour word matches it when it matches either tone (the
  median of a red and green object is a yellow nobody would say);
- **3D position and size** from the geometry core
  (:func:`unipixel_ros.perception.pipeline.estimate_object_geometry`: box centre and extent in
  the camera optical frame, metres; x right, y down, z forward); "left" = smaller x, "closest"
  = smallest distance ``|centre|``; size = box volume, height = box extent along the support
  normal. With a :class:`Viewpoint` (the node's ``target_frame``, e.g. the robot's base_link,
  REP-103: x forward, y left, z up) "left" and "right" are the robot's and "closest" is
  nearest to that frame's origin, whichever way the camera looks. When the geometry core fails
  the centre is the median back-projected point and the extent the 5-95 % spread (marked
  ``geometry=None``); an object without any valid depth (black or glossy surfaces) is placed at
  the depth around it;
- **size words** relative to the other instances of the concept, **superlatives, positions,
  ordinals and relations** in 3D. A runner-up within a margin of the winner (settings) makes the
  answer ambiguous instead of a coin toss.

:func:`resolve_referring` returns a :class:`Resolution` with exactly one status: 'found' (one
object: its mask, score and why), 'not_there' (presence, score or a constraint fails, with the
reason), or 'ambiguous' (with a question that names the difference, e.g. "Which one, the left
or the right red cup?").
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from unipixel_ros.language.concepts import Concept, Constraint, Referring
from unipixel_ros.perception import CameraIntrinsics, GeometryConfig, GeometryError
from unipixel_ros.perception.color_naming import (BASIC_TERMS, basic_term_shares,
                                                  extended_basic_terms, linear_to_srgb,
                                                  srgb_to_lab, srgb_to_linear)
from unipixel_ros.perception.pipeline import ObjectGeometry, estimate_object_geometry

STATUSES = ('found', 'not_there', 'ambiguous')


@dataclass(frozen=True)
class Viewpoint:
    """Whose left and whose distance: the camera -> target frame transform (REP-103 target:
    x forward, y left, z up), ``p_target = rotation @ p_camera + translation``.

    Attributes:
        rotation: (3, 3) float64; translation: (3,) float64, metres.
    """

    rotation: np.ndarray
    translation: np.ndarray

    def lateral(self, center: np.ndarray) -> float:
        """Signed offset to the right (m) of a camera-frame point, as the target frame sees it."""
        return -float((self.rotation @ center + self.translation)[1])

    def distance(self, center: np.ndarray) -> float:
        """Distance (m) of a camera-frame point from the target frame's origin."""
        return float(np.linalg.norm(self.rotation @ center + self.translation))


@dataclass(frozen=True)
class ResolverSettings:
    """Thresholds of the resolver (chosen on a val split; lengths in metres).

    Attributes:
        min_presence: a concept whose presence probability is below this is not there.
        min_score: candidates scoring below this are dropped.
        min_area_px: candidates with fewer mask pixels are dropped (slivers behind others).
        erode_px: mask erosion before measuring colour, px.
        depth_ring_px: a candidate without any valid depth is placed at the median depth of a
            ring this wide around its mask (:func:`fallback_points`), px.
        color_low_pct, color_high_pct: lightness percentiles of the pixels whose median colour
            is the object's colour.
        color_normalise: chromatic colours are scaled to this max linear channel before naming.
        dark_blend, dark_blend_l: a dark colour is also named as measured, unnormalised: its
            votes weigh ``dark_blend * (dark_blend_l - L) / dark_blend_l`` (0 at and above
            ``dark_blend_l``); normalising alone turns brown into orange, olive into yellow and
            plum into pink, since brightness is what tells them apart.
        achromatic_chroma: below this CIELAB chroma a colour is white / grey / black.
        white_min_l: achromatic lightness at or above this is "white".
        black_max_l: achromatic lightness at or below this is "black" (between: "grey").
        black_max_chroma: an object whose median over all its pixels is at most ``black_max_l``
            light and below this chroma is black, whatever its lit side says (a dark glossy
            object); dark navy, plum and forest green stay above it (measured on the randomized
            simulator's val scenes: black objects 95th percentile 5.8, dark chromatic objects
            10th percentile 3.7-25).
        color_min_share: a chromatic candidate matches a colour when that colour holds at least
            this share of its survey votes.
        two_tone_min_share, two_tone_min_delta_e, two_tone_lightness_weight: two colour
            clusters of a mask (2-means over the pixels between the ``two_tone_pct`` lightness
            percentiles, in CIELAB with L weighted by ``two_tone_lightness_weight`` so that
            shading alone splits less) make a two-tone object when the smaller holds this share
            and the centres are this far apart. Chosen on val (shifted val attribute P@0.5
            86.4 -> 90.7, relations 91.9 -> 94.8, no-target 96.2 -> 94.7; randomized val
            relations 93.2 -> 96.2, ambiguity 97.8 -> 99.3; default val relations 98.6 -> 100,
            no-target 97.4 -> 96.2). ``two_tone_min_delta_e = inf`` turns it off.
        two_tone_pct: (low, high) lightness percentiles of the pixels the tones are found in
            (drops the deepest shadow and the speculars).
        size_ratio: "small" = volume within this ratio of the smallest instance, "large" =
            within it of the largest (relative size words need two or more instances).
        lateral_margin_m: positions / ordinals: a runner-up within this of the winner in x
            makes the answer ambiguous.
        depth_margin_m: the same for near / far (distance from the camera).
        superlative_ratio: biggest / smallest / tallest / shortest: a runner-up within this
            ratio is a tie (1.1: about the noise of a volume seen from one side; on the val
            scenes 1.05 was as good or 1-2 points better, 1.15 worse on randomized shapes).
        next_to_m: "next to": centre distance at most this.
        lateral_m: "left of" / "right of": x offset at least this.
        depth_m: "behind" / "in front of": distance offset at least this...
        depth_lateral_m: ...with an x offset at most this.
        relation_margin_m: "closest to" / "farthest from": runner-up margin.
        size_measure: what "big" means: 'volume' (box volume; chosen on val: with the
            randomized simulator's shape variants, squashed balls, lidded boxes, a tall thin
            object is not the biggest, and superlatives went 74.6 -> 89.8 % P@0.5 on shifted val,
            83.3 -> 91.7 on randomized val, 98.6 -> 98.0 on default val) or 'height' (box extent
            along the support normal: robust to a neighbour hiding part of the footprint, the
            choice on the default generator alone).
        size_norms: ((category, small_below_m, large_from_m), ...): absolute size classes by
            height, used for a size word when comparing the instances cannot decide ("the
            medium-sized can" among two cans). Fitted on the simulator's val scenes (boundaries
            halfway between the class medians), so they describe the simulator's objects;
            categories without a norm are judged relative only.
    """

    min_presence: float = 0.5
    min_score: float = 0.3
    min_area_px: int = 60
    depth_ring_px: int = 6
    erode_px: int = 2
    color_low_pct: float = 50.0
    color_high_pct: float = 95.0
    color_normalise: float = 0.9
    dark_blend: float = 0.6
    dark_blend_l: float = 40.0
    achromatic_chroma: float = 10.0
    white_min_l: float = 28.0
    black_max_l: float = 22.0
    black_max_chroma: float = 8.0
    color_min_share: float = 0.15
    two_tone_min_share: float = 0.25
    two_tone_min_delta_e: float = 25.0
    two_tone_lightness_weight: float = 0.5
    two_tone_pct: tuple = (10.0, 97.0)
    size_ratio: float = 1.2
    lateral_margin_m: float = 0.02
    depth_margin_m: float = 0.025
    superlative_ratio: float = 1.1
    next_to_m: float = 0.17
    lateral_m: float = 0.03
    depth_m: float = 0.04
    depth_lateral_m: float = 0.17
    relation_margin_m: float = 0.02
    size_measure: str = 'volume'
    size_norms: tuple = (('cup', 0.0826, 0.1001), ('bowl', 0.0517, 0.0615),
                         ('box', 0.0751, 0.1101), ('ball', 0.0491, 0.0612),
                         ('bottle', 0.1524, 0.19), ('can', 0.085, 0.1175),
                         ('block', 0.0375, 0.0525))

    def __post_init__(self) -> None:
        if self.size_measure not in ('height', 'volume'):
            raise ValueError(f"size_measure must be 'height' or 'volume', got "
                             f'{self.size_measure!r}')

    def to_dict(self) -> dict:
        return asdict(self)


DEFAULT_RESOLVER_SETTINGS = ResolverSettings()


@dataclass
class Proposals:
    """Every instance of one concept (the detector's output, or ground truth for oracle runs).

    Attributes:
        masks: (N, H, W) bool instance masks at the frame resolution.
        scores: (N,) float32 instance scores in [0, 1].
        presence: probability in [0, 1] that the concept is in the frame.
    """

    masks: np.ndarray
    scores: np.ndarray
    presence: float


@dataclass
class Measured:
    """One candidate, measured.

    Attributes:
        index: the candidate's index in its :class:`Proposals`.
        mask: (H, W) bool.
        score: its detection score.
        area_px: mask pixels.
        center: (3,) float64 box centre in the camera optical frame, m.
        extent: (3,) float64 box side lengths, m (the third along the support normal when the
            box stands on a plane).
        volume: box volume, m^3.
        height: extent along the support normal (the largest extent without a plane), m.
        distance: |center|, m (with a :class:`Viewpoint`: from the target frame's origin).
        color: 'white' | 'grey' | 'black' for achromatic colours, else the top basic term.
        lightness: CIELAB L of the robust colour.
        shares: (11,) survey vote shares of :data:`BASIC_TERMS` of the normalised colour
            (zeros for achromatic colours).
        tones: a two-tone object's two tones, each (name, lightness, shares) as above; empty
            for a one-colour object.
        geometry: the geometry core's result, or None when it failed (fallback measures).
    """

    index: int
    mask: np.ndarray
    score: float
    area_px: int
    center: np.ndarray
    extent: np.ndarray
    volume: float
    height: float
    distance: float
    color: str
    lightness: float
    shares: np.ndarray
    geometry: ObjectGeometry | None = None
    #: "big" in the settings' sense (height or volume), filled by measure_proposals
    size: float = 0.0
    #: signed offset to the right, m: camera x, or the viewpoint's right (see :class:`Viewpoint`)
    lateral: float = 0.0
    tones: tuple = ()


@dataclass
class Resolution:
    """The resolver's answer.

    Attributes:
        status: 'found', 'not_there' or 'ambiguous'.
        mask: (H, W) bool of the found object (all False otherwise).
        score: the found object's detection score (the best target score otherwise; 0 when
            there is no target candidate).
        reason: why, in words ("the leftmost of 3 cups", "no cup is red").
        question: for 'ambiguous': "Which one, the left or the right red cup?"; '' otherwise.
        chosen: the found :class:`Measured`, or None.
        tied: the candidates an ambiguous answer could not choose between.
        candidates: every measured target candidate.
    """

    status: str
    mask: np.ndarray
    score: float
    reason: str
    question: str = ''
    chosen: Measured | None = None
    tied: list = field(default_factory=list)
    candidates: list = field(default_factory=list)

    @property
    def found(self) -> bool:
        return self.status == 'found'


# ---------------------------------------------------------------------------------------------
# measuring

def _erode(mask: np.ndarray, px: int) -> np.ndarray:
    if px <= 0:
        return mask
    from scipy.ndimage import binary_erosion
    eroded = binary_erosion(mask, iterations=px)
    return eroded if eroded.sum() >= 30 else mask


def _color_pixels(rgb: np.ndarray, mask: np.ndarray, settings: ResolverSettings) -> np.ndarray:
    """(N, 3) uint8: the eroded mask's pixels, at most about 4000 (evenly strided)."""
    px = rgb[_erode(mask, settings.erode_px)]
    return px[:: len(px) // 4000] if len(px) > 4000 else px


def name_pixels(px: np.ndarray, settings: ResolverSettings = DEFAULT_RESOLVER_SETTINGS
                ) -> tuple[str, float, np.ndarray]:
    """(colour name, lightness, (11,) vote shares) of a set of object pixels (see the module
    docstring). ``px``: (N, 3) uint8 sRGB, N >= 1."""
    lab = srgb_to_lab(px)
    lo, hi = np.percentile(lab[:, 0], [settings.color_low_pct, settings.color_high_pct])
    sel = (lab[:, 0] >= lo) & (lab[:, 0] <= hi)
    if sel.sum() < 5:
        sel = np.ones(len(px), bool)
    all_lab = np.median(lab, axis=0)
    if all_lab[0] <= settings.black_max_l and np.hypot(all_lab[1], all_lab[2]) < (
            settings.black_max_chroma):
        return 'black', float(all_lab[0]), np.zeros(len(BASIC_TERMS))   # dark, glossy
    linear = np.median(srgb_to_linear(px[sel]), axis=0)
    robust = srgb_to_lab(linear_to_srgb(linear))
    light = float(robust[0])
    if float(np.hypot(robust[1], robust[2])) < settings.achromatic_chroma or linear.max() <= 0:
        name = ('white' if light >= settings.white_min_l else
                'black' if light <= settings.black_max_l else 'grey')
        return name, light, np.zeros(len(BASIC_TERMS))
    normalised = linear / linear.max() * settings.color_normalise
    shares = basic_term_shares(srgb_to_lab(linear_to_srgb(normalised)))
    if settings.dark_blend > 0 and light < settings.dark_blend_l:
        w = settings.dark_blend * (settings.dark_blend_l - light) / settings.dark_blend_l
        shares = (1.0 - w) * shares + w * basic_term_shares(robust)
    return BASIC_TERMS[int(shares.argmax())], light, shares


def measure_color(rgb: np.ndarray, mask: np.ndarray,
                  settings: ResolverSettings = DEFAULT_RESOLVER_SETTINGS
                  ) -> tuple[str, float, np.ndarray]:
    """(colour name, lightness, (11,) vote shares) of the masked object (see module docstring).

    Args:
        rgb: (H, W, 3) uint8.
        mask: (H, W) bool, not empty.
    """
    return name_pixels(_color_pixels(rgb, mask, settings), settings)


def measure_tones(rgb: np.ndarray, mask: np.ndarray,
                  settings: ResolverSettings = DEFAULT_RESOLVER_SETTINGS) -> tuple:
    """A two-tone object's tones, ((name, lightness, shares), (name, lightness, shares)), or
    () for a one-colour object (see ``ResolverSettings.two_tone_*``). Deterministic.

    Args:
        rgb: (H, W, 3) uint8; mask: (H, W) bool, not empty.
    """
    return pixel_tones(_color_pixels(rgb, mask, settings), settings)


def pixel_tones(px: np.ndarray, settings: ResolverSettings = DEFAULT_RESOLVER_SETTINGS) -> tuple:
    """:func:`measure_tones` of the object's pixels ((N, 3) uint8 sRGB, as
    :func:`name_pixels` takes them)."""
    import warnings

    from scipy.cluster.vq import kmeans2

    if not np.isfinite(settings.two_tone_min_delta_e):
        return ()
    lab = srgb_to_lab(px)
    lo, hi = np.percentile(lab[:, 0], settings.two_tone_pct)
    keep = (lab[:, 0] >= lo) & (lab[:, 0] <= hi)
    px, lab = px[keep], lab[keep]
    if len(px) < 40:
        return ()
    features = lab * np.array([settings.two_tone_lightness_weight, 1.0, 1.0])
    with warnings.catch_warnings():     # an empty cluster is an answer here: one tone
        warnings.simplefilter('ignore')
        centres, labels = kmeans2(features, 2, seed=np.random.default_rng(0), minit='++')
    counts = np.bincount(labels, minlength=2)
    if (counts.min() < settings.two_tone_min_share * len(labels)
            or np.linalg.norm(centres[0] - centres[1]) < settings.two_tone_min_delta_e):
        return ()
    return tuple(name_pixels(px[labels == k], settings) for k in np.argsort(-counts))


def color_word(rgb: np.ndarray, mask: np.ndarray,
               settings: ResolverSettings = DEFAULT_RESOLVER_SETTINGS) -> tuple[str, float]:
    """(basic colour term, probability) of the masked object, for a description.

    The term is :func:`measure_color`'s; the probability is the term's share of the survey
    votes (of the normalised colour for chromatic terms, of the measured colour for white,
    grey and black).

    Args:
        rgb: (H, W, 3) uint8; mask: (H, W) bool, not empty.
    """
    px = _color_pixels(rgb, mask, settings)
    name, _, shares = name_pixels(px, settings)
    if not shares.any():
        shares = basic_term_shares(np.median(srgb_to_lab(px), axis=0))
    return name, float(shares[BASIC_TERMS.index(name)] / max(float(shares.sum()), 1e-9))


def basic_term(word: str) -> str | None:
    """The basic colour term a colour word names ('navy' -> 'blue', 'gray' -> 'grey')."""
    word = 'grey' if word == 'gray' else word
    if word in BASIC_TERMS:
        return word
    return extended_basic_terms().get(word)


def color_matches(word: str, m: Measured,
                  settings: ResolverSettings = DEFAULT_RESOLVER_SETTINGS) -> bool:
    """Whether candidate ``m`` may be called ``word`` (an unknown word matches everything:
    the resolver never rejects what it cannot read)."""
    term = basic_term(word)
    if term is None:
        return True
    if any(_tone_matches(term, name, shares, settings) for name, _, shares in m.tones):
        return True
    return _tone_matches(term, m.color, m.shares, settings)


def _tone_matches(term: str, color: str, shares: np.ndarray, settings: ResolverSettings) -> bool:
    """Whether one measured colour (name, (11,) shares) may be called basic term ``term``."""
    if term in ('white', 'grey', 'black'):
        if color == term:
            return True
        # shading: a white object in shadow reads grey, a grey one in light reads white
        return {term, color} == {'white', 'grey'}
    if color in ('white', 'grey', 'black'):
        return False
    return float(shares[BASIC_TERMS.index(term)]) >= settings.color_min_share


def fallback_points(mask: np.ndarray, depth_m: np.ndarray, intrinsics: CameraIntrinsics,
                    ring_px: int) -> tuple[np.ndarray | None, bool]:
    """Camera-frame points of a mask the geometry core could not measure: (points, has_depth).

    The mask's own valid depth when it has some; otherwise (black, glossy or transparent
    surfaces often give a stereo or time-of-flight camera no depth at all, and the hole is often
    wider than the object) every mask pixel at the median valid depth of the nearest ring around
    the mask, ``ring_px`` wide and doubled up to 8x until it holds 20 valid pixels (what the
    object stands on or in front of), so that the object still has a place and a size. (None,
    False) when nothing within ``8 * ring_px`` has depth.

    Args:
        mask: (H, W) bool; depth_m: (H, W) float32 metres (0 or NaN = none).
    Returns:
        (N, 3) float64 points in the camera optical frame, metres, or None; and whether they
        are the object's own depth.
    """
    from scipy.ndimage import distance_transform_edt

    valid_depth = np.isfinite(depth_m) & (depth_m > 0)
    v, u = np.nonzero(mask & valid_depth)
    has_depth = len(v) >= 3
    if has_depth:
        z = depth_m[v, u].astype(np.float64)
    else:
        distance = distance_transform_edt(~mask)
        width = max(int(ring_px), 1)
        ring = (distance <= width) & valid_depth
        while ring.sum() < 20 and width < 8 * max(int(ring_px), 1):
            width *= 2
            ring = (distance <= width) & valid_depth
        if ring.sum() < 3:
            return None, False
        v, u = np.nonzero(mask)
        z = np.full(len(v), float(np.median(depth_m[ring])), np.float64)
    pts = np.stack([(u - intrinsics.cx) * z / intrinsics.fx,
                    (v - intrinsics.cy) * z / intrinsics.fy, z], axis=1)
    return pts, has_depth


def measure_candidate(index: int, mask: np.ndarray, score: float, rgb: np.ndarray,
                      depth_m: np.ndarray, intrinsics: CameraIntrinsics,
                      settings: ResolverSettings = DEFAULT_RESOLVER_SETTINGS,
                      geometry_config: GeometryConfig | None = None,
                      viewpoint: Viewpoint | None = None) -> Measured | None:
    """Measure one candidate; None when neither its mask nor a ring around it has valid depth
    (see :func:`fallback_points`).

    Args:
        mask: (H, W) bool; rgb (H, W, 3) uint8; depth_m (H, W) float32 metres (0 = none).
        viewpoint: whose left / distance (None: the camera's).
    """
    px = _color_pixels(rgb, mask, settings)     # erode once for the colour and the tones
    color, light, shares = name_pixels(px, settings)
    tones = pixel_tones(px, settings)
    geometry = None
    try:
        geometry = estimate_object_geometry(mask, depth_m, '32FC1', intrinsics, None,
                                            geometry_config or GeometryConfig())
        box = geometry.box
        center, extent = np.asarray(box.center, float), np.asarray(box.extent, float)
        height = float(extent[2]) if box.gravity_aligned else float(extent.max())
    except GeometryError:
        pts, has_depth = fallback_points(mask, depth_m, intrinsics, settings.depth_ring_px)
        if pts is None:
            return None
        center = np.median(pts, axis=0)
        lo, hi = np.percentile(pts, [5, 95], axis=0)
        extent = np.maximum(hi - lo, 1e-3)
        if not has_depth:   # a flat stand-in: assume the object is as deep as it is wide
            extent[2] = extent[0]
        height = float(extent[1])
    distance = (viewpoint.distance(center) if viewpoint is not None
                else float(np.linalg.norm(center)))
    lateral = viewpoint.lateral(center) if viewpoint is not None else float(center[0])
    return Measured(index, mask, float(score), int(mask.sum()), center, extent,
                    float(np.prod(extent)), height, distance, color, light, shares, geometry,
                    lateral=lateral, tones=tones)


def measure_proposals(proposals: Proposals, rgb: np.ndarray, depth_m: np.ndarray,
                      intrinsics: CameraIntrinsics,
                      settings: ResolverSettings = DEFAULT_RESOLVER_SETTINGS,
                      geometry_config: GeometryConfig | None = None,
                      viewpoint: Viewpoint | None = None) -> list:
    """Measured candidates of a concept that pass ``min_score`` and ``min_area_px``."""
    out = []
    for i in range(len(proposals.scores)):
        mask = np.asarray(proposals.masks[i], bool)
        if float(proposals.scores[i]) < settings.min_score or mask.sum() < settings.min_area_px:
            continue
        m = measure_candidate(i, mask, float(proposals.scores[i]), rgb, depth_m, intrinsics,
                              settings, geometry_config, viewpoint)
        if m is not None:
            m.size = m.height if settings.size_measure == 'height' else m.volume
            out.append(m)
    return out


# ---------------------------------------------------------------------------------------------
# applying constraints

def _plural(noun: str, n: int) -> str:
    if n == 1:
        return noun
    return noun + ('es' if noun.endswith(('x', 's', 'sh', 'ch')) else 's')


def _filter_attributes(concept: Concept, cands: list, settings: ResolverSettings
                       ) -> tuple[list, str]:
    """Colour and size words: (kept candidates, '' or why none is left)."""
    noun = concept.noun or 'object'
    kept = cands
    if concept.color:
        kept = [m for m in kept if color_matches(concept.color, m, settings)]
        term = basic_term(concept.color)
        if len(kept) > 1 and term is not None:
            # among several that may be called so, the ones it names best win
            named = [m for m in kept if m.color == term]
            kept = named or kept
        if not kept:
            seen = sorted({m.color for m in cands})
            return [], (f'I see {len(cands)} {_plural(noun, len(cands))} '
                        f'({", ".join(seen)}) but none is {concept.color}')
    if concept.size:
        relative = _relative_sizes(cands, settings.size_ratio)
        norms = {c: (lo, hi) for c, lo, hi in settings.size_norms}
        norm = norms.get(concept.category)
        sized = [m for m in kept if relative[id(m)] == concept.size]
        if not sized and norm is not None:
            # absolute class; for small / large only where the comparison does not contradict
            sized = [m for m in kept if (concept.size == 'medium' or relative[id(m)] is None)
                     and ('small' if m.height < norm[0] else 'large' if m.height >= norm[1]
                          else 'medium') == concept.size]
        if not sized and norm is None and (len(cands) < 2 or concept.size == 'medium'):
            sized = [m for m in kept if relative[id(m)] is None]   # the word cannot decide
        if not sized:
            return [], f'no {concept.words()} here'
        kept = sized
    return kept, ''


def _relative_sizes(cands: list, ratio: float) -> dict:
    """{id(m): 'small' | 'large' | None}: clearly (``ratio``) the smallest / largest of two or
    more instances, as the randomized simulator's ``size_relative``."""
    out = {}
    for m in cands:
        others = [o.size for o in cands if o is not m]
        label = None
        if others and all(v >= m.size * ratio for v in others):
            label = 'small'
        elif others and all(m.size >= v * ratio for v in others):
            label = 'large'
        out[id(m)] = label
    return out


def _key(direction: str):
    return {'left': lambda m: m.lateral, 'right': lambda m: -m.lateral,
            'near': lambda m: m.distance, 'far': lambda m: -m.distance}[direction]


def _margin(direction: str, settings: ResolverSettings) -> float:
    return (settings.lateral_margin_m if direction in ('left', 'right')
            else settings.depth_margin_m)


def _extreme(cands: list, key, margin: float) -> list:
    """Candidates within ``margin`` of the smallest ``key``."""
    values = [key(m) for m in cands]
    best = min(values)
    return [m for m, v in zip(cands, values) if v <= best + margin]


def _ratio_extreme(cands: list, values: list, biggest: bool, ratio: float) -> list:
    if biggest:
        top = max(values)
        return [m for m, v in zip(cands, values) if v * ratio >= top]
    low = min(values)
    return [m for m, v in zip(cands, values) if v <= low * ratio]


def _relation_holds(rel: str, t: Measured, a: Measured, s: ResolverSettings) -> bool:
    dx = t.lateral - a.lateral
    if rel == 'next_to':
        return float(np.linalg.norm(t.center - a.center)) <= s.next_to_m
    if rel == 'left_of':
        return -dx >= s.lateral_m
    if rel == 'right_of':
        return dx >= s.lateral_m
    dd = t.distance - a.distance
    if rel == 'behind':
        return dd >= s.depth_m and abs(dx) <= s.depth_lateral_m
    if rel == 'in_front_of':
        return -dd >= s.depth_m and abs(dx) <= s.depth_lateral_m
    raise ValueError(f'unknown relation {rel!r}')


def _same(a: Measured, b: Measured) -> bool:
    """The same object seen as two concepts (overlapping masks)."""
    inter = np.logical_and(a.mask, b.mask).sum()
    return inter > 0.5 * min(a.area_px, b.area_px)


def _apply(constraint: Constraint, cands: list, anchors: list, s: ResolverSettings) -> list:
    kind, value = constraint.kind, constraint.value
    if not cands:
        return cands
    if kind == 'position':
        if value == 'middle':
            if len(cands) < 3:
                return cands
            xs = np.array([m.lateral for m in cands])
            mid = float(np.median(xs))
            return [m for m, x in zip(cands, xs)
                    if abs(x - mid) <= np.sort(np.abs(xs - mid))[0] + s.lateral_margin_m]
        return _extreme(cands, _key(value), _margin(value, s))
    if kind == 'superlative':
        if value in ('biggest', 'smallest'):
            return _ratio_extreme(cands, [m.size for m in cands], value == 'biggest',
                                  s.superlative_ratio)
        return _ratio_extreme(cands, [m.height for m in cands], value == 'tallest',
                              s.superlative_ratio)
    if kind == 'ordinal':
        key = _key(value)
        order = sorted(cands, key=key)
        k = constraint.index - 1 if constraint.index > 0 else len(order) - 1
        if not 0 <= k < len(order):
            return []
        chosen = order[k]
        return [m for m in order if abs(key(m) - key(chosen)) <= _margin(value, s)]
    if kind == 'relation':
        if value in ('closest_to', 'farthest_from'):
            dist = [min(float(np.linalg.norm(t.center - a.center)) for a in anchors
                        if not _same(t, a)) if any(not _same(t, a) for a in anchors) else np.inf
                    for t in cands]
            pairs = [(m, d) for m, d in zip(cands, dist) if np.isfinite(d)]
            if not pairs:
                return []
            sign = 1.0 if value == 'closest_to' else -1.0
            best = min(sign * d for _, d in pairs)
            return [m for m, d in pairs if sign * d <= best + s.relation_margin_m]
        return [t for t in cands
                if any(not _same(t, a) and _relation_holds(value, t, a, s) for a in anchors)]
    raise ValueError(f'unknown constraint {kind!r}')


_RELATION_WORDS = {'next_to': 'next to', 'left_of': 'left of', 'right_of': 'right of',
                   'behind': 'behind', 'in_front_of': 'in front of',
                   'closest_to': 'closest to', 'farthest_from': 'farthest from'}


def _describe(constraint: Constraint) -> str:
    if constraint.kind == 'relation':
        return f'{_RELATION_WORDS[constraint.value]} the {constraint.anchor.words()}'
    if constraint.kind == 'ordinal':
        return f'number {constraint.index} from the {constraint.value}'
    return {'left': 'on the left', 'right': 'on the right', 'near': 'closest',
            'far': 'farthest', 'middle': 'in the middle'}.get(constraint.value, constraint.value)


def ambiguity_question(tied: list, concept: Concept) -> str:
    """A question that names the difference between the tied candidates.

    >>> # two red cups side by side -> "Which one, the left or the right red cup?"
    """
    words = concept.words()
    colors = [m.color for m in tied]
    if not concept.color and len(set(colors)) == len(tied) <= 3:
        names = [f'the {c}' for c in colors]
        return f'Which one, {", ".join(names[:-1])} or {names[-1]} {concept.noun or "object"}?'
    xs = np.array([m.lateral for m in tied])
    zs = np.array([m.distance for m in tied])
    lateral = float(np.ptp(xs)) >= float(np.ptp(zs))
    if len(tied) == 2:
        pair = ('left', 'right') if lateral else ('front', 'back')
        return f'Which one, the {pair[0]} or the {pair[1]} {words}?'
    if len(tied) == 3:
        triple = ('left', 'middle', 'right') if lateral else ('front', 'middle', 'back')
        return f'Which one, the {triple[0]}, the {triple[1]} or the {triple[2]} {words}?'
    return (f'Which one? I see {len(tied)} {_plural(words, len(tied))}: say left, right, '
            f'front or back.')


def _empty(shape) -> np.ndarray:
    return np.zeros(shape, bool)


def resolve_referring(referring: Referring, proposals: dict, rgb: np.ndarray,
                      depth_m: np.ndarray, intrinsics: CameraIntrinsics,
                      settings: ResolverSettings = DEFAULT_RESOLVER_SETTINGS,
                      geometry_config: GeometryConfig | None = None,
                      measured: dict | None = None,
                      viewpoint: Viewpoint | None = None) -> Resolution:
    """Pick the one object ``referring`` means among the proposals.

    Args:
        referring: from :func:`~unipixel_ros.language.concepts.parse_referring`.
        proposals: {concept phrase: :class:`Proposals` (or anything with ``masks`` (N, H, W)
            bool, ``scores`` (N,), ``presence``)} for every phrase of ``referring.concepts()``.
        rgb: (H, W, 3) uint8; depth_m: (H, W) float32 metres (0 = no reading); intrinsics.
        settings: :class:`ResolverSettings`.
        measured: optional cache {phrase: [Measured]} reused across expressions of a frame.
        viewpoint: whose left, right and distance (None: the camera's); see :class:`Viewpoint`.
    Returns:
        :class:`Resolution`.
    """
    shape = rgb.shape[:2]
    cache = {} if measured is None else measured

    def candidates(concept: Concept) -> tuple[list, float]:
        props = proposals.get(concept.phrase)
        if props is None:
            return [], 0.0
        if concept.phrase not in cache:
            cache[concept.phrase] = measure_proposals(props, rgb, depth_m, intrinsics, settings,
                                                      geometry_config, viewpoint)
        return cache[concept.phrase], float(props.presence)

    target = referring.target
    noun = target.noun or 'object'
    cands, presence = candidates(target)
    best_score = max((m.score for m in cands), default=0.0)
    if presence < settings.min_presence or not cands:
        return Resolution('not_there', _empty(shape), best_score,
                          f'I do not see any {noun}' + (f' (presence {presence:.2f})'
                                                        if presence else ''), candidates=cands)
    kept, why = _filter_attributes(target, cands, settings)
    if not kept:
        return Resolution('not_there', _empty(shape), best_score, why, candidates=cands)
    reasons = []
    for constraint in referring.constraints:
        anchors = []
        if constraint.anchor is not None:
            anchor_cands, anchor_presence = candidates(constraint.anchor)
            if anchor_presence >= settings.min_presence and anchor_cands:
                anchors, _ = _filter_attributes(constraint.anchor, anchor_cands, settings)
            if not anchors:
                return Resolution('not_there', _empty(shape), best_score,
                                  f'I do not see the {constraint.anchor.words()}',
                                  candidates=cands)
        before = len(kept)
        kept = _apply(constraint, kept, anchors, settings)
        if not kept:
            return Resolution('not_there', _empty(shape), best_score,
                              f'no {target.words()} is {_describe(constraint)}',
                              candidates=cands)
        reasons.append(f'{_describe(constraint)} of {before} {_plural(noun, before)}')
    if len(kept) > 1:
        return Resolution('ambiguous', _empty(shape), max(m.score for m in kept),
                          f'{len(kept)} {_plural(target.words(), len(kept))} fit',
                          ambiguity_question(kept, target), tied=kept, candidates=cands)
    chosen = kept[0]
    reason = ', '.join(reasons) if reasons else f'the only {target.words()}'
    return Resolution('found', chosen.mask.copy(), chosen.score, reason, chosen=chosen,
                      candidates=cands)
