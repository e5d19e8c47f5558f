"""Colour names from the XKCD colour survey, in CIELAB (numpy only).

The XKCD survey names in ``matplotlib.colors.XKCD_COLORS`` (949 names, each the average colour
that survey respondents gave that name) are the reference. A survey name whose head word (its
last word, e.g. "dark *blue*", "greenish *blue*") is one of the eleven basic English colour terms
of Berlin & Kay labels its colour with that term; those 550-odd labelled colours are the
nearest-neighbour references that decide the basic term of any colour. A few common extended
names (navy, teal, maroon, ...) are named on top when they are the closest named colour and
agree with the basic term.

Distances are CIE76 delta E in CIELAB (D65 white, sRGB primaries); the conversion is written
here and tested against published reference values.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Dict, Iterable, Tuple

import numpy as np

#: The eleven basic colour terms of English (Berlin & Kay 1969), "grey" spelled British.
BASIC_TERMS = ('red', 'orange', 'yellow', 'green', 'blue', 'purple', 'pink', 'brown', 'grey',
               'white', 'black')
#: Common extended names (XKCD survey names) that may be said instead of the basic term.
EXTENDED_TERMS = ('navy', 'teal', 'maroon', 'olive', 'beige', 'turquoise', 'lavender', 'magenta',
                  'crimson', 'gold', 'tan', 'lime', 'violet', 'salmon', 'khaki',
                  'mustard', 'burgundy', 'peach', 'lilac', 'mint', 'sky blue', 'forest green',
                  'charcoal', 'scarlet', 'light blue', 'dark green', 'hot pink', 'indigo',
                  'royal blue', 'emerald', 'plum', 'rust', 'coral', 'dark blue', 'light green')
_SYNONYMS = {'gray': 'grey'}
#: Neighbours that vote on the basic term.
_K = 7
#: Below this CIELAB chroma a colour is achromatic: the survey has few names near white, so
#: white / grey / black are decided by lightness L (thresholds below) instead of by neighbours.
ACHROMATIC_CHROMA = 8.0
WHITE_MIN_L, BLACK_MAX_L = 85.0, 25.0

# D65 reference white (CIE 1931 2 deg), XYZ with Y = 1.
_WHITE_D65 = np.array([0.95047, 1.0, 1.08883])
_SRGB_TO_XYZ = np.array([[0.4124564, 0.3575761, 0.1804375],
                         [0.2126729, 0.7151522, 0.0721750],
                         [0.0193339, 0.1191920, 0.9503041]])


@dataclass(frozen=True)
class ColorName:
    """Name of one colour.

    Attributes:
        basic: one of :data:`BASIC_TERMS`.
        extended: one of :data:`EXTENDED_TERMS` when that is the closest named colour and has
            the same basic term, else equal to ``basic``.
        distance: CIE76 delta E from the colour to the prototype of ``extended``.
        confidence: 0..1, share of the ``_K`` nearest survey colours (inverse-distance weighted)
            that carry ``basic``; near 1 deep inside a colour region, ~0.5 on a border.
    """

    basic: str
    extended: str
    distance: float
    confidence: float


def _as_unit_rgb(rgb) -> np.ndarray:
    """(..., 3) sRGB as floats 0..1; integer arrays (and float values > 1) are read as 0..255."""
    arr = np.asarray(rgb)
    if np.issubdtype(arr.dtype, np.integer) or (arr.size and float(np.max(arr)) > 1.0):
        return arr.astype(np.float64) / 255.0
    return arr.astype(np.float64)


def srgb_to_linear(rgb) -> np.ndarray:
    """(..., 3) gamma-encoded sRGB 0..1 (or uint8) -> linear RGB 0..1 (IEC 61966-2-1)."""
    c = np.clip(_as_unit_rgb(rgb), 0.0, 1.0)
    return np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(linear) -> np.ndarray:
    """(..., 3) linear RGB 0..1 -> gamma-encoded sRGB 0..1 (clipped to the gamut)."""
    c = np.clip(np.asarray(linear, dtype=np.float64), 0.0, 1.0)
    return np.where(c <= 0.0031308, 12.92 * c, 1.055 * np.power(c, 1.0 / 2.4) - 0.055)


def srgb_to_lab(rgb) -> np.ndarray:
    """(..., 3) sRGB (uint8 0..255 or float 0..1) -> CIELAB (L 0..100, a, b), D65 white."""
    xyz = srgb_to_linear(rgb) @ _SRGB_TO_XYZ.T / _WHITE_D65
    eps, kappa = 216.0 / 24389.0, 24389.0 / 27.0
    f = np.where(xyz > eps, np.cbrt(xyz), (kappa * xyz + 16.0) / 116.0)
    return np.stack([116.0 * f[..., 1] - 16.0, 500.0 * (f[..., 0] - f[..., 1]),
                     200.0 * (f[..., 1] - f[..., 2])], axis=-1)


def lab_to_srgb(lab) -> np.ndarray:
    """(..., 3) CIELAB -> sRGB floats 0..1 (out-of-gamut values clipped)."""
    lab = np.asarray(lab, dtype=np.float64)
    fy = (lab[..., 0] + 16.0) / 116.0
    f = np.stack([fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0], axis=-1)
    eps, kappa = 216.0 / 24389.0, 24389.0 / 27.0
    xyz = np.where(f ** 3 > eps, f ** 3, (116.0 * f - 16.0) / kappa) * _WHITE_D65
    return linear_to_srgb(xyz @ np.linalg.inv(_SRGB_TO_XYZ).T)


def in_gamut(lab, tolerance: float = 1e-6) -> np.ndarray:
    """(...,) bool: whether CIELAB colours lie inside the sRGB gamut."""
    lab = np.asarray(lab, dtype=np.float64)
    fy = (lab[..., 0] + 16.0) / 116.0
    f = np.stack([fy + lab[..., 1] / 500.0, fy, fy - lab[..., 2] / 200.0], axis=-1)
    eps, kappa = 216.0 / 24389.0, 24389.0 / 27.0
    xyz = np.where(f ** 3 > eps, f ** 3, (116.0 * f - 16.0) / kappa) * _WHITE_D65
    linear = xyz @ np.linalg.inv(_SRGB_TO_XYZ).T
    return np.all((linear >= -tolerance) & (linear <= 1.0 + tolerance), axis=-1)


def _head_term(name: str):
    head = _SYNONYMS.get(name.split()[-1], name.split()[-1])
    return head if head in BASIC_TERMS else None


@functools.lru_cache(maxsize=1)
def _survey() -> Tuple[np.ndarray, Tuple[str, ...], Dict[str, np.ndarray]]:
    """(N, 3) Lab of the survey colours with a basic head word, their basic terms, and
    {name: Lab} of every survey name (spaces, no prefix)."""
    from matplotlib.colors import XKCD_COLORS, to_rgb
    every = {key[len('xkcd:'):]: srgb_to_lab(np.array(to_rgb(hex_value)))
             for key, hex_value in XKCD_COLORS.items()}
    labelled = [(lab, _head_term(name)) for name, lab in sorted(every.items())
                if _head_term(name) is not None]
    return (np.stack([lab for lab, _ in labelled]), tuple(t for _, t in labelled), every)


def basic_color_prototypes() -> Dict[str, np.ndarray]:
    """{basic term: (3,) Lab} of the survey colour named exactly that term ("grey" = "grey")."""
    every = _survey()[2]
    return {term: every[term].copy() for term in BASIC_TERMS}


def extended_color_prototypes() -> Dict[str, np.ndarray]:
    """{extended name: (3,) Lab} of :data:`EXTENDED_TERMS` as the survey gave them."""
    every = _survey()[2]
    return {name: every[name].copy() for name in EXTENDED_TERMS}


def _basic_votes(lab: np.ndarray) -> Tuple[str, float]:
    chroma = float(np.hypot(lab[1], lab[2]))
    if chroma < ACHROMATIC_CHROMA:
        light = float(lab[0])
        term = 'white' if light >= WHITE_MIN_L else 'black' if light <= BLACK_MAX_L else 'grey'
        # Confidence falls to 0.5 at a lightness threshold or at the chroma limit.
        margin = min(abs(light - WHITE_MIN_L), abs(light - BLACK_MAX_L),
                     ACHROMATIC_CHROMA - chroma)
        return term, 0.5 + 0.5 * min(1.0, margin / 5.0)
    refs, terms, _ = _survey()
    d = np.linalg.norm(refs - lab, axis=1)
    nearest = np.argsort(d)[:_K]
    weights: Dict[str, float] = {}
    for i in nearest:
        weights[terms[i]] = weights.get(terms[i], 0.0) + 1.0 / (d[i] + 1.0)
    best = max(weights, key=weights.get)
    return best, weights[best] / sum(weights.values())


@functools.lru_cache(maxsize=1)
def extended_basic_terms() -> Dict[str, str]:
    """{extended name: basic term its own survey colour is named with}."""
    return {name: _basic_votes(lab)[0] for name, lab in extended_color_prototypes().items()}


def name_color(rgb) -> ColorName:
    """Name one sRGB colour (3 values: uint8 0..255, or floats 0..1).

    Returns:
        :class:`ColorName` with the basic term (k-nearest survey colours), the extended name
        when the closest of the basic and extended prototypes is an extended name of the same
        basic term, the delta E to that prototype, and the vote confidence.
    """
    lab = srgb_to_lab(np.asarray(rgb).reshape(3))
    basic, confidence = _basic_votes(lab)
    candidates = dict(basic_color_prototypes())
    candidates.update(extended_color_prototypes())
    dist = {name: float(np.linalg.norm(p - lab)) for name, p in candidates.items()}
    closest = min(dist, key=dist.get)
    ext_basic = extended_basic_terms()
    extended = closest if closest in ext_basic and ext_basic[closest] == basic else basic
    return ColorName(basic=basic, extended=extended, distance=dist[extended],
                     confidence=float(confidence))


def name_colors(rgbs: Iterable) -> list:
    """:func:`name_color` of each colour of an (N, 3) array."""
    return [name_color(c) for c in np.asarray(list(rgbs))]


def basic_terms_of_lab(lab: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Vectorised basic term of many CIELAB colours (the rule of :func:`name_color`).

    Args:
        lab: (N, 3) CIELAB colours.
    Returns:
        (terms, confidence): (N,) int64 indices into :data:`BASIC_TERMS` and (N,) float64 vote
        shares in [0, 1] (achromatic colours: 1). Cost: an (N, ~550) distance matrix, so
        sub-sample large masks first (a few hundred pixels are plenty).
    """
    lab = np.asarray(lab, dtype=np.float64).reshape(-1, 3)
    n = lab.shape[0]
    terms = np.zeros(n, np.int64)
    conf = np.ones(n, np.float64)
    if n == 0:
        return terms, conf
    chroma = np.hypot(lab[:, 1], lab[:, 2])
    achro = chroma < ACHROMATIC_CHROMA
    light = lab[:, 0]
    index = {t: i for i, t in enumerate(BASIC_TERMS)}
    terms[achro] = np.where(light[achro] >= WHITE_MIN_L, index['white'],
                            np.where(light[achro] <= BLACK_MAX_L, index['black'], index['grey']))
    chromatic = np.flatnonzero(~achro)
    if chromatic.size:
        refs, ref_terms, _ = _survey()
        ref_idx = np.array([index[t] for t in ref_terms])
        d = np.sqrt(((lab[chromatic, None, :] - refs[None]) ** 2).sum(-1))
        nearest = np.argpartition(d, _K, axis=1)[:, :_K]
        w = 1.0 / (np.take_along_axis(d, nearest, axis=1) + 1.0)
        votes = np.zeros((chromatic.size, len(BASIC_TERMS)))
        np.add.at(votes, (np.repeat(np.arange(chromatic.size), _K), ref_idx[nearest].ravel()),
                  w.ravel())
        terms[chromatic] = votes.argmax(1)
        conf[chromatic] = votes.max(1) / votes.sum(1)
    return terms, conf


def basic_term_shares(lab) -> np.ndarray:
    """(11,) inverse-distance weighted vote shares of :data:`BASIC_TERMS` for one CIELAB
    colour, from its ``_K`` nearest survey colours (the votes behind :func:`name_color`; the
    achromatic rule is not applied here)."""
    lab = np.asarray(lab, dtype=np.float64).reshape(3)
    refs, terms, _ = _survey()
    d = np.linalg.norm(refs - lab, axis=1)
    shares = np.zeros(len(BASIC_TERMS))
    for i in np.argsort(d)[:_K]:
        shares[BASIC_TERMS.index(terms[i])] += 1.0 / (d[i] + 1.0)
    return shares / shares.sum()
