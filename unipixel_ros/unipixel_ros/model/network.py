"""UniPixel-style referring segmentation network in plain torch (no torchvision, no timm).

Two decoders share the backbone, FPN, text projection, point prompt and attribute heads:

* ``object_slots > 0`` (the shipped unipixel_sim_v4): the object-centric decoder of
  ``objects.py``: find every object (centre heatmap + instance masks), turn each into an object
  token, let the phrase pick one through object-text cross-attention; the mask is the
  selection-weighted mixture of instance masks refined at input size.
* ``object_slots == 0`` (unipixel_sim_v1, kept loadable): the dense decoder drawn below.

One network reads the phrase, looks at the image and outputs

* mask logits of the one referred object at input resolution,
* a target-exists logit ("the object is not in view" when low),
* attribute logits (category, colour, size) of an object token pooled under the predicted mask,
  which is also what describes a clicked region (region -> words).

Data flow (shapes for the default 320x240 input, D = ``dim``)::

    image (B, 3|4, 240, 320) -> ResNet-style backbone -> C2 s4, C3 s8, C4 s16, C5 s32
                             -> FPN -> P3 (B, D, 30, 40), P4 (B, D, 15, 20), P5 (B, D, 8, 10)
    prompt tokens (B, L, D) (projected text features, or a point prompt) + mask (B, L)
    P4 tokens (B, 300, D) <-> prompt tokens: ``fusion_blocks`` x bidirectional cross-attention
    sentence vector (B, D) -> FiLM on P3; fused P4 upsampled into P3
    mask head: (+ x/y coordinates) 3x3 conv @ s8 -> up -> (+C2) 3x3 conv @ s4
               [-> dense category / colour logits of every object, training only]
               -> sentence-gated, correlated with a sentence-predicted kernel (corr) -> up
               -> 3x3 conv @ s2 -> 1x1 -> bilinear x2, + corr upsampled
               -> + two 3x3 convs on (logits, image) at input size -> mask logits (B, 1, 240, 320)
    object token = P3 pooled under sigmoid(mask) -> exists logit (with sentence vector),
                   attribute logits

The text encoder (frozen MiniLM, see ``text_encoder.py``) runs once per command outside this
module; this module starts from its token features so the per-frame graph stays small.
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from unipixel_ros.dataset.vocab import CATEGORIES, COLORS, SIZES

from .graph_io import IMAGE_MEAN, IMAGE_STD
from .layers import FPN, Backbone, conv_bn, point_position_encoding, sine_position_encoding
from .objects import ObjectDecoder


@dataclass
class ModelConfig:
    """Architecture hyper-parameters (stored with every checkpoint)."""

    input_width: int = 320             # px; frames are resized to this before the network
    input_height: int = 240            # px
    use_depth: bool = False            # a 4th input channel: depth in metres / 2
    dim: int = 128                     # fusion width D
    widths: tuple = (32, 48, 96, 160, 256)  # stem, s4, s8, s16, s32 channels
    blocks: tuple = (1, 2, 2, 2)       # residual blocks per stage s4..s32
    heads: int = 4                     # attention heads
    fusion_blocks: int = 2             # bidirectional cross-attention blocks at s16
    refine_channels: int = 16          # RGB-guided refinement of the logits at input size (0 = off)
    attribute_matching: bool = False   # explicit text-attribute x pixel-attribute match map
    object_slots: int = 0              # > 0: the object-centric decoder (objects.py) with K slots
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


class FusionBlock(nn.Module):
    """Bidirectional cross-attention: visual tokens read the prompt, then the prompt reads them."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm_v1, self.norm_t1 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.v_from_t = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm_v2 = nn.LayerNorm(dim)
        self.ffn_v = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.norm_t2, self.norm_v3 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.t_from_v = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm_t3 = nn.LayerNorm(dim)
        self.ffn_t = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, v: torch.Tensor, v_pos: torch.Tensor, t: torch.Tensor,
                t_pad_bias: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """v (B, N, D) visual tokens, v_pos (1, N, D), t (B, L, D) prompt tokens,
        t_pad_bias (B*heads, N or L, L) additive attention bias (0 keep, -1e4 padding)."""
        q = self.norm_v1(v) + v_pos
        kv = self.norm_t1(t)
        v = v + self.v_from_t(q, kv, kv, attn_mask=t_pad_bias, need_weights=False)[0]
        v = v + self.ffn_v(self.norm_v2(v))
        kv = self.norm_v3(v) + v_pos
        t = t + self.t_from_v(self.norm_t2(t), kv, kv, need_weights=False)[0]
        t = t + self.ffn_t(self.norm_t3(t))
        return v, t


@dataclass
class NetworkOutput:
    """Raw network outputs (logits)."""

    mask_logits: torch.Tensor       # (B, 1, H_in, W_in)
    exists_logit: torch.Tensor      # (B,)
    category_logits: torch.Tensor   # (B, num_categories)
    color_logits: torch.Tensor      # (B, num_colors)
    size_logits: torch.Tensor       # (B, num_sizes)
    corr: torch.Tensor | None = None  # (B, 1, H_in/4, W_in/4) language-pixel correlation map
    dense_category: torch.Tensor | None = None  # (B, C+1, H_in/4, W_in/4) per-pixel, 0 = none
    dense_color: torch.Tensor | None = None     # (B, K+1, H_in/4, W_in/4) per-pixel, 0 = none
    dense_size: torch.Tensor | None = None      # (B, S+1, H_in/4, W_in/4) per-pixel, 0 = none
    text_attributes: tuple | None = None        # (B, C+1), (B, K+1), (B, S+1): 0 = not mentioned


class UniPixelNet(nn.Module):
    """Referring segmentation + existence + attributes. See the module docstring."""

    def __init__(self, config: ModelConfig | None = None) -> None:
        super().__init__()
        self.config = cfg = config or ModelConfig()
        d = cfg.dim
        self.backbone = Backbone(4 if cfg.use_depth else 3, cfg.widths, cfg.blocks)
        self.fpn = FPN(cfg.widths[2:], d)
        self.text_proj = nn.Sequential(nn.Linear(cfg.text_dim, d), nn.LayerNorm(d))
        self.point_token = nn.Parameter(torch.zeros(1, 1, d))
        self.point_proj = nn.Linear(d, d)
        h16, w16 = self._stride_size(16)
        self.register_buffer('pos16', sine_position_encoding(h16, w16, d), persistent=False)
        self._init_heads()
        if cfg.object_slots:
            self.objects = ObjectDecoder(d, cfg.widths[0], cfg.widths[1], cfg.object_slots,
                                         cfg.heads, cfg.fusion_blocks, cfg.use_depth)
            return
        self.fusion = nn.ModuleList(FusionBlock(d, cfg.heads) for _ in range(cfg.fusion_blocks))
        self.film = nn.Linear(d, 2 * d)
        self.c2_lateral = conv_bn(cfg.widths[1], 64, k=1)
        self.head_s8 = conv_bn(d + 2, 64)   # + normalised (x, y) coordinates
        self.head_s4 = conv_bn(64, 32)
        # Language-free per-pixel category / colour of the object under each pixel, trained on
        # every object of every scene (not just the referred one). These dense labels make the
        # s4 features encode what the words talk about long before the sparse referring signal
        # alone would, which is what lets grounding start in a CPU-sized training budget.
        self.dense_category_head = nn.Conv2d(32, cfg.num_categories + 1, 1)
        self.dense_color_head = nn.Conv2d(32, cfg.num_colors + 1, 1)
        if cfg.attribute_matching:
            # What the phrase says about its target (category / colour / size or "not said"),
            # read from the fused sentence, matched against the per-pixel posteriors above:
            # log p(object) + sum_attr E_text[log p_pixel(attr | object)]. Both sides have
            # direct supervision, so "the red cup" finds red-cup pixels from the first
            # hundred steps; the learned correlation adds what attributes cannot say
            # (positions, relations, superlatives).
            self.dense_size_head = nn.Conv2d(32, cfg.num_sizes + 1, 1)
            self.text_category_head = nn.Linear(d, cfg.num_categories + 1)
            self.text_color_head = nn.Linear(d, cfg.num_colors + 1)
            self.text_size_head = nn.Linear(d, cfg.num_sizes + 1)
            self.match_scale = nn.Parameter(torch.tensor(1.0))
        # Language reaches the fine decoder directly: a per-pixel correlation between the s4
        # features and a kernel predicted from the fused sentence vector (CRIS-style), fed to the
        # last stage and added to the logits. Without it the decoder learns "all objects" first
        # and grounding emerges very slowly (seen in training: val cIoU ~14 after 1000 steps).
        self.query_gate = nn.Linear(d, 32)
        self.query_kernel = nn.Linear(d, 32)
        self.head_s2 = conv_bn(33, 16)
        self.mask_out = nn.Conv2d(16, 1, 1)
        self.exists_mlp = nn.Sequential(nn.Linear(2 * d, d), nn.ReLU(inplace=True), nn.Linear(d, 1))
        self.obj_norm = nn.LayerNorm(d)

    def _init_heads(self) -> None:
        """Modules both decoders share: input-size refinement, attribute heads, normalisation."""
        cfg, d = self.config, self.config.dim
        r = cfg.refine_channels
        in_ch = 4 if cfg.use_depth else 3
        # The decoder ends at stride 2; object edges in the simulator are sharp colour edges, so a
        # two-layer conv on (coarse logits, image) at input size recovers the last pixel.
        self.refine = (nn.Sequential(nn.Conv2d(1 + in_ch, r, 3, 1, 1), nn.ReLU(inplace=True),
                                     nn.Conv2d(r, 1, 3, 1, 1)) if r else None)
        self.category_head = nn.Linear(d, cfg.num_categories)
        self.color_head = nn.Linear(d, cfg.num_colors)
        self.size_head = nn.Linear(d, cfg.num_sizes)
        self.register_buffer('mean', torch.tensor(IMAGE_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(IMAGE_STD).view(1, 3, 1, 1), persistent=False)

    def _stride_size(self, stride: int) -> tuple[int, int]:
        h, w = self.config.input_height, self.config.input_width
        for _ in range(int(math.log2(stride))):
            h, w = (h + 1) // 2, (w + 1) // 2
        return h, w

    # ---- prompts ---------------------------------------------------------------------------
    def encode_text(self, text_features: torch.Tensor) -> torch.Tensor:
        """MiniLM token features (B, L, text_dim) -> prompt tokens (B, L, D)."""
        return self.text_proj(text_features)

    def encode_point(self, uv: torch.Tensor) -> torch.Tensor:
        """Point prompt for region -> words: normalised (u, v) in [0, 1], (B, 2) -> (B, 1, D)."""
        pe = point_position_encoding(uv[:, 1], uv[:, 0], self.config.dim)
        return self.point_token + self.point_proj(pe).unsqueeze(1)

    # ---- per frame -------------------------------------------------------------------------
    def normalize_image(self, rgb: torch.Tensor, depth: torch.Tensor | None) -> torch.Tensor:
        """rgb (B, 3, H, W) float in [0, 1], depth (B, 1, H, W) metres -> network input."""
        x = (rgb - self.mean) / self.std
        if self.config.use_depth:
            if depth is None:
                raise ValueError('this model was trained with depth input; pass depth')
            x = torch.cat([x, depth / 2.0], dim=1)
        return x

    def forward(self, image: torch.Tensor, prompt: torch.Tensor, prompt_mask: torch.Tensor,
                object_weights: torch.Tensor | None = None) -> NetworkOutput:
        """
        Args:
            image: (B, 3|4, H_in, W_in) normalised input from :meth:`normalize_image`.
            prompt: (B, L, D) prompt tokens from :meth:`encode_text` or :meth:`encode_point`.
            prompt_mask: (B, L) float, 1 = real token, 0 = padding.
            object_weights: optional (B, 1, H_in, W_in) weights in [0, 1] to pool the object
                token under (training feeds ground truth here); default: sigmoid(mask logits).
        """
        if self.config.object_slots:
            maps = self.image_maps(image)
            obj = self.objects.objects(maps, self.objects.peaks(maps['heat']))
            scores, none = self.objects.select(obj['tokens'], obj['heat'], prompt, prompt_mask)
            return self.finish_objects(image, maps, obj['masks'], scores, none, object_weights)
        cfg = self.config
        c2, c3, c4, c5 = self.backbone(image)
        p3, p4, _ = self.fpn([c3, c4, c5])
        b, d, h16, w16 = p4.shape
        v = p4.flatten(2).transpose(1, 2)                          # (B, N, D)
        pad_bias = (1.0 - prompt_mask) * -1e4                       # (B, L)
        pad_bias = pad_bias[:, None, :].expand(b, h16 * w16, -1)
        pad_bias = pad_bias.repeat_interleave(cfg.heads, dim=0)     # (B*heads, N, L)
        t = prompt
        for block in self.fusion:
            v, t = block(v, self.pos16, t, pad_bias)
        m = prompt_mask.unsqueeze(-1)
        sentence = (t * m).sum(1) / m.sum(1).clamp(min=1.0)         # (B, D)

        gamma, beta = self.film(sentence).chunk(2, dim=-1)
        fused4 = v.transpose(1, 2).reshape(b, d, h16, w16)
        x = p3 * (1 + gamma[..., None, None]) + beta[..., None, None]
        x = x + F.interpolate(fused4, size=p3.shape[-2:], mode='bilinear', align_corners=False)
        x = self.head_s8(torch.cat([x, self._coords(x)], dim=1))
        x = F.interpolate(x, size=c2.shape[-2:], mode='bilinear', align_corners=False)
        x = self.head_s4(x + self.c2_lateral(c2))
        dense_category, dense_color = self.dense_category_head(x), self.dense_color_head(x)
        dense_size = text_attrs = match = None
        if cfg.attribute_matching:
            dense_size = self.dense_size_head(x)
            text_attrs = (self.text_category_head(sentence), self.text_color_head(sentence),
                          self.text_size_head(sentence))
            match = self._attribute_match((dense_category, dense_color, dense_size), text_attrs)
        x = x * torch.sigmoid(self.query_gate(sentence))[..., None, None]
        corr = (x * self.query_kernel(sentence)[..., None, None]).sum(1, keepdim=True) / math.sqrt(32)
        if match is not None:
            corr = corr + self.match_scale * match
        x = F.interpolate(torch.cat([x, corr], dim=1), scale_factor=2.0, mode='bilinear',
                          align_corners=False)
        x = self.head_s2(x)
        size = (cfg.input_height, cfg.input_width)
        logits = (F.interpolate(self.mask_out(x), size=size, mode='bilinear', align_corners=False)
                  + F.interpolate(corr, size=size, mode='bilinear', align_corners=False))
        if self.refine is not None:
            logits = logits + self.refine(torch.cat([logits, image], dim=1))

        weights = torch.sigmoid(logits) if object_weights is None else object_weights
        w3 = F.avg_pool2d(weights, 8)                               # (B, 1, h8, w8) = P3 grid
        obj = (p3 * w3).sum((2, 3)) / w3.sum((2, 3)).clamp(min=1e-3)
        obj = self.obj_norm(obj)
        exists = self.exists_mlp(torch.cat([obj, sentence], dim=-1)).squeeze(-1)
        return NetworkOutput(logits, exists, self.category_head(obj), self.color_head(obj),
                             self.size_head(obj), corr, dense_category, dense_color, dense_size,
                             text_attrs)

    # ---- object-centric decoder (object_slots > 0) ---------------------------------------------
    def image_maps(self, image: torch.Tensor) -> dict:
        """Language-free dense maps of the object decoder (see ``objects.ObjectDecoder.pixels``)."""
        stem, c2, c3, c4, c5 = self.backbone(image, with_stem=True)
        p3, p4, _ = self.fpn([c3, c4, c5])
        maps = self.objects.pixels(stem, c2, p3, p4, self._coords)
        if self.config.use_depth:
            maps.update(self.objects.depth_maps(image))
        return maps

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
        if cfg.use_depth:
            obj = self.objects.attribute_input(obj, self.objects.depth_geometry(w4, maps)[:, 0])
        return NetworkOutput(logits, exists, self.category_head(obj), self.color_head(obj),
                             self.size_head(obj))

    @staticmethod
    def _attribute_match(dense: tuple, text: tuple) -> torch.Tensor:
        """(B, 1, h, w) log-score that a pixel is on an object with the attributes the phrase
        names. dense: per-pixel logits (B, 1+n, h, w) with class 0 = background; text: (B, 1+n)
        with class 0 = "not mentioned"."""
        log_obj = None
        score = 0.0
        for pixel_logits, text_logits in zip(dense, text):
            lp = F.log_softmax(pixel_logits, dim=1)
            if log_obj is None:   # object-vs-background from the category head
                # log(1 - p_bg) as log(sum of the object classes' probabilities): no
                # cancellation when p_bg ~ 1 (log1p(-p_bg) differed by 2e-3 between torch and
                # ONNX Runtime there); floored at log(1e-4) as the training graph was
                log_obj = torch.log(lp[:, 1:].exp().sum(1, keepdim=True)).clamp(
                    min=math.log(1e-4))
            cond = F.log_softmax(pixel_logits[:, 1:], dim=1)        # log p(attr | object)
            pt = F.softmax(text_logits, dim=1)[:, 1:]                # mentioned attr probs
            score = score + (cond * pt[..., None, None]).sum(1, keepdim=True)
        return log_obj + score

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
