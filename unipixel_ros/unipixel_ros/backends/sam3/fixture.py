"""A tiny, randomly initialised SAM 3 in Hugging Face format, for tests and timing plumbing.

``make_tiny_sam3(directory)`` writes everything a real checkpoint directory holds:
``config.json``, ``model.safetensors``, the tokenizer files and ``preprocessor_config.json``.
The network has the real architecture (ViT + FPN neck, CLIP text encoder, DETR encoder/decoder,
mask decoder, presence head) with hidden sizes of 32, one or two layers per stack, a 224 px input
and 20 object queries, so a forward pass takes milliseconds and every code path (encode once,
decode per concept, ONNX export, post-processing) runs as it would on ``facebook/sam3``.
Its outputs are meaningless: the weights are random.
"""
from __future__ import annotations

import json
from pathlib import Path

#: Input side of the tiny model in pixels (16 x 16 patches of 14 px).
TINY_IMAGE_SIZE = 224
#: Object queries of the tiny DETR decoder (the real model has 200).
TINY_NUM_QUERIES = 20
#: Text length the processor pads to; the real Sam3Processor uses 32.
TEXT_MAX_LENGTH = 32

_SPECIAL = ('<|startoftext|>', '<|endoftext|>')


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP byte -> printable unicode map used by byte-level BPE vocabularies."""
    bs = list(range(ord('!'), ord('~') + 1)) + list(range(ord('¡'), ord('¬') + 1)) \
        + list(range(ord('®'), ord('ÿ') + 1))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return dict(zip(bs, (chr(c) for c in cs)))


def _tiny_clip_tokenizer():
    """A CLIP tokenizer with a byte-level vocabulary plus a handful of merges, built offline.

    The vocabulary holds every byte symbol alone and with the ``</w>`` end-of-word suffix, the
    merges needed for a few household nouns, and the two CLIP special tokens, so any text
    tokenizes (to single characters where no merge applies) exactly as a full CLIP BPE would
    segment it into its own pieces.
    """
    from transformers import CLIPTokenizer

    symbols = list(_bytes_to_unicode().values())
    vocab: dict[str, int] = {}
    for s in symbols:
        vocab[s] = len(vocab)
    for s in symbols:
        vocab[s + '</w>'] = len(vocab)
    merges = []
    for word in ('cup', 'red', 'mug', 'box', 'the'):
        # Left-to-right merges: c u -> cu, cu p</w> -> cup</w>.
        pieces = list(word[:-1]) + [word[-1] + '</w>']
        while len(pieces) > 1:
            a, b = pieces[0], pieces[1]
            merges.append((a, b))
            vocab.setdefault(a + b, len(vocab))
            pieces = [a + b] + pieces[2:]
    for tok in _SPECIAL:
        vocab[tok] = len(vocab)
    return CLIPTokenizer(vocab=vocab, merges=merges)


def tiny_sam3_config(vocab_size: int, bos_token_id: int, eos_token_id: int):
    """The ``Sam3Config`` of the tiny model (all hidden sizes 32, 224 px input, 20 queries)."""
    from transformers import Sam3Config

    hidden = 32
    grid = TINY_IMAGE_SIZE // 14  # 16 patches per side
    return Sam3Config(
        vision_config=dict(
            backbone_config=dict(
                model_type='sam3_vit_model', hidden_size=hidden, intermediate_size=64,
                num_hidden_layers=2,
                num_attention_heads=2, image_size=TINY_IMAGE_SIZE, patch_size=14,
                window_size=8, global_attn_indexes=[1], pretrain_image_size=TINY_IMAGE_SIZE,
            ),
            fpn_hidden_size=hidden,
            backbone_feature_sizes=[[grid * 4] * 2, [grid * 2] * 2, [grid] * 2],
        ),
        text_config=dict(
            vocab_size=vocab_size, hidden_size=hidden, intermediate_size=64, projection_dim=hidden,
            num_hidden_layers=1, num_attention_heads=2, max_position_embeddings=TEXT_MAX_LENGTH,
            bos_token_id=bos_token_id, eos_token_id=eos_token_id, pad_token_id=eos_token_id,
        ),
        geometry_encoder_config=dict(hidden_size=hidden, num_layers=1, num_attention_heads=2,
                                     intermediate_size=64),
        detr_encoder_config=dict(hidden_size=hidden, num_layers=1, num_attention_heads=2,
                                 intermediate_size=64),
        detr_decoder_config=dict(hidden_size=hidden, num_layers=2, num_attention_heads=2,
                                 intermediate_size=64, num_queries=TINY_NUM_QUERIES),
        mask_decoder_config=dict(hidden_size=hidden, num_attention_heads=2),
    )


def tiny_preprocessor_config(image_size: int = TINY_IMAGE_SIZE) -> dict:
    """``preprocessor_config.json`` content with the real SAM 3 numbers except the side length."""
    return {
        'image_processor_type': 'Sam3ImageProcessor',
        'processor_class': 'Sam3Processor',
        'do_convert_rgb': True,
        'do_resize': True,
        'size': {'height': image_size, 'width': image_size},
        'resample': 2,  # PIL BILINEAR
        'do_rescale': True,
        'rescale_factor': 1 / 255,
        'do_normalize': True,
        'image_mean': [0.5, 0.5, 0.5],
        'image_std': [0.5, 0.5, 0.5],
        'mask_size': {'height': image_size // 14 * 4, 'width': image_size // 14 * 4},
    }


def make_tiny_sam3(directory: str | Path, seed: int = 0, full_size: bool = False) -> Path:
    """Write a tiny random SAM 3 checkpoint directory and return its path.

    Args:
        directory: created if missing; existing files of the same names are overwritten.
        seed: torch seed for the random weights (same seed -> same weights).
        full_size: instead use ``Sam3Config()`` defaults, the architecture of
            ``facebook/sam3`` (840 M parameters, 1008 px, 200 queries, 3.4 GB on disk, random
            weights) with the tiny tokenizer: for timing the real network without its weights.

    Returns:
        ``Path(directory)``, loadable by :func:`load_sam3` / ``Sam3Model.from_pretrained``.
    """
    import torch
    from transformers import Sam3Model

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    tokenizer = _tiny_clip_tokenizer()
    if full_size:
        from transformers import Sam3Config

        config = Sam3Config()
        config.text_config.bos_token_id = tokenizer.bos_token_id
        config.text_config.eos_token_id = tokenizer.eos_token_id
        config.text_config.pad_token_id = tokenizer.pad_token_id
        preprocessor = tiny_preprocessor_config(config.image_size)
    else:
        config = tiny_sam3_config(len(tokenizer), tokenizer.bos_token_id, tokenizer.eos_token_id)
        preprocessor = tiny_preprocessor_config()
    torch.manual_seed(seed)
    model = Sam3Model(config).eval()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / 'preprocessor_config.json').write_text(json.dumps(preprocessor, indent=2))
    return out
