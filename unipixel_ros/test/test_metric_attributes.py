"""The metric attribute head: features from a measured box, fitting, files, the predictor hook."""
from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip('torch')
pytest.importorskip('safetensors')

from unipixel_ros.dataset.vocab import CATEGORIES, SIZES  # noqa: E402
from unipixel_ros.inference.metric_attributes import (  # noqa: E402
    GEOMETRY_FEATURES, default_metric_attributes_path, feature_vector,
    geometry_features, load_metric_attributes, resolve_metric_attributes)
from unipixel_ros.inference.predictor import Prediction, ReferringPredictor  # noqa: E402
from unipixel_ros.perception.box import ObjectBox  # noqa: E402
from unipixel_ros.training.attribute_fitting import fit_metric_attributes  # noqa: E402
from unipixel_ros.perception.pipeline import estimate_object_geometry  # noqa: E402
from unipixel_ros.perception.synthetic import SceneObject, render_scene  # noqa: E402

#: toy catalogue: (category index, size index) -> (long, short, height) metres
TOY = {(0, 0): (0.06, 0.06, 0.075), (0, 2): (0.068, 0.068, 0.11),
       (6, 0): (0.03, 0.03, 0.03), (6, 2): (0.06, 0.06, 0.06), (2, 0): (0.05, 0.04, 0.06)}


def _geometry(long_m, short_m, height_m, on_plane=True, distance=0.6):
    box = ObjectBox(center=np.array([0.0, 0.0, distance]), rotation=np.eye(3),
                    extent=np.array([short_m, long_m, height_m]), gravity_aligned=on_plane)
    return SimpleNamespace(box=box)


def _toy_samples(n: int, seed: int):
    """Objects from TOY with 2 mm measurement noise; the 'network' guesses category right 70%
    of the time and size by chance, as uninformative heads would."""
    rng = np.random.default_rng(seed)
    keys = list(TOY)
    feats, cats, sizes = [], [], []
    for _ in range(n):
        c, s = keys[rng.integers(len(keys))]
        dims = np.asarray(TOY[(c, s)]) + rng.normal(0, 0.002, 3)
        cat_p = np.full(len(CATEGORIES), 0.3 / (len(CATEGORIES) - 1))
        cat_p[c if rng.random() < 0.7 else (c + 1) % len(CATEGORIES)] = 0.7
        size_p = rng.dirichlet(np.ones(len(SIZES)))
        feats.append(feature_vector(_geometry(*dims), cat_p, size_p))
        cats.append(c)
        sizes.append(s)
    return np.stack(feats), np.array(cats), np.array(sizes)


def test_geometry_features_from_a_box_standing_on_a_plane_and_from_a_free_box():
    f = geometry_features(_geometry(0.08, 0.05, 0.12))
    assert len(f) == len(GEOMETRY_FEATURES)
    np.testing.assert_allclose(f[:4], [0.08, 0.05, 0.12, 1.0], atol=1e-6)
    assert f[4] == pytest.approx(0.6)
    # without a support plane the axes mean nothing: the longest side is taken as the height
    free = geometry_features(_geometry(0.08, 0.05, 0.03, on_plane=False))
    np.testing.assert_allclose(free[:4], [0.05, 0.03, 0.08, 0.0], atol=1e-6)


def test_features_of_a_real_measured_object():
    """The pipeline's box of a rendered 5 x 4 x 8 cm box gives its footprint and height."""
    scene = render_scene([SceneObject.box((0.0, 0.0), 0.05, 0.04, 0.08, yaw_deg=20)],
                         noise_sigma=0.0)
    mask = scene.masks[0]
    geometry = estimate_object_geometry(mask, scene.depth_mm, '16UC1', scene.intrinsics)
    long_m, short_m, height_m = geometry_features(geometry)[:3]
    assert long_m == pytest.approx(0.05, abs=0.008)
    assert short_m == pytest.approx(0.04, abs=0.008)
    assert height_m == pytest.approx(0.08, abs=0.006)


def test_fit_learns_size_from_the_box_where_the_size_head_is_uninformative():
    x, c, s = _toy_samples(1500, seed=0)
    head = fit_metric_attributes(x, c, s, list(CATEGORIES), list(SIZES), epochs=300)
    xt, ct, st = _toy_samples(400, seed=1)
    cat_logits, size_logits = head.logits(xt)
    assert (size_logits.argmax(1) == st).mean() > 0.97       # chance is ~0.5 here
    assert (cat_logits.argmax(1) == ct).mean() > 0.95        # the heads alone: 0.70


def test_save_load_round_trip_and_bad_files(tmp_path):
    x, c, s = _toy_samples(300, seed=2)
    head = fit_metric_attributes(x, c, s, list(CATEGORIES), list(SIZES), epochs=50)
    path = head.save(tmp_path / 'm_metric_attributes.safetensors')
    loaded = load_metric_attributes(path)
    for a, b in zip(head.logits(x), loaded.logits(x)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    assert loaded.categories == list(CATEGORIES) and loaded.info['file'] == path.name

    with pytest.raises(FileNotFoundError, match='does not exist'):
        load_metric_attributes(tmp_path / 'missing.safetensors')
    corrupt = tmp_path / 'corrupt.safetensors'
    corrupt.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match='corrupt.safetensors'):
        load_metric_attributes(corrupt)
    from safetensors.numpy import save_file
    other = tmp_path / 'other.safetensors'
    save_file({'w': np.zeros(3, np.float32)}, str(other))
    with pytest.raises(ValueError, match='format tag'):
        load_metric_attributes(other)


def test_resolve_auto_none_and_path(tmp_path):
    ckpt = tmp_path / 'model.safetensors'
    assert default_metric_attributes_path(ckpt) == tmp_path / 'model_metric_attributes.safetensors'
    assert resolve_metric_attributes('auto', ckpt) is None          # nothing fitted yet
    x, c, s = _toy_samples(100, seed=3)
    fit_metric_attributes(x, c, s, list(CATEGORIES), list(SIZES), epochs=5).save(
        default_metric_attributes_path(ckpt))
    assert resolve_metric_attributes('auto', ckpt) is not None
    assert resolve_metric_attributes('none', ckpt) is None
    assert resolve_metric_attributes(str(default_metric_attributes_path(ckpt)), None) is not None
    with pytest.raises(FileNotFoundError):
        resolve_metric_attributes(str(tmp_path / 'nope.safetensors'), ckpt)


class _Engine:
    """Just enough of an Engine for the predictor's constructor."""
    metadata: dict = {}


def _prediction(found: bool) -> Prediction:
    cat_p = np.full(len(CATEGORIES), 0.01)
    cat_p[1] = 1.0 - 0.01 * (len(CATEGORIES) - 1)
    return Prediction(np.zeros((4, 4), np.float32), np.ones((4, 4), bool), 0.9, found, None,
                      {'category': (CATEGORIES[1], 0.94), 'color': ('red', 0.99),
                       'size': (SIZES[1], 0.5)}, {}, '',
                      {'category': cat_p, 'color': np.array([1.0]),
                       'size': np.array([0.25, 0.5, 0.25])})


def test_predictor_refines_found_objects_only_and_checks_the_vocabulary():
    x, c, s = _toy_samples(1500, seed=4)
    head = fit_metric_attributes(x, c, s, list(CATEGORIES), list(SIZES), epochs=300)
    predictor = ReferringPredictor(_Engine(), metric_attributes=head)
    tall_cup = _geometry(*TOY[(0, 2)])
    pred = predictor.refine_attributes(_prediction(found=True), tall_cup)
    assert pred.attributes_source == 'network+geometry'
    assert pred.attributes['size'][0] == SIZES[2] and pred.attributes['color'] == ('red', 0.99)
    missed = predictor.refine_attributes(_prediction(found=False), tall_cup)
    assert missed.attributes_source == 'network' and missed.attributes['size'][0] == SIZES[1]
    unmeasured = predictor.refine_attributes(_prediction(found=True), None)
    assert unmeasured.attributes_source == 'network'
    assert ReferringPredictor(_Engine()).refine_attributes(_prediction(True), tall_cup) \
        .attributes_source == 'network'

    head.sizes = ['tiny', 'huge', 'giant']
    with pytest.raises(ValueError, match='another vocabulary'):
        ReferringPredictor(_Engine(), metric_attributes=head)


def test_describe_names_the_colour_of_the_pixels_unless_told_to_trust_the_head():
    from unipixel_ros.inference.settings import DecisionSettings
    rgb = np.zeros((4, 4, 3), np.uint8)
    rgb[...] = (40, 70, 190)                          # a blue object; the head says red
    pixels = DecisionSettings(describe_color='measured')
    measured = ReferringPredictor(_Engine(), pixels).refine_attributes(_prediction(True), None,
                                                                       rgb)
    assert measured.attributes['color'][0] == 'blue' and 0.5 < measured.attributes['color'][1] <= 1
    assert measured.attributes_source == 'network+pixels'
    head_only = ReferringPredictor(_Engine())                 # the default: the colour head
    assert head_only.refine_attributes(_prediction(True), None, rgb).attributes['color'] == \
        ('red', 0.99)
    assert ReferringPredictor(_Engine(), pixels).refine_attributes(
        _prediction(False), None, rgb).attributes['color'] == ('red', 0.99)   # nothing found
    rgb[...] = (12, 12, 12)
    black = ReferringPredictor(_Engine(), pixels).refine_attributes(_prediction(True), None, rgb)
    assert black.attributes['color'][0] == 'black' and black.attributes['color'][1] > 0
    with pytest.raises(ValueError, match='describe_color'):
        DecisionSettings(describe_color='guess')


def test_the_node_parameter_accepts_the_two_colour_sources_only():
    from unipixel_ros.ros.parameters import PARAMETERS, check_parameter, decision_settings
    defaults = {name: default for name, default, *_ in PARAMETERS}
    assert defaults['describe_color'] == 'network'
    assert decision_settings(defaults.get).describe_color == 'network'
    assert check_parameter('describe_color', 'measured', defaults.get) is None
    assert 'measured, network' in check_parameter('describe_color', 'head', defaults.get)
