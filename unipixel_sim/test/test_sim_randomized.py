"""Randomized generator: expressions resolve, masks, sensor depth vs clean depth vs geometry,
held-out factor values, colour names in the images, determinism, dataset reading, grasps."""
import json

import mujoco
import numpy as np
import pytest

from unipixel_ros.dataset import ReferringDataset, load_index, load_scene
from unipixel_ros.perception import backproject, erode_mask
from unipixel_ros.perception.color_naming import linear_to_srgb, name_color, srgb_to_linear
from unipixel_sim import grasp_check, sensor
from unipixel_sim.expressions import resolve
from unipixel_sim.generate import generate_dataset, render_scene
from unipixel_sim.language import contains_phrase, held_out_phrases
from unipixel_sim.randomized import (CAMERA_RANGES, HELD_OUT, RELATIVE_SIZE_RATIO,
                                     RandomSceneSpec, build_random_model, generate_random_scene,
                                     held_out_values)
from unipixel_sim.scene import object_body_ids, set_observe_pose

TRAIN_SCENES, SHIFTED_SCENES = 12, 8


@pytest.fixture(scope='module')
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp('randomized')
    generate_dataset(root, TRAIN_SCENES, seed=200, workers=2, generator='randomized',
                     progress=False)
    summary = generate_dataset(root, SHIFTED_SCENES, seed=200, workers=2,
                               generator='randomized', split='shifted', progress=False)
    info = load_index(root)
    records = [load_scene(root / s['split'] / s['id']) for s in info['scenes']]
    return root, info, records, summary


def test_index_names_splits_and_factors(dataset):
    root, info, records, summary = dataset
    assert len(records) == TRAIN_SCENES + SHIFTED_SCENES
    assert info['counts']['shifted']['scenes'] == SHIFTED_SCENES
    assert sum(info['counts'][s]['scenes'] for s in ('train', 'val', 'test')) == TRAIN_SCENES
    for entry in info['scenes']:
        f = entry['factors']
        assert {'table_texture', 'lighting', 'camera_profile', 'elevation_deg', 'distance_m',
                'held_out'} <= set(f)
        assert (entry['split'] == 'shifted') == (f['split'] == 'shifted')
    assert summary['held_out'] and 'shifted' not in {r.split for r in records[:TRAIN_SCENES]}
    # The shifted split is read only when asked for.
    n_shifted = sum(len(r.expressions) for r in records if r.split == 'shifted')
    assert len(ReferringDataset(root, 'shifted')) == n_shifted > 0
    assert len(ReferringDataset(root)) == sum(len(r.expressions) for r in records) - n_shifted


def test_every_expression_resolves_as_labelled(dataset):
    records = dataset[2]
    n_positive = 0
    for r in records:
        texts = [e['text'] for e in r.expressions]
        assert len(set(texts)) == len(texts) and len(texts) >= 2, r.scene_id
        for e in r.expressions:
            found = resolve(e['structure'], r.objects)
            assert found == ([] if e['target'] is None else [e['target']]), (r.scene_id, e)
            n_positive += e['target'] is not None
    assert n_positive >= 2 * len(records)


def test_positive_targets_have_masks_and_words_fit_them(dataset):
    for r in dataset[2]:
        for k, e in enumerate(r.expressions):
            mask = r.target_mask(k)
            if e['target'] is None:
                assert not mask.any()
                continue
            assert mask.sum() >= 150, (r.scene_id, e['text'])
            obj = r.objects[e['target']]
            # An extended colour name is only said of an object that has it.
            for other in r.objects:
                ext = other['color_extended']
                if ext != other['color'] and contains_phrase(e['text'], ext):
                    assert any(o['color_extended'] == ext for o in r.objects)
            desc = e['structure']['target']
            if desc.get('size'):
                same = [o['volume'] for o in r.objects if o is not obj
                        and o['category'] == obj['category']]
                assert same, e['text']
                if desc['size'] == 'small':
                    assert min(same) >= RELATIVE_SIZE_RATIO * obj['volume'] * 0.999
                else:
                    assert obj['volume'] >= RELATIVE_SIZE_RATIO * max(same) * 0.999


def test_sensor_depth_against_clean_depth(dataset):
    for r in dataset[2]:
        spec = RandomSceneSpec.from_dict(r.meta['scene'])
        clean, noisy, fx = r.depth_clean_m, r.depth_m, r.intrinsics.fx
        assert clean is not None and clean.shape == noisy.shape
        assert np.all(noisy[clean == 0] == 0)      # no reading where nothing was hit
        inner = (noisy > 0) & (clean > 0) & ~sensor.depth_edges(clean)
        assert inner.mean() > 0.5, r.scene_id
        # 5 sigma of the sensor noise, one disparity step, and 1 mm of PNG rounding for each.
        bound = (5 * sensor.depth_sigma(clean, spec.sensor, fx)
                 + sensor.depth_quantum(clean, spec.sensor, fx) + 0.0011)
        err = np.abs(noisy - clean)
        assert np.mean(err[inner] > bound[inner]) < 1e-3, r.scene_id
        # Realistic depth: a far object has a larger error than a near one (noise ~ z^2),
        # and some valid clean pixels have no sensor reading (edges, holes, stereo band).
        assert np.mean((noisy == 0) & (clean > 0)) > 0.002
    far = [r for r in dataset[2] if np.median(r.depth_clean_m[r.depth_clean_m > 0]) > 0.9]
    near = [r for r in dataset[2] if np.median(r.depth_clean_m[r.depth_clean_m > 0]) < 0.7]
    if far and near:
        def spread(rs):
            return np.median([np.median(np.abs(r.depth_m - r.depth_clean_m)[
                (r.depth_m > 0) & (r.depth_clean_m > 0)]) for r in rs])
        assert spread(far) >= spread(near)


def test_clean_depth_lies_on_object_surfaces(dataset):
    """Clean depth, back-projected with K and T_world_camera, against mj_ray on the geometry."""
    errors, wrong, total = [], 0, 0
    for r in dataset[2][:6]:
        spec = RandomSceneSpec.from_dict(r.meta['scene'])
        model = build_random_model(spec, with_robot=spec.meta.get('robot', True))
        data = mujoco.MjData(model)
        set_observe_pose(model, data)
        for i, obj in enumerate(r.objects):
            adr = model.jnt_qposadr[model.joint(f'obj_{i}_joint').id]
            pose = np.asarray(obj['T_world_object'])
            quat = np.zeros(4)
            mujoco.mju_mat2Quat(quat, pose[:3, :3].ravel())
            data.qpos[adr:adr + 7] = np.concatenate([pose[:3, 3], quat])
        mujoco.mj_forward(model, data)
        bodies = object_body_ids(model)
        origin = r.T_world_camera[:3, 3].copy()
        for i in range(len(r.objects)):
            mask = erode_mask(r.instances == i + 1, 1)
            if mask.sum() < 20:
                continue
            cloud = backproject(mask, r.depth_clean_m, r.intrinsics)
            world = cloud.points.astype(np.float64) @ r.T_world_camera[:3, :3].T + origin
            rays = world - origin
            length = np.linalg.norm(rays, axis=1)
            n = len(rays)
            geom, dist = np.zeros(n, np.int32), np.zeros(n)
            mujoco.mj_multiRay(model, data, origin, (rays / length[:, None]).ravel(), None, 1,
                               -1, geom, dist, None, n, 10.0)
            hit = np.where(geom >= 0, model.geom_bodyid[geom], -1)
            ok = hit == bodies[i]
            wrong += int(np.sum(~ok))
            total += n
            errors.append(np.abs(length[ok] - dist[ok]))
    err = np.concatenate(errors)
    assert np.median(err) <= 0.002 and np.percentile(err, 95) <= 0.003
    assert wrong / total < 0.01


def test_held_out_values_only_in_the_shifted_split(dataset):
    records = dataset[2]
    phrases = held_out_phrases()
    shifted_kinds = set()
    for r in records:
        found = held_out_values(r.meta['factors'])
        words = [w for e in r.expressions for w in e['held_out_words']]
        if r.split == 'shifted':
            assert r.meta['factors']['held_out'], r.scene_id
            shifted_kinds |= {k for k, _ in found} | ({'language'} if words else set())
        else:
            assert found == [] and r.meta['factors']['held_out'] == [], (r.scene_id, found)
            assert words == []
            for e in r.expressions:
                assert not [p for p in phrases if contains_phrase(e['text'], p)], e['text']
            for o in r.objects:
                assert f"{o['category']}/{o['shape_variant']}" not in HELD_OUT['shape_variant']
                assert o['color_extended'] not in HELD_OUT['color_extended']
    assert len(shifted_kinds) >= 4, shifted_kinds


def test_factor_sampler_over_many_seeds():
    """No rendering: 300 training scenes never draw a held-out value; every shifted scene
    draws at least one, and every kind of held-out value turns up."""
    for seed in range(300):
        f = generate_random_scene(seed, 'train').factors
        assert held_out_values(f) == [] and f['held_out'] == [], seed
        lo, hi = CAMERA_RANGES['elevation_deg'][0]
        assert lo <= f['elevation_deg'] <= hi
    kinds = set()
    for seed in range(150):
        f = generate_random_scene(seed, 'shifted').factors
        found = held_out_values(f)
        assert found and set(f['held_out']) == {_kind(k) for k, _ in found}, (seed, f)
        kinds |= {_kind(k) for k, _ in found}
    assert kinds == {'texture', 'lighting', 'camera_profile', 'elevation_deg', 'distance_m',
                     'shape_variant', 'color_extended', 'pattern'}


def _kind(key):
    return 'texture' if key.endswith('_texture') else key


def test_rendered_colours_keep_their_names(dataset):
    """Median colour of each solid object, exposure-normalised to its material's brightness,
    is named with the object's colour (white balance and exposure keep hues true)."""
    named = total = 0
    for r in dataset[2]:
        for k, o in enumerate(r.objects):
            if o['distractor'] or o['pattern'] != 'solid':
                continue
            mask = erode_mask(r.instances == k + 1, 2)
            if mask.sum() < 300:
                continue
            median = np.median(srgb_to_linear(r.rgb[mask]), axis=0)
            ref = srgb_to_linear(np.array(o['color_rgb']))
            median = median * ref.max() / max(float(median.max()), 1e-6)
            total += 1
            named += name_color(linear_to_srgb(median)).basic == o['color']
    assert total >= 20 and named / total >= 0.9, (named, total)


def test_same_seed_same_scene():
    a = render_scene(7, width=160, height=120, generator='randomized')
    b = render_scene(7, width=160, height=120, generator='randomized')
    assert json.dumps(a.spec.to_dict()) == json.dumps(b.spec.to_dict())
    assert json.dumps(a.expressions) == json.dumps(b.expressions)
    for x, y in ((a.frame.rgb, b.frame.rgb), (a.frame.depth, b.frame.depth),
                 (a.frame.instances, b.frame.instances), (a.depth_clean, b.depth_clean)):
        assert np.array_equal(x, y)
    c = render_scene(7, width=160, height=120, generator='randomized', split='shifted')
    assert c.spec.to_dict() != a.spec.to_dict()
    assert RandomSceneSpec.from_dict(a.spec.to_dict()).to_dict() == a.spec.to_dict()


def test_distractors_are_generic_and_read_as_out_of_vocabulary(dataset):
    root, _, records, _ = dataset
    distractors = [(r, i) for r in records for i, o in enumerate(r.objects) if o['distractor']]
    assert distractors and all(r.objects[i]['category'] == 'object' for r, i in distractors)
    generic = ('object', 'thing', 'item')
    for r in records:
        for e in r.expressions:
            if e['target'] is not None and r.objects[e['target']]['distractor']:
                assert any(contains_phrase(e['text'], w) for w in generic), e['text']
    data = ReferringDataset(root, 'train')
    for i in range(len(data)):
        scene_dir, k = data.index[i]
        meta = json.loads((scene_dir / 'meta.json').read_text())
        target = meta['expressions'][k]['target']
        if target is not None and meta['objects'][target]['distractor']:
            sample = data[i]
            assert sample['category'] == -1 and sample['mask'].any()


def test_grasps_on_randomized_shapes():
    report = grasp_check.run_grasp_check(trials=6, seed=11, progress=False,
                                         generator='randomized')
    assert report['trials'] == 6 and report['successes'] >= 5, report['failures']
    assert sum(v['trials'] for v in report['per_shape_variant'].values()) == 6
