"""The generated 50-scene dataset: unique resolution, masks, depth vs ray casting, preview."""
import json
from collections import Counter

import mujoco
import numpy as np
import pytest
from PIL import Image

from unipixel_ros.dataset import ReferringDataset, load_index, load_scene
from unipixel_ros.perception import backproject, erode_mask
from unipixel_sim.expressions import EXPRESSION_TYPES, resolve
from unipixel_sim.generate import render_scene
from unipixel_sim.preview import make_preview
from unipixel_sim.scene import SceneSpec, build_model, object_body_ids, set_observe_pose


def _records(root):
    info = load_index(root)
    return [load_scene(root / s['split'] / s['id']) for s in info['scenes']]


@pytest.fixture(scope='module')
def records(generated_dataset):
    return _records(generated_dataset[0])


def test_index_counts_and_splits(generated_dataset, records):
    root, summary = generated_dataset
    info = load_index(root)
    scenes = summary['scenes']
    assert len(info['scenes']) == scenes == len(records) == 50
    assert sum(c['scenes'] for c in info['counts'].values()) == scenes
    assert info['counts']['train']['scenes'] > info['counts']['test']['scenes']
    n = sum(len(r.expressions) for r in records)
    assert n == summary['expressions'] >= 3.5 * scenes
    assert len(ReferringDataset(root)) == n
    assert sum(len(ReferringDataset(root, s)) for s in ('train', 'val', 'test')) == n


def test_expression_mix(records):
    exprs = [e for r in records for e in r.expressions]
    types = Counter(e['type'] for e in exprs)
    assert set(types) == set(EXPRESSION_TYPES)
    absent = sum(e['target'] is None for e in exprs) / len(exprs)
    assert 0.10 <= absent <= 0.30
    assert all(e['inner_type'] != 'command' for e in exprs)
    assert all((e['type'] == 'command') == (e['type'] != e['inner_type']) for e in exprs)


def test_every_expression_resolves_as_labelled(records):
    for r in records:
        texts = [e['text'] for e in r.expressions]
        assert len(set(texts)) == len(texts)
        for e in r.expressions:
            found = resolve(e['structure'], r.objects)
            assert found == ([] if e['target'] is None else [e['target']]), (r.scene_id, e)


def test_positive_targets_have_masks(records):
    for r in records:
        for k, e in enumerate(r.expressions):
            mask = r.target_mask(k)
            if e['target'] is None:
                assert not mask.any()
            else:
                assert mask.sum() >= 150, (r.scene_id, e['text'])


def test_backprojected_depth_lies_on_object_surfaces(records):
    """Masked depth, back-projected with K and posed with T_world_camera, against mj_ray."""
    errors, wrong_body, n_obj = [], 0, 0
    for r in records[:20]:
        spec = SceneSpec.from_dict(r.meta['scene'])
        model = build_model(spec, with_robot=spec.meta.get('robot', True))
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
            # Silhouette pixels mix surfaces (the ray through the pixel centre may miss).
            mask = erode_mask(r.instances == i + 1, 1)
            if mask.sum() < 20:
                continue
            n_obj += 1
            cloud = backproject(mask, r.depth_m, r.intrinsics)
            world = cloud.points.astype(np.float64) @ r.T_world_camera[:3, :3].T + origin
            rays = world - origin
            length = np.linalg.norm(rays, axis=1)
            n = len(rays)
            geom, dist = np.zeros(n, np.int32), np.zeros(n)
            mujoco.mj_multiRay(model, data, origin, (rays / length[:, None]).ravel(), None, 1,
                               -1, geom, dist, None, n, 10.0)
            hit_body = np.where(geom >= 0, model.geom_bodyid[geom], -1)
            wrong_body += int(np.sum(hit_body != bodies[i]))
            ok = hit_body == bodies[i]
            errors.append(np.abs(length[ok] - dist[ok]))
    err = np.concatenate(errors)
    total = len(err) + wrong_body
    print(f'\n{n_obj} objects, {len(err)} pixels: median {1000 * np.median(err):.2f} mm, '
          f'p95 {1000 * np.percentile(err, 95):.2f} mm, max {1000 * err.max():.1f} mm, '
          f'ray on another body {wrong_body / total:.4%}')
    assert np.median(err) <= 0.002
    assert np.percentile(err, 95) <= 0.002
    assert wrong_body / total < 0.01


def test_dataset_samples(generated_dataset):
    data = ReferringDataset(generated_dataset[0], split='train')
    seen_absent = seen_present = False
    for i in range(0, len(data), 7):
        s = data[i]
        assert s['rgb'].shape == (480, 640, 3) and s['depth_m'].dtype == np.float32
        assert s['mask'].shape == (480, 640) and s['mask'].dtype == bool
        if s['exists']:
            seen_present = True
            assert s['mask'].any() and min(s['category'], s['color'], s['size']) >= 0
        else:
            seen_absent = True
            assert not s['mask'].any() and s['target'] == -1 and s['category'] == -1
    assert seen_absent and seen_present


def test_same_seed_same_expressions():
    a = render_scene(42, width=160, height=120)
    b = render_scene(42, width=160, height=120)
    assert a.spec.to_dict() == b.spec.to_dict()
    assert json.dumps(a.expressions) == json.dumps(b.expressions)
    assert np.array_equal(a.frame.instances, b.frame.instances)


def test_preview_contact_sheet(generated_dataset, tmp_path):
    out = make_preview(generated_dataset[0], tmp_path / 'preview.png')
    with Image.open(out) as sheet:
        assert sheet.size == (4 * 400, 4 * 300)
