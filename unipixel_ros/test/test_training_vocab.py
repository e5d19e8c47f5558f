"""Training data from the randomized simulator: names outside the vocabularies (distractors'
category 'object', colours such as 'brown') become the ignore index -1, never a crash or a real
class, and the object decoder's attribute loss skips them."""
import numpy as np
import torch

from unipixel_ros.dataset import DatasetWriter
from unipixel_ros.dataset.vocab import CATEGORIES, COLORS, SIZES
from unipixel_ros.training.data import _attr_indices, build_cache

H, W = 24, 32


class _FakeTextEncoder:
    """The part of the text encoder build_cache uses: (N, L, 8) features, (N, L) mask."""

    source = 'fake'
    max_tokens = 4

    def encode(self, texts):
        class _Out:
            features = torch.ones(len(texts), 4, 8)
            mask = torch.ones(len(texts), 4, dtype=torch.bool)
        return _Out()


def _randomized_like_scene(seed: int):
    instances = np.zeros((H, W), np.int16)
    instances[2:8, 3:9] = 1
    instances[10:20, 12:30] = 2
    objects = [{'index': 0, 'category': 'cup', 'color': 'red', 'size': 'small'},
               {'index': 1, 'category': 'object', 'color': 'brown', 'size': 'large',
                'distractor': True}]
    expressions = [
        {'text': 'the red cup', 'type': 'attribute', 'inner_type': 'attribute', 'target': 0,
         'structure': {}},
        {'text': 'the brown thing', 'type': 'attribute', 'inner_type': 'attribute',
         'target': 1, 'structure': {}},
        {'text': 'the green bowl', 'type': 'absent', 'inner_type': 'absent', 'target': None,
         'structure': {}},
    ]
    meta = {'K': [40.0, 0, 15.5, 0, 40.0, 11.5, 0, 0, 1], 'T_world_camera': np.eye(4).tolist(),
            'objects': objects, 'expressions': expressions, 'scene': {'seed': seed}}
    rgb = np.full((H, W, 3), 100, np.uint8)
    return rgb, np.full((H, W), 0.8, np.float32), instances, meta


def test_names_outside_the_vocabulary_map_to_the_ignore_index():
    assert _attr_indices({'category': 'cup', 'color': 'pink', 'size': 'large'}) == [
        CATEGORIES.index('cup'), COLORS.index('pink'), SIZES.index('large')]
    assert _attr_indices({'category': 'object', 'color': 'brown', 'size': 'small'}) == [
        -1, -1, SIZES.index('small')]
    assert _attr_indices({'category': 'object', 'color': 'grey', 'size': None}) == [-1, -1, -1]


def test_a_cache_of_scenes_with_distractors_builds_with_minus_one(tmp_path):
    writer = DatasetWriter(tmp_path)
    for seed in range(3):
        writer.write_scene(seed, *_randomized_like_scene(seed))
    writer.finalize({'first_seed': 0, 'scenes': 3})
    cache = build_cache(tmp_path, None, 12, 16, _FakeTextEncoder(), max_objects=4,
                        progress=False)
    assert cache.num_expressions == 9
    cup = [CATEGORIES.index('cup'), COLORS.index('red'), SIZES.index('small')]
    distractor = [-1, -1, SIZES.index('large')]
    assert cache.object_attrs[0, 0].tolist() == cup
    assert cache.object_attrs[0, 1].tolist() == distractor
    assert cache.object_attrs[0, 2].tolist() == [-1, -1, -1]          # no object in that slot
    assert cache.expr_attrs.tolist() == [cup, distractor, [-1, -1, -1]] * 3
    assert cache.expr_target.tolist() == [0, 1, -1] * 3


def test_object_losses_stay_finite_when_a_batch_has_no_known_colour():
    """Every object of the batch a distractor in an unnamed colour: the colour term is left out
    (cross-entropy over zero labels would be NaN) and the others still train."""
    from unipixel_ros.model.network import ModelConfig, UniPixelNet
    from unipixel_ros.training.data import TrainingCache
    from unipixel_ros.training.object_training import ObjectBatchSampler, object_step_loss
    from unipixel_ros.training.train import build_prompts

    h, w, full = 48, 64, (96, 128)
    cfg = ModelConfig(input_width=w, input_height=h, dim=16, widths=(8, 8, 16, 16, 24),
                      blocks=(1, 1, 1, 1), heads=2, fusion_blocks=1, object_slots=4,
                      text_dim=8, max_text_tokens=4)
    torch.manual_seed(0)
    net = UniPixelNet(cfg)
    scenes = 2
    inst = torch.zeros(scenes, *full, dtype=torch.uint8)
    inst[:, 10:40, 10:50] = 1
    inst[:, 50:90, 60:120] = 2
    attrs = torch.full((scenes, 3, 3), -1, dtype=torch.long)
    attrs[:, :2, 2] = 1                                   # sizes known, category/colour not
    cache = TrainingCache(
        rgb=torch.full((scenes, 3, h, w), 90, dtype=torch.uint8),
        depth_mm=torch.full((scenes, 1, h, w), 700, dtype=torch.int16), instances=inst,
        object_attrs=attrs, expr_scene=torch.tensor([0, 0, 1, 1]),
        expr_target=torch.tensor([0, 1, 1, -1]), expr_text=torch.arange(4),
        expr_type=torch.zeros(4, dtype=torch.long), expr_attrs=attrs[[0, 0, 1, 1], [0, 1, 1, 0]],
        text_features=torch.randn(4, 4, 8).half(), text_mask=torch.ones(4, 4, dtype=torch.uint8),
        texts=[f't{i}' for i in range(4)], scene_ids=['a', 'b'])
    sampler = ObjectBatchSampler(cache, net, queries_per_scene=2, point_prompt_prob=0.0,
                                 generator=torch.Generator().manual_seed(0))
    batch = sampler.sample(2)
    loss, parts = object_step_loss(net, batch, build_prompts(net, batch))
    assert torch.isfinite(loss) and np.isfinite(parts['attributes']) and parts['attributes'] > 0
    batch['attrs'] = torch.full_like(batch['attrs'], -1)
    loss, parts = object_step_loss(net, batch, build_prompts(net, batch))
    assert torch.isfinite(loss) and parts['attributes'] == 0.0
