"""Network, losses, metrics and the checkpoint format (no dataset needed)."""
import numpy as np
import pytest
import torch

from unipixel_ros.model.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from unipixel_ros.training.losses import dice_loss
from unipixel_ros.training.metrics import ReferringMetrics
from unipixel_ros.model.network import ModelConfig, UniPixelNet

SMALL = ModelConfig(input_width=64, input_height=48, dim=32, widths=(8, 8, 16, 16, 32),
                    blocks=(1, 1, 1, 1), heads=2, fusion_blocks=1, max_text_tokens=6)


@pytest.fixture(scope='module')
def net():
    torch.manual_seed(0)
    return UniPixelNet(SMALL).eval()


def test_output_shapes_for_text_and_point_prompts(net):
    image = torch.randn(2, 3, 48, 64)
    text = net.encode_text(torch.randn(2, 6, 384))
    out = net(image, text, torch.ones(2, 6))
    assert out.mask_logits.shape == (2, 1, 48, 64) and out.exists_logit.shape == (2,)
    assert out.category_logits.shape == (2, SMALL.num_categories)
    assert out.color_logits.shape == (2, SMALL.num_colors) and out.size_logits.shape == (2, 3)
    point = net.encode_point(torch.tensor([[0.25, 0.5], [0.9, 0.1]]))
    assert point.shape == (2, 1, 32)


def test_padding_tokens_do_not_change_the_answer(net):
    """Text is padded to max_text_tokens at run time: padding must be masked out exactly."""
    torch.manual_seed(1)
    image = torch.randn(1, 3, 48, 64)
    feats = torch.randn(1, 4, 384)
    padded = torch.cat([feats, torch.randn(1, 2, 384) * 10], dim=1)
    mask = torch.tensor([[1, 1, 1, 1, 0, 0]], dtype=torch.float32)
    with torch.no_grad():
        a = net(image, net.encode_text(feats), torch.ones(1, 4))
        b = net(image, net.encode_text(padded), mask)
    torch.testing.assert_close(a.mask_logits, b.mask_logits, atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(a.exists_logit, b.exists_logit, atol=1e-4, rtol=1e-4)


def test_dice_loss_is_near_zero_for_the_right_mask_and_high_for_a_wrong_one():
    mask = torch.zeros(1, 1, 4, 4)
    mask[0, 0, :2, :2] = 1
    logits = torch.where(mask > 0, 20.0, -20.0)
    assert float(dice_loss(logits, mask)) < 1e-3
    assert float(dice_loss(-logits, mask)) > 0.8


def test_configs_of_removed_decoders_are_refused_with_a_pointer_to_the_history():
    """The dense decoder (v1) and the depth-input arm (v3 ablation) live in git history only."""
    for removed in ({'object_slots': 0}, {'use_depth': True}, {'attribute_matching': True}):
        with pytest.raises(ValueError, match='git history'):
            ModelConfig(**removed)


def test_metrics_ciou_vs_miou_and_accuracies():
    m = ReferringMetrics()
    gt_big = np.zeros((10, 10), bool)
    gt_big[:, :] = True                                  # 100 px
    gt_small = np.zeros((10, 10), bool)
    gt_small[0, :4] = True                               # 4 px
    m.update('attribute', gt_big, True, gt_big, True, attributes_correct=True,
             heads_correct=(True, True, True))                                   # IoU 1
    # found, but the mask is on something else (IoU 0): a selection error, so it counts in
    # attribute_acc_found only
    m.update('relation', np.zeros_like(gt_small), True, gt_small, True, attributes_correct=False,
             heads_correct=(False, True, False))
    m.update('absent', np.zeros_like(gt_small), False, np.zeros_like(gt_small), False)
    m.update('absent', gt_small, True, np.zeros_like(gt_small), False)
    s = m.summary()
    assert s['miou'] == 50.0 and s['ciou'] == pytest.approx(100 * 100 / 104, abs=0.01)
    assert s['prec_50'] == 50.0 and s['no_target_acc'] == 50.0 and s['target_acc'] == 100.0
    assert s['attribute_acc'] == 100.0 and s['attribute_acc_found'] == 50.0
    assert s['attribute_head_acc'] == {'category': 100.0, 'color': 100.0, 'size': 100.0}
    assert s['by_type']['attribute']['ciou'] == 100.0 and s['by_type']['absent']['targets'] == 0


def test_checkpoint_round_trip(tmp_path, net):
    path = save_checkpoint(net, tmp_path / 'm.safetensors', extra={'note': 'test'})
    loaded, meta = load_checkpoint(path)
    assert meta['extra'] == {'note': 'test'} and meta['model_config']['dim'] == 32
    image, prompt = torch.randn(1, 3, 48, 64), torch.randn(1, 6, 32)
    with torch.no_grad():
        torch.testing.assert_close(net(image, prompt, torch.ones(1, 6)).mask_logits,
                                   loaded(image, prompt, torch.ones(1, 6)).mask_logits)


def test_missing_and_corrupt_checkpoints_name_the_file(tmp_path, net):
    missing = tmp_path / 'nope.safetensors'
    with pytest.raises(CheckpointError, match='not found: .*nope.safetensors'):
        load_checkpoint(missing)
    garbage = tmp_path / 'garbage.safetensors'
    garbage.write_bytes(b'\x00' * 64)
    with pytest.raises(CheckpointError, match='garbage.safetensors'):
        load_checkpoint(garbage)
    good = save_checkpoint(net, tmp_path / 'good.safetensors')
    truncated = tmp_path / 'truncated.safetensors'
    truncated.write_bytes(good.read_bytes()[:-1000])
    with pytest.raises(CheckpointError, match='truncated.safetensors'):
        load_checkpoint(truncated)
    pickled = tmp_path / 'pickle.safetensors'
    torch.save({'x': 1}, pickled)                        # a pickle is refused, never executed
    with pytest.raises(CheckpointError, match='pickle.safetensors'):
        load_checkpoint(pickled)


def test_paraphrase_leaves_the_grammar_but_keeps_the_referent():
    from unipixel_ros.training.paraphrase import paraphrase
    assert paraphrase('pick up the red cup') == 'lift the scarlet mug'
    assert paraphrase('the small blue box next to the yellow bottle') == \
        'the little navy carton next to the golden flask'
    assert paraphrase('the cup on the left') == 'the mug on the left'
    assert paraphrase('the leftmost ball') == 'the leftmost sphere'   # words keep their boundaries
