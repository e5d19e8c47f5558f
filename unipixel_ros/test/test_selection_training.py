"""Selection fine-tuning on detected candidates (model/selection_training.py): the cached
candidates rebuild exactly the tokens inference builds, the labels and loss, and that training
moves the selection and nothing else."""
import pytest
import torch

from unipixel_ros.training.selection_training import (CandidateSet, Queries, SELECTION_MODULES,
                                                   SELECTION_PARAMETERS, collect_candidates,
                                                   expression_queries, finetune_selection,
                                                   positives, score_queries,
                                                   selection_loss, selection_metrics)
from unipixel_ros.model.network import UniPixelNet

from test_object_decoder import small_config, synthetic_cache


@pytest.fixture()
def net():
    torch.manual_seed(0)
    return UniPixelNet(small_config()).eval()


def _is_selection(name: str) -> bool:
    return (any(name.startswith(m + '.') for m in SELECTION_MODULES)
            or name in SELECTION_PARAMETERS)


def test_cached_candidates_rebuild_the_tokens_and_scores_of_inference(net):
    cache = synthetic_cache()
    cands = collect_candidates(net, cache, progress=False, keep_masks=True)
    s, k = len(cache.scene_ids), net.config.object_slots
    assert cands.pooled.shape == (s, k, net.config.dim) and cands.iou.shape == (s, k, 4)
    assert cands.masks.shape == (s, k, 48, 64) and cands.gt_masks.shape == (s, 4, 48, 64)
    with torch.no_grad():
        image = net.normalize_image(cache.rgb.float() / 255)
        maps = net.image_maps(image)
        obj = net.objects.objects(maps, net.objects.peaks(maps['heat']))
        rebuilt = net.objects.tokens(cands.pooled, cands.center, cands.geometry)
        assert torch.allclose(rebuilt, obj['tokens'], atol=1e-5)
        assert torch.allclose(cands.heat, obj['heat'])
        q = expression_queries(cache)
        scores, none = score_queries(net, cands, q, cache.text_features, cache.text_mask)
        prompt = net.encode_text(cache.text_features.float())
        ref_scores, ref_none = net.objects.select(obj['tokens'][q.scene], obj['heat'][q.scene],
                                                  prompt, cache.text_mask.float())
    assert torch.allclose(scores, ref_scores, atol=1e-4)
    assert torch.allclose(none, ref_none, atol=1e-4)
    assert (cands.iou >= 0).all() and (cands.iou <= 1).all()
    # objects 3 (index 3) never exist in the synthetic scenes: no candidate overlaps them
    assert (cands.iou[:, :, 3] == 0).all() and not cands.clickable[:, 3].any()
    assert cands.clickable[:, :2].all()


def _hand_made(iou: list) -> CandidateSet:
    iou_t = torch.tensor(iou, dtype=torch.float32)[None]            # (1, K, M)
    k, m = iou_t.shape[1:]
    zeros = torch.zeros(1, k, 4)
    return CandidateSet(pooled=zeros, center=zeros, geometry=zeros, heat=torch.zeros(1, k),
                        iou=iou_t, clicks=torch.zeros(1, m, 4, 2),
                        clickable=torch.ones(1, m, dtype=torch.bool))


def test_positives_are_the_best_matching_candidate_or_all_matching_ones():
    # candidate 0 covers object 0 well, candidate 1 half-covers it, candidate 2 is object 1
    cands = _hand_made([[0.9, 0.0], [0.6, 0.0], [0.0, 0.4]])
    q = Queries(scene=torch.zeros(3, dtype=torch.long), target=torch.tensor([0, 1, -1]),
                text=torch.zeros(3, dtype=torch.long), uv=torch.zeros(3, 2))
    best = positives(cands, q, min_iou=0.5)
    assert best.tolist() == [[True, False, False], [False, False, False], [False, False, False]]
    every = positives(cands, q, min_iou=0.5, best_only=False)
    assert every[0].tolist() == [True, True, False]


def test_selection_loss_is_minus_log_the_mass_on_the_right_answer():
    scores = torch.tensor([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    none = torch.tensor([0.5, 1.0])
    pos = torch.tensor([[True, False, False], [False, False, False]])
    absent = torch.tensor([False, True])
    logits = torch.cat([scores, none[:, None]], 1)
    expected = -(torch.log_softmax(logits[0], 0)[0] + torch.log_softmax(logits[1], 0)[3]) / 2
    assert torch.isclose(selection_loss(scores, none, pos, absent), expected)


def test_finetuning_moves_the_selection_and_nothing_else(net):
    cache = synthetic_cache(scenes=8)
    cands = collect_candidates(net, cache, progress=False, keep_masks=True)
    q = expression_queries(cache)
    # the untrained detector finds nothing; make candidate i the object i (the fine-tuning is
    # about choosing among candidates, which this isolates)
    k, m = cands.iou.shape[1:]
    cands.iou = torch.eye(k, m).expand_as(cands.iou).clone()
    before = {n: t.clone() for n, t in net.state_dict().items()}
    result = finetune_selection(net, cands, q, cache.text_features, cache.text_mask, cands, q,
                                cache.text_features, cache.text_mask, epochs=8, batch_size=8,
                                lr=3e-3, progress=False, select_by='top1_match')
    history = result['history']
    assert len(history) == 9 and history[0]['epoch'] == 0
    assert history[-1]['train_loss'] < history[1]['train_loss']
    assert result['best']['top1_match'] >= history[0]['top1_match']
    after = net.state_dict()
    changed = {n for n in before if not torch.equal(before[n], after[n])}
    assert changed and all(_is_selection(n) for n in changed), sorted(changed)
    assert any(n.startswith('objects.blocks.') for n in changed)
    assert all(p.requires_grad for p in net.parameters())   # handed back trainable


def test_selection_metrics_report_mask_numbers_only_with_masks(net):
    cache = synthetic_cache()
    q = expression_queries(cache)
    with_masks = collect_candidates(net, cache, progress=False, keep_masks=True)
    without = collect_candidates(net, cache, progress=False)
    full = selection_metrics(net, with_masks, q, cache.text_features, cache.text_mask, 0.5)
    short = selection_metrics(net, without, q, cache.text_features, cache.text_mask, 0.5)
    assert {'mask_ciou', 'mask_prec_50'} <= set(full) and 'mask_ciou' not in short
    for key in ('top1_match', 'prec_50', 'exists_acc'):
        assert 0.0 <= full[key] == short[key] <= 100.0
    both = CandidateSet.concat([with_masks, with_masks])
    assert both.masks.shape[0] == 2 * len(cache.scene_ids)
    assert CandidateSet.concat([without, without]).masks is None


def test_mask_sharpness_turns_an_undecided_mixture_into_the_top_object(net, tmp_path):
    from unipixel_ros.model.checkpoint import load_checkpoint, save_checkpoint
    cache = synthetic_cache(scenes=1)
    with torch.no_grad():
        image = net.normalize_image(cache.rgb.float() / 255)
        maps = net.image_maps(image)
        obj = net.objects.objects(maps, net.objects.peaks(maps['heat']))
        k = obj['masks'].shape[1]
        undecided = torch.zeros(1, k)
        undecided[0, :2] = torch.tensor([1.0, 0.6])      # 60 / 40 between two objects
        one_hot = torch.full((1, k), -1e4)
        one_hot[0, 0] = 0.0
        none = torch.zeros(1)
        soft = net.finish_objects(image, maps, obj['masks'], undecided, none).mask_logits
        net.config.mask_sharpness = 64.0
        sharp = net.finish_objects(image, maps, obj['masks'], undecided, none).mask_logits
        top = net.finish_objects(image, maps, obj['masks'], one_hot, none).mask_logits
        # the exists logit reads the raw scores: sharpness changes the mask only
        assert torch.equal(net.objects.exists_logit(undecided, none),
                           net.finish_objects(image, maps, obj['masks'], undecided,
                                              none).exists_logit)
    assert torch.allclose(sharp, top, atol=1e-3)
    assert not torch.allclose(soft, top, atol=1e-2)
    path = save_checkpoint(net, tmp_path / 'sharp.safetensors')
    assert load_checkpoint(path)[0].config.mask_sharpness == 64.0
    net.config.mask_sharpness = 1.0
