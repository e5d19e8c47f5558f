"""SAM 3 pre/post-processing and tokenisation against preprocessor_config.json and transformers."""
import json

import numpy as np
import pytest
import torch

from unipixel_ros.backends.sam3.fixture import TINY_IMAGE_SIZE, TINY_NUM_QUERIES
from unipixel_ros.backends.sam3.processing import (PreprocessConfig, Sam3Tokenizer,
                                                   postprocess, preprocess, resize_bilinear,
                                                   upsample_masks)
from unipixel_ros.backends.sam3.types import DecoderOutput, Sam3ModelError

pytest_plugins = ['sam3_fixtures']  # session fixtures: tiny_sam3_dir, tiny_sam3_export, ...


def _torchvision_works() -> str | None:
    try:
        import torchvision  # noqa: F401
        from transformers import Sam3ImageProcessor
        assert Sam3ImageProcessor is not None
        torchvision.ops.nms(torch.zeros(1, 4), torch.zeros(1), 0.5)
    except Exception as exc:  # ImportError, or its C++ ops failing on a CPU-less build
        return f'torchvision (needed by transformers Sam3ImageProcessor) is unusable: {exc!r}'
    return None


TORCHVISION_MISSING = _torchvision_works()


def test_fixture_has_hf_layout_and_loads(tiny_sam3_dir):
    from transformers import Sam3Model

    names = {p.name for p in tiny_sam3_dir.iterdir()}
    assert {'config.json', 'model.safetensors', 'tokenizer.json', 'tokenizer_config.json',
            'preprocessor_config.json'} <= names
    model = Sam3Model.from_pretrained(tiny_sam3_dir)
    assert model.config.detr_decoder_config.num_queries == TINY_NUM_QUERIES
    assert model.config.image_size == TINY_IMAGE_SIZE
    assert sum(p.numel() for p in model.parameters()) < 1_000_000


def test_preprocess_constant_image_matches_config_numbers(tiny_sam3_dir):
    cfg = PreprocessConfig.from_json(tiny_sam3_dir / 'preprocessor_config.json')
    raw = json.loads((tiny_sam3_dir / 'preprocessor_config.json').read_text())
    assert (cfg.height, cfg.width) == (raw['size']['height'], raw['size']['width']) == (224, 224)
    rgb = np.empty((37, 53, 3), np.uint8)
    rgb[...] = (0, 51, 255)
    x = preprocess(rgb, cfg)
    assert x.shape == (1, 3, 224, 224) and x.dtype == np.float32 and x.flags.c_contiguous
    # (v / 255 - 0.5) / 0.5: 0 -> -1, 51 -> -0.6, 255 -> 1; a constant image stays constant
    np.testing.assert_allclose(x[0, :, 0, 0], [-1.0, -0.6, 1.0], atol=1e-6)
    np.testing.assert_allclose(x.reshape(3, -1).std(axis=1), 0, atol=1e-6)


def test_preprocess_uses_the_files_mean_std_and_size():
    cfg = PreprocessConfig.from_dict({'size': {'height': 28, 'width': 42}, 'rescale_factor': 0.5,
                                      'image_mean': [1, 2, 3], 'image_std': [2, 4, 8]})
    rgb = np.full((10, 10, 3), 10, np.uint8)
    x = preprocess(rgb, cfg)
    assert x.shape == (1, 3, 28, 42)
    np.testing.assert_allclose(x[0, :, 5, 5], [(5 - 1) / 2, (5 - 2) / 4, (5 - 3) / 8], atol=1e-6)


def test_preprocess_converts_grey_and_rgba_and_rejects_bad_input():
    cfg = PreprocessConfig(height=14, width=14)
    grey = np.full((5, 7), 255, np.uint8)
    np.testing.assert_allclose(preprocess(grey, cfg), 1.0)
    rgba = np.zeros((5, 7, 4), np.uint8)
    rgba[..., 3] = 255  # alpha is dropped, not read as a colour
    np.testing.assert_allclose(preprocess(rgba, cfg), -1.0)
    with pytest.raises(ValueError, match='uint8'):
        preprocess(np.zeros((5, 7, 3), np.float32), cfg)
    with pytest.raises(ValueError, match='shape'):
        preprocess(np.zeros((5, 7, 2), np.uint8), cfg)


def test_preprocess_bad_config_file_is_a_clear_error(tmp_path):
    with pytest.raises(Sam3ModelError, match='missing'):
        PreprocessConfig.from_json(tmp_path / 'preprocessor_config.json')
    (tmp_path / 'preprocessor_config.json').write_text('{not json')
    with pytest.raises(Sam3ModelError, match='not valid JSON'):
        PreprocessConfig.from_json(tmp_path / 'preprocessor_config.json')


@pytest.mark.parametrize('out_hw', [(48, 64), (7, 5), (300, 200)])
def test_resize_bilinear_matches_torch_interpolate(out_hw):
    x = np.random.default_rng(0).normal(size=(3, 16, 12)).astype(np.float32)
    ref = torch.nn.functional.interpolate(torch.from_numpy(x)[None], out_hw, mode='bilinear',
                                          align_corners=False)[0].numpy()
    got = resize_bilinear(x, out_hw)
    assert got.shape == (3, *out_hw)
    np.testing.assert_allclose(got, ref, atol=1e-5)


@pytest.mark.parametrize('out_hw', [(480, 640), (30, 20), (72, 72)])
def test_upsample_masks_equals_thresholded_full_resize(out_hw):
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:72, 0:72]
    maps = [np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * r * r))
            for cy, cx, r in rng.uniform([0, 0, 1], [72, 72, 20], size=(8, 3))]
    maps += [rng.random((72, 72)), np.zeros((72, 72)), np.full((72, 72), 0.5),
             np.pad(np.ones((1, 1)), ((0, 71), (71, 0)))]  # one corner pixel
    probs = np.stack(maps).astype(np.float32)
    got = upsample_masks(probs, out_hw, 0.5)
    assert got.shape == (len(maps), *out_hw) and got.dtype == bool
    np.testing.assert_array_equal(got, resize_bilinear(probs, out_hw) > 0.5)
    assert got[:8].any(axis=(1, 2)).sum() >= 4  # the blobs are not all empty


def _raw(q=4, h=16, w=16):
    return dict(mask_logits=np.full((q, h, w), -10, np.float32), logits=np.zeros(q, np.float32),
                boxes=np.zeros((q, 4), np.float32), presence_logit=0.0)


def test_postprocess_maps_boxes_and_masks_to_the_original_frame():
    r = _raw()
    # query 2: left half of the low-res mask on, box over the left half of the image
    r['mask_logits'][2, :, :8] = 10
    r['boxes'][2] = [0.0, 0.25, 0.5, 0.75]
    r['logits'][:] = [-5, 0, 3, -5]
    r['presence_logit'] = 2.0
    out = postprocess(DecoderOutput(**r), image_hw=(120, 200), phrase='cup',
                      score_threshold=0.3)
    presence = 1 / (1 + np.exp(-2.0))
    assert out.phrase == 'cup' and out.presence == pytest.approx(presence, abs=1e-6)
    # scores = sigmoid(logit) * sigmoid(presence); 0.5 * 0.88 = 0.44 > 0.3 survives, best first
    np.testing.assert_allclose(out.scores, [presence / (1 + np.exp(-3)), 0.5 * presence],
                               rtol=1e-5)
    assert out.query_indices.tolist() == [2, 1]
    np.testing.assert_allclose(out.boxes[0], [0, 30, 100, 90], atol=1e-4)  # x * W, y * H
    assert out.masks.shape == (2, 120, 200) and out.masks.dtype == bool
    assert out.masks[0, :, :100].all() and not out.masks[0, :, 100:].any()
    assert not out.masks[1].any()


def test_postprocess_thresholds_and_cap():
    r = _raw(q=5)
    r['logits'][:] = [1, 2, 3, 4, 5]
    out = postprocess(DecoderOutput(**r), (10, 10), score_threshold=0.0, max_candidates=2)
    assert out.query_indices.tolist() == [4, 3]
    none = postprocess(DecoderOutput(**r), (10, 10), score_threshold=0.99)
    assert none.empty and none.masks.shape == (0, 10, 10) and none.boxes.shape == (0, 4)
    r['mask_logits'][:] = 0.1  # sigmoid 0.525: above 0.5, below 0.6
    assert postprocess(DecoderOutput(**r), (4, 4), score_threshold=0).masks.all()
    assert not postprocess(DecoderOutput(**r), (4, 4), score_threshold=0,
                           mask_threshold=0.6).masks.any()


def test_tokenizer_matches_transformers_clip_tokenizer(tiny_sam3_dir):
    from transformers import AutoTokenizer

    ref = AutoTokenizer.from_pretrained(tiny_sam3_dir)
    ours = Sam3Tokenizer(tiny_sam3_dir / 'tokenizer.json')
    for phrase in ('red cup', 'the blue mug on the left', 'Mug!', '  box  '):
        want = ref(phrase, padding='max_length', max_length=32, return_tensors='np')
        ids, mask = ours(phrase)
        np.testing.assert_array_equal(ids, want['input_ids'])
        np.testing.assert_array_equal(mask, want['attention_mask'])
    ids, mask = ours('x ' * 100)  # longer than 32 tokens: truncated, still ends with eos
    assert ids.shape == (1, 32) and mask.all()
    assert ids[0, -1] == ref.eos_token_id and ids[0, 0] == ref.bos_token_id


@pytest.mark.skipif(TORCHVISION_MISSING is not None, reason=str(TORCHVISION_MISSING))
def test_matches_official_image_processor(tiny_sam3_dir):
    from transformers import Sam3ImageProcessor

    official = Sam3ImageProcessor.from_pretrained(tiny_sam3_dir)
    rgb = np.random.default_rng(0).integers(0, 256, (90, 130, 3), dtype=np.uint8)
    want = official(images=rgb, return_tensors='np')['pixel_values']
    got = preprocess(rgb, PreprocessConfig.from_json(tiny_sam3_dir / 'preprocessor_config.json'))
    # PIL and torchvision antialiased uint8 resizes may differ by one grey level (2/255 here)
    np.testing.assert_allclose(got, want, atol=2 / 255 + 1e-6)
