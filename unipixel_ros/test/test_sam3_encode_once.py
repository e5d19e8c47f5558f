"""SAM 3 torch predictor: encode once / decode per concept equals the one-shot model forward."""
import numpy as np
import pytest
import torch

from sam3_fixtures import smooth_frame
from unipixel_ros.backends.sam3 import ConceptCandidates, Sam3Error
from unipixel_ros.backends.sam3.fixture import TINY_NUM_QUERIES
from unipixel_ros.backends.sam3.processing import preprocess

pytest_plugins = ['sam3_fixtures']  # session fixtures: tiny_sam3_dir, tiny_sam3_export, ...


def test_split_graphs_equal_the_official_forward(tiny_torch_predictor):
    p = tiny_torch_predictor
    rgb = smooth_frame(70, 90)
    image, text = p.encode_image(rgb), p.encode_text('red cup')
    raw = p.decode_raw(image, text)
    pixel = torch.from_numpy(preprocess(rgb, p.preprocess_config))
    ids, mask = (torch.from_numpy(a) for a in p.tokenizer('red cup'))
    with torch.inference_mode():
        ref = p.model(pixel_values=pixel, input_ids=ids, attention_mask=mask)
    assert raw.mask_logits.shape == (TINY_NUM_QUERIES, 64, 64)
    np.testing.assert_allclose(raw.mask_logits, ref.pred_masks[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(raw.logits, ref.pred_logits[0].numpy(), atol=1e-5)
    np.testing.assert_allclose(raw.boxes, ref.pred_boxes[0].numpy(), atol=1e-6)
    assert raw.presence_logit == pytest.approx(float(ref.presence_logits), abs=1e-5)


def test_padding_tokens_are_masked(tiny_torch_predictor):
    """The text mask reaches the decoder: changing padding embeddings changes nothing."""
    p = tiny_torch_predictor
    image, text = p.encode_image(smooth_frame()), p.encode_text('mug')
    emb = text.embeddings.clone()
    emb[:, int(text.mask.sum()):] += 100.0
    a = p.decode_raw(image, text)
    b = p.decode_raw(image, type(text)(phrase='mug', embeddings=emb, mask=text.mask,
                                       backend=text.backend))
    np.testing.assert_allclose(a.logits, b.logits, atol=1e-4)
    unmasked = p.decode_raw(image, type(text)(phrase='mug', embeddings=emb,
                                              mask=torch.ones_like(text.mask),
                                              backend=text.backend))
    assert np.abs(unmasked.logits - a.logits).max() > 1e-2  # the check above can fail


def test_candidates_at_frame_resolution(tiny_torch_predictor):
    p = tiny_torch_predictor
    image = p.encode_image(smooth_frame(61, 83))
    c = p.decode(image, p.encode_text('blue box'), score_threshold=0.0, max_candidates=5)
    assert isinstance(c, ConceptCandidates) and len(c) == 5
    assert c.masks.shape == (5, 61, 83) and c.masks.dtype == bool
    assert c.boxes.shape == (5, 4) and c.boxes.dtype == np.float32
    assert (c.boxes[:, [0, 2]] <= 83 + 1e-3).all() and (c.boxes[:, [1, 3]] <= 61 + 1e-3).all()
    assert (np.diff(c.scores) <= 0).all() and 0 <= c.presence <= 1
    assert (c.scores <= c.presence + 1e-6).all()  # score = sigmoid(logit) * presence
    assert set(c.timings) == {'decode_ms', 'postprocess_ms'}
    assert set(image.timings) == {'preprocess_ms', 'vision_ms'}


def test_text_encoded_once_per_phrase_across_frames(tiny_sam3_dir):
    from unipixel_ros.backends.sam3.torch_backend import Sam3TorchPredictor

    p = Sam3TorchPredictor(tiny_sam3_dir, text_cache_size=2)
    runs = {'text': 0, 'vision': 0, 'decoder': 0}
    for name in runs:
        fn = getattr(p, f'_run_{name}')

        def counted(*a, _fn=fn, _name=name):
            runs[_name] += 1
            return _fn(*a)
        setattr(p, f'_run_{name}', counted)
    for seed in range(3):  # three frames, two concepts each
        out = p.segment(smooth_frame(seed=seed), ['red cup', 'Red  Cup', 'mug'])
        assert set(out) == {'red cup', 'Red  Cup', 'mug'}
    assert runs == {'text': 2, 'vision': 3, 'decoder': 9}
    assert p.text_encoder_calls == 2
    assert p.encode_text('red cup').cached
    p.encode_text('box')  # capacity 2: evicts the least recently used ('mug')
    assert not p.encode_text('mug').cached and runs['text'] == 4
    with pytest.raises(ValueError):
        p.encode_text('   ')


def test_encodings_from_another_backend_are_refused(tiny_torch_predictor):
    p = tiny_torch_predictor
    image, text = p.encode_image(smooth_frame()), p.encode_text('cup')
    foreign = type(image)(features=image.features, image_hw=image.image_hw, backend='onnxruntime')
    with pytest.raises(Sam3Error, match='onnxruntime'):
        p.decode(foreign, text)
