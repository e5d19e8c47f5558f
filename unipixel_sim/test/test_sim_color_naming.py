"""Colour naming (unipixel_ros.perception.color_naming) against reference values."""
import numpy as np
import pytest
from matplotlib.colors import CSS4_COLORS, XKCD_COLORS, to_rgb

from unipixel_ros.perception.color_naming import (BASIC_TERMS, EXTENDED_TERMS,
                                                  basic_color_prototypes, extended_basic_terms,
                                                  lab_to_srgb, name_color, srgb_to_lab)

# sRGB (D65) -> CIELAB reference values (Bruce Lindbloom's colour calculator, 2 deg observer).
LAB_REFERENCE = [
    ((255, 255, 255), (100.0, 0.0, 0.0)),
    ((0, 0, 0), (0.0, 0.0, 0.0)),
    ((255, 0, 0), (53.2408, 80.0925, 67.2032)),
    ((0, 255, 0), (87.7347, -86.1827, 83.1793)),
    ((0, 0, 255), (32.2970, 79.1875, -107.8602)),
    ((128, 128, 128), (53.5850, 0.0, 0.0)),
    ((255, 255, 0), (97.1393, -21.5537, 94.4780)),
]


@pytest.mark.parametrize('rgb, lab', LAB_REFERENCE)
def test_srgb_to_lab_reference_values(rgb, lab):
    assert srgb_to_lab(np.array(rgb, dtype=np.uint8)) == pytest.approx(lab, abs=0.01)


def test_lab_round_trip():
    rgb = np.random.default_rng(0).random((200, 3))
    assert np.abs(lab_to_srgb(srgb_to_lab(rgb)) - rgb).max() < 1e-9


@pytest.mark.parametrize('css, basic', [
    ('red', 'red'), ('lime', 'green'), ('darkgreen', 'green'), ('navy', 'blue'),
    ('royalblue', 'blue'), ('gold', 'yellow'), ('yellow', 'yellow'), ('orange', 'orange'),
    ('purple', 'purple'), ('hotpink', 'pink'), ('saddlebrown', 'brown'), ('gray', 'grey'),
    ('white', 'white'), ('black', 'black'), ('crimson', 'red'), ('darkviolet', 'purple')])
def test_css_colours_get_their_basic_terms(css, basic):
    assert name_color(np.array(to_rgb(CSS4_COLORS[css]))).basic == basic


def test_survey_prototypes_name_themselves():
    protos = basic_color_prototypes()
    assert set(protos) == set(BASIC_TERMS)
    for term, lab in protos.items():
        name = name_color(lab_to_srgb(lab))
        assert name.basic == term and name.distance < 1.0, (term, name)
    # Extended names: the survey colour of each is named with that extended name.
    for ext, basic in extended_basic_terms().items():
        name = name_color(np.array(to_rgb(XKCD_COLORS['xkcd:' + ext])))
        assert (name.basic, name.extended) == (basic, ext), (ext, name)
    assert extended_basic_terms()['navy'] == 'blue' and \
        extended_basic_terms()['crimson'] == 'red'
    assert len(EXTENDED_TERMS) >= 20


def test_uint8_and_float_inputs_agree_and_confidence_drops_on_a_border():
    a = name_color(np.array([200, 30, 30], dtype=np.uint8))
    b = name_color([200 / 255, 30 / 255, 30 / 255])
    assert a == b and a.basic == 'red' and a.confidence > 0.8
    # Between red and orange (sRGB 255, 80, 0): lower confidence than a clear red.
    assert name_color([1.0, 80 / 255, 0.0]).confidence < a.confidence
