"""The model's graph interface, shared by the exporter and every engine (numpy + Pillow only).

Importing this module loads neither torch nor onnxruntime, so engines that run exported graphs
stay light. It holds the single list of graph input/output names (``GRAPH_IO``), the image
normalisation, and the pre- and post-processing that every back-end applies around its graph:

* ``text``: token ids + attention mask -> prompt tokens, run once per command;
* ``point``: a clicked pixel -> a one-token prompt (region -> words);
* ``image``: image + prompt tokens + prompt mask -> mask logits, exists logit, attribute logits,
  run per frame.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
from PIL import Image

#: ImageNet statistics the backbone normalises RGB with (``preprocess`` and the torch network).
IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)

#: Input and output tensor names of each exported graph (the single source of truth).
GRAPH_IO = {
    'text': {'inputs': ['input_ids', 'attention_mask'], 'outputs': ['prompt']},
    'point': {'inputs': ['uv'], 'outputs': ['prompt']},
    'image': {'inputs': ['image', 'prompt', 'prompt_mask'],
              'outputs': ['mask_logits', 'exists_logit', 'category_logits', 'color_logits',
                          'size_logits']},
}

_MEAN = np.asarray(IMAGE_MEAN, np.float32).reshape(1, 3, 1, 1)
_STD = np.asarray(IMAGE_STD, np.float32).reshape(1, 3, 1, 1)


def preprocess(rgb: np.ndarray, width: int, height: int) -> np.ndarray:
    """(H, W, 3) uint8 RGB -> (1, 3, height, width) float32 network input.

    Area (box) resampling, as in training, then ImageNet normalisation.
    """
    if rgb.shape[:2] != (height, width):
        rgb = np.asarray(Image.fromarray(rgb).resize((width, height), Image.BOX))
    x = (rgb.astype(np.float32).transpose(2, 0, 1)[None] / 255.0 - _MEAN) / _STD
    return np.ascontiguousarray(x, dtype=np.float32)


def upsample_logits(logits: np.ndarray, height: int, width: int) -> np.ndarray:
    """(1, 1, h, w) mask logits -> (height, width) probabilities (bilinear, then sigmoid)."""
    lg = np.asarray(logits, np.float32).reshape(logits.shape[-2:])
    if lg.shape != (height, width):
        lg = np.asarray(Image.fromarray(lg, mode='F').resize((width, height), Image.BILINEAR))
    if lg.base is not None or not lg.flags.writeable:   # never write into the caller's logits
        lg = lg.copy()
    # the sigmoid in place: three image-sized temporaries fewer per frame
    np.negative(lg, out=lg)
    np.exp(lg, out=lg)
    lg += 1.0
    return np.reciprocal(lg, out=lg)




def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file (checkpoints, exported graphs), read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for chunk in iter(lambda: f.read(1 << 20), b''):
            h.update(chunk)
    return h.hexdigest()
