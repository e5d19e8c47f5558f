"""The referring resolver on analytic RGB-D scenes (perception.synthetic): colour, size,
positions, superlatives, ordinals, relations, not there and ambiguous with a question."""
import numpy as np
import pytest

from unipixel_ros.inference.resolver import Proposals, ResolverSettings, resolve_referring
from unipixel_ros.language.concepts import parse_referring
from unipixel_ros.perception.synthetic import SceneObject, render_scene

RED, BLUE, GREEN = (200, 30, 30), (30, 60, 200), (30, 160, 40)


@pytest.fixture(scope='module')
def scene():
    """Two red cups (left small, right tall), one blue cup at the back, a green box."""
    objects = [SceneObject.cylinder((-0.12, 0.0), 0.06, 0.07, RED),       # 0 left, small
               SceneObject.cylinder((0.10, 0.0), 0.06, 0.11, RED),        # 1 right, tall
               SceneObject.cylinder((0.0, 0.15), 0.06, 0.09, BLUE),       # 2 back
               SceneObject.box((0.0, -0.05), 0.05, 0.05, 0.05, 0.0, GREEN)]  # 3 front box
    return render_scene(objects), ['cup', 'cup', 'cup', 'box']


def _answer(scene, text, settings=ResolverSettings()):
    rendered, categories = scene
    ref = parse_referring(text)
    props = {}
    for c in ref.concepts():
        ids = [i for i, cat in enumerate(categories) if c.category in (None, cat)]
        masks = np.stack([rendered.true_masks[i] for i in ids]) if ids else np.zeros(
            (0,) + rendered.rgb.shape[:2], bool)
        props[c.phrase] = Proposals(masks, np.ones(len(ids), np.float32), float(bool(ids)))
    res = resolve_referring(ref, props, rendered.rgb, rendered.depth_m,
                            render_scene.__defaults__ and _intrinsics(), settings)
    index = None
    if res.found:
        index = next(i for i, m in enumerate(rendered.true_masks) if (m == res.mask).all())
    return res, index


def _intrinsics():
    from unipixel_ros.perception.synthetic import DEFAULT_INTRINSICS
    return DEFAULT_INTRINSICS


@pytest.mark.parametrize('text, index', [
    ('the blue cup', 2), ('the box', 3), ('the red cup on the left', 0),
    ('the rightmost red cup', 1), ('the tallest cup', 1), ('the smallest red cup', 0),
    ('the small red cup', 0), ('the big red cup', 1), ('the farthest cup', 2),
    ('the mug behind the green box', 2), ('the red cup left of the blue cup', 0),
    ('the cup farthest from the box', 2), ('the second cup from the left', 2),
    ('pick up the last cup from the left', 1), ('the green object', 3),
])
def test_found(scene, text, index):
    res, got = _answer(scene, text)
    assert res.status == 'found', (text, res.reason, res.question)
    assert got == index, (text, res.reason)


@pytest.mark.parametrize('text', ['the yellow cup', 'the ball', 'the red box',
                                  'the cup left of the ball'])
def test_not_there(scene, text):
    res, _ = _answer(scene, text)
    assert res.status == 'not_there', (text, res.reason)
    assert res.reason and not res.mask.any()


def test_ambiguous_names_the_difference(scene):
    res, _ = _answer(scene, 'the red cup')
    assert res.status == 'ambiguous'
    assert res.question == 'Which one, the left or the right red cup?'
    res, _ = _answer(scene, 'the cup')
    assert res.question == 'Which one, the left, the middle or the right cup?'


def test_presence_and_score_thresholds(scene):
    rendered, _ = scene
    ref = parse_referring('the box')
    mask = rendered.true_masks[3][None]
    for presence, score in ((0.1, 1.0), (1.0, 0.05)):
        res = resolve_referring(ref, {'box': Proposals(mask, np.array([score]), presence)},
                                rendered.rgb, rendered.depth_m, _intrinsics())
        assert res.status == 'not_there'


def _answer_from(scene, text, viewpoint):
    rendered, categories = scene
    ref = parse_referring(text)
    props = {}
    for c in ref.concepts():
        ids = [i for i, cat in enumerate(categories) if c.category in (None, cat)]
        props[c.phrase] = Proposals(np.stack([rendered.true_masks[i] for i in ids]),
                                    np.ones(len(ids), np.float32), 1.0)
    res = resolve_referring(ref, props, rendered.rgb, rendered.depth_m, _intrinsics(),
                            viewpoint=viewpoint)
    return next(i for i, m in enumerate(rendered.true_masks) if (m == res.mask).all()) \
        if res.found else None, res


def test_left_right_and_closest_follow_the_target_frame(scene):
    """A camera facing the robot (target_frame base_link, REP-103: x forward, y left, z up):
    the robot's left is the camera's right, and "closest" means closest to the robot, which
    stands on the far side of the table from the camera."""
    from unipixel_ros.inference.resolver import Viewpoint
    # camera optical axes in base_link: x_cam (right in the image) = -y_base... seen from the
    # front: image right = robot's left (+y_base), image down = -z_base, optical axis = -x_base
    rotation = np.array([[0.0, 0.0, -1.0],
                         [1.0, 0.0, 0.0],
                         [0.0, -1.0, 0.0]])
    facing = Viewpoint(rotation, np.array([0.9, 0.0, -0.08]))  # 0.9 m in front of the robot
    camera_left, _ = _answer_from(scene, 'the red cup on the left', None)
    robot_left, res = _answer_from(scene, 'the red cup on the left', facing)
    assert (camera_left, robot_left) == (0, 1), res.reason
    assert _answer_from(scene, 'the red cup left of the blue cup', facing)[0] == 1
    # the blue cup is the farthest from the camera, so the closest to the robot
    assert _answer_from(scene, 'the farthest cup', None)[0] == 2
    assert _answer_from(scene, 'the closest cup', facing)[0] == 2
    # the identity viewpoint of a REP-103 frame on the camera changes nothing but the axes
    # convention: camera x right = -y of a frame whose y points left
    same = Viewpoint(np.array([[0.0, 0.0, 1.0], [-1.0, 0.0, 0.0], [0.0, -1.0, 0.0]]),
                     np.zeros(3))
    assert _answer_from(scene, 'the red cup on the left', same)[0] == 0


def _two_tone_image(top, bottom, size=40):
    """(rgb, mask): a square object whose upper half is ``top``, lower half ``bottom`` (sRGB),
    each with +-6 levels of shading noise, on a grey table."""
    rng = np.random.default_rng(0)
    rgb = np.full((size + 20, size + 20, 3), 128, np.uint8)
    body = np.empty((size, size, 3), np.float64)
    body[: size // 2], body[size // 2:] = top, bottom
    body += rng.uniform(-6, 6, body.shape)
    rgb[10:10 + size, 10:10 + size] = np.clip(body, 0, 255).astype(np.uint8)
    mask = np.zeros(rgb.shape[:2], bool)
    mask[10:10 + size, 10:10 + size] = True
    return rgb, mask


def _measured(rgb, mask, settings=ResolverSettings()):
    from unipixel_ros.inference.resolver import Measured, measure_color, measure_tones
    color, light, shares = measure_color(rgb, mask, settings)
    return Measured(0, mask, 1.0, int(mask.sum()), np.zeros(3), np.ones(3), 1.0, 1.0, 1.0,
                    color, light, shares, tones=measure_tones(rgb, mask, settings))


def test_a_two_tone_object_is_called_by_either_colour_and_not_by_their_mix():
    from unipixel_ros.inference.resolver import color_matches
    rgb, mask = _two_tone_image(RED, GREEN)
    m = _measured(rgb, mask)
    assert sorted(name for name, _, _ in m.tones) == ['green', 'red']
    assert color_matches('red', m) and color_matches('green', m)
    assert not any(color_matches(w, m) for w in ('blue', 'purple', 'yellow'))
    off = ResolverSettings(two_tone_min_delta_e=float('inf'))
    assert _measured(rgb, mask, off).tones == ()


def test_shading_and_small_labels_do_not_make_two_tones():
    # one colour, lit and shaded halves: the L weight keeps them together
    rgb, mask = _two_tone_image((200, 30, 30), (150, 22, 22))
    assert _measured(rgb, mask).tones == ()
    # a thin stripe (below two_tone_min_share) of another colour
    rgb, mask = _two_tone_image(RED, RED)
    rgb[10:16, 10:50] = BLUE
    m = _measured(rgb, mask)
    assert m.tones == () and m.color == 'red'


def test_an_object_without_depth_is_placed_at_the_depth_around_it():
    from unipixel_ros.inference.resolver import fallback_points, measure_candidate
    from unipixel_ros.perception.synthetic import DEFAULT_INTRINSICS as K
    depth = np.full((60, 80), 0.8, np.float32)
    mask = np.zeros(depth.shape, bool)
    mask[20:40, 30:50] = True
    depth[14:46, 24:56] = 0.0          # the hole is wider than the object, as on black plastic
    pts, own = fallback_points(mask, depth, K, ring_px=2)
    assert not own and pts.shape == (400, 3) and np.allclose(pts[:, 2], 0.8)
    rgb = np.full(depth.shape + (3,), 20, np.uint8)
    m = measure_candidate(0, mask, 1.0, rgb, depth, K)
    assert m is not None and m.geometry is None and m.center[2] == pytest.approx(0.8)
    assert m.extent[2] == pytest.approx(m.extent[0]) and m.volume > 0
    assert fallback_points(mask, np.zeros_like(depth), K, ring_px=2) == (None, False)
