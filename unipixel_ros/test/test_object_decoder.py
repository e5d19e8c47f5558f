"""The object-centric decoder (ModelConfig.object_slots > 0): peaks, mask mixture, selection,
its training batches and losses, checkpoint and ONNX-relevant pieces."""
import pytest
import torch

from unipixel_ros.model.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from unipixel_ros.training.data import TrainingCache
from unipixel_ros.model.network import ModelConfig, UniPixelNet
from unipixel_ros.training.object_training import (ObjectBatchSampler, heat_focal_loss,
                                                object_step_loss)
from unipixel_ros.model.objects import ObjectDecoder, logsumexp
from unipixel_ros.training.train import build_prompts

H, W = 96, 128          # network input
FULL = (192, 256)       # "camera" resolution of the instance maps


def small_config(**kw) -> ModelConfig:
    base = dict(input_width=W, input_height=H, dim=32, widths=(8, 16, 24, 32, 48),
                blocks=(1, 1, 1, 1), heads=2, fusion_blocks=1, object_slots=6, text_dim=16,
                max_text_tokens=5)
    base.update(kw)
    return ModelConfig(**base)


@pytest.fixture(scope='module')
def net():
    torch.manual_seed(0)
    return UniPixelNet(small_config()).eval()


def synthetic_cache(scenes: int = 6, seed: int = 0) -> TrainingCache:
    """Scenes of 2-3 coloured rectangles; expressions name one of them or none."""
    g = torch.Generator().manual_seed(seed)
    rgb = torch.full((scenes, 3, H, W), 90, dtype=torch.uint8)
    inst = torch.zeros(scenes, *FULL, dtype=torch.uint8)
    attrs = torch.full((scenes, 4, 3), -1, dtype=torch.long)
    e_scene, e_target = [], []
    for s in range(scenes):
        n = 2 + s % 2
        for i in range(n):
            y0, x0 = 20 + 50 * (i % 2), 20 + 70 * i
            inst[s, y0:y0 + 40, x0:x0 + 50] = i + 1
            rgb[s, :, y0 // 2:(y0 + 40) // 2, x0 // 2:(x0 + 50) // 2] = torch.tensor(
                [200 * (i == 0), 200 * (i == 1), 200 * (i == 2)], dtype=torch.uint8)[:, None, None]
            attrs[s, i] = torch.tensor([i, i, 1])
            e_scene.append(s)
            e_target.append(i)
        e_scene.append(s)
        e_target.append(-1)
    e = len(e_scene)
    texts = [f'text {i}' for i in range(e)]
    return TrainingCache(
        rgb=rgb, depth_mm=torch.full((scenes, 1, H, W), 700, dtype=torch.int16), instances=inst,
        object_attrs=attrs, expr_scene=torch.tensor(e_scene), expr_target=torch.tensor(e_target),
        expr_text=torch.arange(e), expr_type=torch.zeros(e, dtype=torch.long),
        expr_attrs=torch.zeros(e, 3, dtype=torch.long),
        text_features=torch.randn(e, 5, 16, generator=g).half(),
        text_mask=torch.ones(e, 5, dtype=torch.uint8), texts=texts,
        scene_ids=[f's{i}' for i in range(scenes)])


def test_logsumexp_matches_torch():
    x = torch.randn(4, 7) * 30
    assert torch.allclose(logsumexp(x, 1), torch.logsumexp(x, 1), atol=1e-5)


def test_peaks_are_local_maxima_strongest_first():
    dec = ObjectDecoder(32, 8, 16, slots=3, heads=2, blocks=1)
    heat = torch.full((1, 1, 10, 12), -5.0)
    for (y, x), v in {(2, 3): 4.0, (7, 9): 3.0, (5, 1): 2.0}.items():
        heat[0, 0, y, x] = v
    heat[0, 0, 2, 4] = 3.9          # a neighbour of the first peak, not a peak itself
    cells = dec.peaks(heat)[0].tolist()
    assert cells == [2 * 12 + 3, 7 * 12 + 9, 5 * 12 + 1]


def test_compose_with_a_one_hot_selection_returns_that_instance():
    masks = torch.randn(2, 4, 5, 6) * 3
    scores = torch.full((2, 4), -1e4)
    scores[0, 2] = scores[1, 0] = 0.0
    out = ObjectDecoder.compose(masks, scores)
    assert out.shape == (2, 1, 5, 6)
    assert torch.allclose(out[0, 0], masks[0, 2].clamp(-9.21, 9.21), atol=1e-3)
    assert torch.allclose(out[1, 0], masks[1, 0].clamp(-9.21, 9.21), atol=1e-3)


def test_forward_shapes_and_exists_is_logsumexp_minus_none(net):
    image = torch.randn(2, 3, H, W)
    prompt = net.encode_text(torch.randn(2, 5, 16))
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.float32)
    with torch.no_grad():
        out = net(image, prompt, mask)
        maps = net.image_maps(image)
        obj = net.objects.objects(maps, net.objects.peaks(maps['heat']))
        scores, none = net.objects.select(obj['tokens'], obj['heat'], prompt, mask)
    assert out.mask_logits.shape == (2, 1, H, W)
    assert out.exists_logit.shape == (2,)
    assert out.category_logits.shape == (2, net.config.num_categories)
    assert obj['masks'].shape == (2, 6, H // 2, W // 2)
    assert torch.allclose(out.exists_logit, torch.logsumexp(scores, 1) - none, atol=1e-4)
    with torch.no_grad():
        point = net(image[:1], net.encode_point(torch.tensor([[0.3, 0.6]])), torch.ones(1, 1))
    assert point.mask_logits.shape == (1, 1, H, W)


def test_padding_tokens_do_not_change_the_selection(net):
    image = torch.randn(1, 3, H, W)
    feats = torch.randn(1, 5, 16)
    short = torch.tensor([[1, 1, 0, 0, 0]], dtype=torch.float32)
    other = feats.clone()
    other[:, 2:] = torch.randn(1, 3, 16) * 5
    with torch.no_grad():
        a = net(image, net.encode_text(feats), short)
        b = net(image, net.encode_text(other), short)
    assert torch.allclose(a.exists_logit, b.exists_logit, atol=1e-4)
    assert torch.allclose(a.mask_logits, b.mask_logits, atol=1e-3)


def test_sampler_puts_object_slots_on_their_objects_and_the_rest_on_background():
    cache = synthetic_cache()
    torch.manual_seed(0)
    model = UniPixelNet(small_config())
    sampler = ObjectBatchSampler(cache, model, queries_per_scene=3, point_prompt_prob=1.0,
                                 generator=torch.Generator().manual_seed(1))
    batch = sampler.sample(4)
    s, k = batch['cells'].shape
    assert (s, k) == (4, 6)
    h4, w4 = H // 4, W // 4
    sy, sx = FULL[0] // h4, FULL[1] // w4
    for i in range(s):
        inst = batch['full_masks'][i]                                 # (M, H, W) bool
        for slot in range(k):
            cell = int(batch['cells'][i, slot])
            y, x = (cell // w4) * sy + sy // 2, (cell % w4) * sx + sx // 2
            if slot < inst.shape[0] and batch['valid'][i, slot]:
                # a jittered centre stays within a cell of its own object
                near = inst[slot, max(0, y - sy):y + sy + 1, max(0, x - sx):x + sx + 1]
                assert near.any(), (i, slot)
            else:
                assert not inst[:, y, x].any(), (i, slot)
    assert float(batch['heat'].max()) == 1.0
    assert int((batch['heat'] == 1.0).sum()) == int(batch['valid'].sum())
    assert batch['is_point'].sum() == 4            # one click per scene with probability 1
    assert ((batch['target'] >= -1) & (batch['target'] < 4)).all()


def test_object_losses_train_on_a_fixed_batch():
    cache = synthetic_cache()
    torch.manual_seed(0)
    model = UniPixelNet(small_config())
    sampler = ObjectBatchSampler(cache, model, queries_per_scene=3, point_prompt_prob=0.5,
                                 generator=torch.Generator().manual_seed(2))
    batch = sampler.sample(4)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    first = None
    for _ in range(40):
        loss, parts = object_step_loss(model, batch, build_prompts(model, batch))
        assert torch.isfinite(loss)
        first = first or parts
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert parts['instance_dice'] < 0.6 * first['instance_dice']
    assert parts['heat'] < 0.5 * first['heat']
    assert parts['selection'] < 0.7 * first['selection']
    assert set(parts) >= {'heat', 'instance_bce', 'instance_dice', 'attributes', 'selection',
                          'exists', 'mask_bce', 'mask_dice'}


def test_loss_weights_override_the_defaults_and_weigh_the_total():
    from unipixel_ros.training.object_training import LOSS_WEIGHTS, loss_weights
    assert loss_weights() == LOSS_WEIGHTS
    heavy = loss_weights({'attributes': 2})
    assert heavy['attributes'] == 2.0 and heavy['heat'] == LOSS_WEIGHTS['heat']
    with pytest.raises(ValueError, match='unknown loss parts'):
        loss_weights({'atributes': 2})
    cache = synthetic_cache()
    torch.manual_seed(0)
    model = UniPixelNet(small_config())
    batch = ObjectBatchSampler(cache, model, queries_per_scene=2, point_prompt_prob=0.0,
                               generator=torch.Generator().manual_seed(2)).sample(2)
    prompts = build_prompts(model, batch)
    base, parts = object_step_loss(model, batch, prompts)
    more, _ = object_step_loss(model, batch, prompts, weights=heavy)
    expected = (2.0 - LOSS_WEIGHTS['attributes']) * parts['attributes']
    assert float((more - base).detach()) == pytest.approx(expected, rel=1e-4, abs=1e-6)


def test_heat_focal_loss_is_lower_for_the_right_peaks():
    target = torch.zeros(1, 1, 8, 8)
    target[0, 0, 3, 4] = 1.0
    good = torch.full((1, 1, 8, 8), -6.0)
    good[0, 0, 3, 4] = 6.0
    assert heat_focal_loss(good, target) < 0.1 * heat_focal_loss(-good, target)


def test_a_checkpoint_whose_tensors_do_not_fit_its_config_is_a_checkpoint_error(tmp_path):
    path = save_checkpoint(UniPixelNet(small_config()), tmp_path / 'a.safetensors')
    from safetensors.torch import load_file, save_file
    from safetensors import safe_open
    with safe_open(str(path), framework='pt') as f:
        meta = f.metadata()
    state = load_file(str(path))
    key = next(k for k in state if k.startswith('objects.kernel'))
    state[key] = torch.zeros(3, 3)
    save_file(state, str(tmp_path / 'b.safetensors'), metadata=meta)
    with pytest.raises(CheckpointError, match='b.safetensors'):
        load_checkpoint(tmp_path / 'b.safetensors')


def test_a_training_run_becomes_a_shipped_checkpoint(tmp_path, capsys):
    import json as _json

    from unipixel_ros.cli import main
    torch.manual_seed(0)
    net = UniPixelNet(small_config())
    run = tmp_path / 'run'
    run.mkdir()
    torch.save({'model': net.state_dict(), 'step': 7,
                'model_config': _json.dumps(net.config.to_dict())}, run / 'last.pt')
    out = tmp_path / 'w.safetensors'
    assert main(['weights', '--run', str(run), '--out', str(out)]) == 0
    loaded, meta = load_checkpoint(out)
    assert meta['extra']['step'] == 7
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(),
                                                  loaded.state_dict().values()))
    assert main(['weights', '--run', str(tmp_path / 'nothing'), '--out', str(out)]) == 1
    assert 'no last.pt' in capsys.readouterr().err
