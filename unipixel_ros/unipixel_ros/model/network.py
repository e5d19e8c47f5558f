"""UniPixel-style referring segmentation network in plain torch (no torchvision, no timm).

One network reads the phrase, looks at the image and outputs

* mask logits of the one referred object at input resolution,
* a target-exists logit ("the object is not in view" when low),
* attribute logits (category, colour, size) of an object token pooled under the predicted mask,
  which is also what describes a clicked region (region -> words).

It finds every object first and lets the phrase choose one (``objects.py``, the object-centric
decoder): centre heat + instance masks -> object tokens -> object-text cross-attention selects
one; the mask is the selection-weighted mixture of instance masks refined at input size.

Data flow (shapes for the default 320x240 input, D = ``dim``, K = ``object_slots``)::

    image (B, 3, 240, 320) -> ResNet-style backbone -> stem s2, C2 s4, C3 s8, C4 s16, C5 s32
                           -> FPN -> P3 (B, D, 30, 40), P4 (B, D, 15, 20), P5
    ObjectDecoder.pixels: heat (B, 1, 60, 80), token features (B, D, 60, 80),
                          mask embedding (B, E, 120, 160)
    peaks -> K instances: masks (B, K, 120, 160), object tokens (B, K, D)
    prompt tokens (B, L, D) (projected text features, or a point prompt) + mask (B, L)
    -> selection scores (B, K) + none (B,) -> exists logit (B,)
    -> mask logits (B, 1, 240, 320) = refine(mixture of instance masks, image)
    object token = token features pooled under sigmoid(mask) -> attribute logits

The text encoder (frozen MiniLM, see ``text_encoder.py``) runs once per command outside this
module; this module starts from its token features so the per-frame graph stays small.

The dense decoder of unipixel_sim_v1 and the depth-input arm of the v3 ablation were removed
from the code; both stay reproducible from git history (weights/MODEL_CARD.md says how).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from unipixel_ros.dataset.vocab import CATEGORIES, COLORS, SIZES

from .graph_io import IMAGE_MEAN, IMAGE_STD
from .layers import FPN, Backbone, point_position_encoding
from .objects import ObjectDecoder


@dataclass
class ModelConfig:
    """Architecture hyper-parameters (stored with every checkpoint)."""

    input_width: int = 320             # px; frames are resized to this before the network
    input_height: int = 240            # px
    use_depth: bool = False            # must be False: the depth-input arm was removed
    dim: int = 128                     # fusion width D
    widths: tuple = (32, 48, 96, 160, 256)  # stem, s4, s8, s16, s32 channels
    blocks: tuple = (1, 2, 2, 2)       # residual blocks per stage s4..s32
    heads: int = 4                     # attention heads
    fusion_blocks: int = 2             # object-text cross-attention blocks
    refine_channels: int = 16          # RGB-guided refinement of the logits at input size (0 = off)
    attribute_matching: bool = False   # must be False: a dense-decoder option, removed
    object_slots: int = 12             # K object tokens per image (objects.py)
    # the mask mixes the instance masks by softmax(mask_sharpness * scores): > 1 sharpens an
    # undecided selection towards its top object (the refinement was trained on one-hot picks)
    mask_sharpness: float = 1.0
    text_dim: int = 384                # MiniLM-L6 hidden size
    max_text_tokens: int = 24          # padded/truncated token count (export profile max)
    num_categories: int = len(CATEGORIES)
    num_colors: int = len(COLORS)
    num_sizes: int = len(SIZES)
    vocab: dict = field(default_factory=lambda: {
        'categories': list(CATEGORIES), 'colors': list(COLORS), 'sizes': list(SIZES)})

    def __post_init__(self) -> None:
        if self.input_width % 8 or self.input_height % 8:
            raise ValueError(f'input size {self.input_width}x{self.input_height} must be a '
                             'multiple of 8 (the object token pools the mask onto the stride-8 grid)')
        removed = [name for name, bad in (('object_slots = 0 (the dense decoder)',
                                           self.object_slots < 1),
                                          ('use_depth (the depth-input arm)', self.use_depth),
                                          ('attribute_matching', self.attribute_matching)) if bad]
        if removed:
            raise ValueError(f"this model needs {', '.join(removed)}, which this version no "
                             'longer has; run it from the git history (weights/MODEL_CARD.md, '
                             '"Ancestors")')

    def to_dict(self) -> dict:
        d = asdict(self)
        d['widths'], d['blocks'] = list(self.widths), list(self.blocks)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> 'ModelConfig':
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        for key in ('widths', 'blocks'):
            if key in known:
                known[key] = tuple(known[key])
        return cls(**known)


@dataclass
class NetworkOutput:
    """Raw network outputs (logits)."""

    mask_logits: torch.Tensor       # (B, 1, H_in, W_in)
    exists_logit: torch.Tensor      # (B,)
    category_logits: torch.Tensor   # (B, num_categories)
    color_logits: torch.Tensor      # (B, num_colors)
    size_logits: torch.Tensor       # (B, num_sizes)


class UniPixelNet(nn.Module):
    """Referring segmentation + existence + attributes. See the module docstring."""

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or ModelConfig()
        d = cfg.dim
        self.backbone = Backbone(3, cfg.widths, cfg.blocks)
        self.fpn = FPN(cfg.widths[2:], d)
        self.text_proj = nn.Sequential(nn.Linear(cfg.text_dim, d), nn.LayerNorm(d))
        self.point_token = nn.Parameter(torch.zeros(1, 1, d))
        self.point_proj = nn.Linear(d, d)
        r = cfg.refine_channels
        # The decoder ends at stride 2; object edges in the simulator are sharp colour edges, so a
        # two-layer conv on (coarse logits, image) at input size recovers the last pixel.
        self.refine = (nn.Sequential(nn.Conv2d(1 + 3, r, 3, 1, 1), nn.ReLU(inplace=True),
                                     nn.Conv2d(r, 1, 3, 1, 1)) if r else None)
        self.category_head = nn.Linear(d, cfg.num_categories)
        self.color_head = nn.Linear(d, cfg.num_colors)
        self.size_head = nn.Linear(d, cfg.num_sizes)
        self.register_buffer('mean', torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(IMAGE_STD).view(1, 3, 1, 1), persistent=False)
        self.objects = ObjectDecoder(d, cfg.widths[0], cfg.widths[1], cfg.object_slots,
                                     cfg.heads, cfg.fusion_blocks)

    # ---- prompts ---------------------------------------------------------------------------
    def encode_text(self, text_features: torch.Tensor) -> torch.Tensor:
        """MiniLM token features (B, L, text_dim) -> prompt tokens (B, L, D)."""
        return self.text_proj(text_features)

    def encode_point(self, uv: torch.Tensor) -> torch.Tensor:
        """Point prompt for region -> words: normalised (u, v) in [0, 1], (B, 2) -> (B, 1, D)."""
        pe = point_position_encoding(uv[:, 1], uv[:, 0], self.config.dim)
        return self.point_token + self.point_proj(pe).unsqueeze(1)

    # ---- per frame -------------------------------------------------------------------------
    def normalize_image(self, rgb: torch.Tensor) -> torch.Tensor:
        """rgb (B, 3, H, W) float in [0, 1] -> network input (ImageNet normalisation)."""
        return (rgb - self.mean) / self.std

    def forward(self, image: torch.Tensor, prompt: torch.Tensor, prompt_mask: torch.Tensor,
                object_weights: torch.Tensor | None = None) -> NetworkOutput:
        """
        Args:
            image: (B, 3, H_in, W_in) normalised input from :meth:`normalize_image`.
            prompt: (B, L, D) prompt tokens from :meth:`encode_text` or :meth:`encode_point`.
            prompt_mask: (B, L) float, 1 = real token, 0 = padding.
            object_weights: optional (B, 1, H_in, W_in) weights in [0, 1] to pool the object
                token under (training feeds ground truth here); default: sigmoid(mask logits).
        """
        maps = self.image_maps(image)
        obj = self.objects.objects(maps, self.objects.peaks(maps['heat']))
        scores, none = self.objects.select(obj['tokens'], obj['heat'], prompt, prompt_mask)
        return self.finish_objects(image, maps, obj['masks'], scores, none, object_weights)

    # ---- object-centric decoder ------------------------------------------------------------
    def image_maps(self, image: torch.Tensor) -> dict:
        """Language-free dense maps of the object decoder (see ``objects.ObjectDecoder.pixels``)."""
        stem, c2, c3, c4, c5 = self.backbone(image, with_stem=True)
        p3, p4, _ = self.fpn([c3, c4, c5])
        return self.objects.pixels(stem, c2, p3, p4, self._coords)

    def finish_objects(self, image: torch.Tensor, maps: dict, masks: torch.Tensor,
                       scores: torch.Tensor, none: torch.Tensor,
                       object_weights: torch.Tensor | None = None) -> NetworkOutput:
        """Selection -> outputs: mask mixture refined at input size, exists = logsumexp(scores)
        - none, attributes of the token pooled under the final mask. masks (B, K, h2, w2),
        scores (B, K), none (B,)."""
        cfg = self.config
        size = (cfg.input_height, cfg.input_width)
        logits = F.interpolate(self.objects.compose(masks, scores * cfg.mask_sharpness),
                               size=size, mode='bilinear', align_corners=False)
        if self.refine is not None:
            logits = logits + self.refine(torch.cat([logits, image], dim=1))
        exists = self.objects.exists_logit(scores, none)
        weights = torch.sigmoid(logits) if object_weights is None else object_weights
        tokens = maps['tokens']
        w4 = F.avg_pool2d(weights, 4)                               # (B, 1, h4, w4)
        obj = (tokens * w4).sum((2, 3)) / w4.sum((2, 3)).clamp(min=1e-3)
        obj = self.objects.pool_norm(obj)
        return NetworkOutput(logits, exists, self.category_head(obj), self.color_head(obj),
                             self.size_head(obj))

    @staticmethod
    def _coords(x: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) -> (B, 2, h, w) pixel-centre coordinates in [-1, 1] (x, then y)."""
        b, _, h, w = x.shape
        ys = (torch.arange(h, dtype=x.dtype, device=x.device) + 0.5) / h * 2 - 1
        xs = (torch.arange(w, dtype=x.dtype, device=x.device) + 0.5) / w * 2 - 1
        grid = torch.stack([xs[None, :].expand(h, w), ys[:, None].expand(h, w)])
        return grid[None].expand(b, -1, -1, -1)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
