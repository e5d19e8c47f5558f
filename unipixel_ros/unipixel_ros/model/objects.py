"""Object-centric decoder: find every object, then let the phrase choose one of them.

A dense decoder has to learn "which pixels does this phrase mean" from one referred mask per
sample; positions, relations and superlatives then have to emerge from a per-pixel correlation,
which a CPU-sized budget never got to (the first model, unipixel_sim_v1: val cIoU 30 after 3000
steps). This decoder splits the problem the way the scenes are built:

1. language-free, dense and supervised by *every* object of every image: a centre heatmap, a
   per-pixel mask embedding and per-object kernels (CondInst-style) give K instance masks;
2. each instance becomes an object token: its mask-pooled features, its centre, apparent area
   and detection score;
3. text tokens and object tokens meet in repeated cross-attention blocks (objects also attend to
   each other, so "left of the block" and "the biggest" can compare); a score per object plus a
   "none of them" score give the selection and the target-exists logit;
4. the mask is the selection-weighted mixture of the instance masks, refined at input size with
   the image; the object token pooled under it feeds the attribute heads (region -> words).

Shapes for the 320x240 input (D = dim, K = object_slots, E = mask embedding channels)::

    s4 features F (B, 48, 60, 80) -> heat (B, 1, 60, 80), token features (B, D, 60, 80)
    s2 mask embedding (B, E, 120, 160)
    peaks: top-K of the max-pooled heat -> (B, K) cell indices
    instance logits (B, K, 120, 160); object tokens (B, K, D)
    selection scores (B, K) + none (B,) -> exists logit (B,), mask logits (B, 1, 240, 320)
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from .layers import point_position_encoding

EMBED = 16      # mask embedding channels at stride 2
FEAT = 48       # pixel decoder channels at stride 4
FINE = 24       # channels of the stride-2 embedding branch
HEAT_PRIOR = -2.19   # sigmoid(-2.19) = 0.1: the CenterNet initial heat bias


def _conv_bn(cin: int, cout: int, k: int = 3) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, 1, k // 2, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True))


def logsumexp(x: torch.Tensor, dim: int) -> torch.Tensor:
    """``torch.logsumexp`` spelled with ReduceMax/Exp/ReduceSum/Log: ONNX exports it as
    ReduceLogSumExp, which the TensorRT 10 parser does not support."""
    top = x.max(dim=dim, keepdim=True).values
    return (top + torch.log(torch.exp(x - top).sum(dim=dim, keepdim=True))).squeeze(dim)


class ObjectTextBlock(nn.Module):
    """Objects attend to each other and read the phrase; the phrase then reads the objects."""

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        self.norm_o0 = nn.LayerNorm(dim)
        self.o_self = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm_o1, self.norm_t1 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.o_from_t = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm_o2 = nn.LayerNorm(dim)
        self.ffn_o = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))
        self.norm_t2, self.norm_o3 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.t_from_o = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.norm_t3 = nn.LayerNorm(dim)
        self.ffn_t = nn.Sequential(nn.Linear(dim, 2 * dim), nn.GELU(), nn.Linear(2 * dim, dim))

    def forward(self, o: torch.Tensor, t: torch.Tensor, t_bias: torch.Tensor
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """o (B, K, D) object tokens, t (B, L, D) prompt tokens, t_bias (B*heads, K, L) additive
        attention bias (0 keep, -1e4 padding)."""
        q = self.norm_o0(o)
        o = o + self.o_self(q, q, q, need_weights=False)[0]
        kv = self.norm_t1(t)
        o = o + self.o_from_t(self.norm_o1(o), kv, kv, attn_mask=t_bias, need_weights=False)[0]
        o = o + self.ffn_o(self.norm_o2(o))
        kv = self.norm_o3(o)
        t = t + self.t_from_o(self.norm_t2(t), kv, kv, need_weights=False)[0]
        t = t + self.ffn_t(self.norm_t3(t))
        return o, t


class ObjectDecoder(nn.Module):
    """Instances from the image, selection by the phrase. See the module docstring.

    Args:
        dim: token width D (the FPN width).
        stem_channels, c2_channels: backbone channels at strides 2 and 4.
        slots: K, object tokens per image (the scenes hold at most 8 objects).
        heads, blocks: attention heads and object-text blocks.
    """

    def __init__(self, dim: int, stem_channels: int, c2_channels: int, slots: int, heads: int,
                 blocks: int) -> None:
        super().__init__()
        self.slots = slots
        self.dim = dim
        self.pixel_s8 = _conv_bn(dim + 2, 64)                  # P3 + up(P4) + (x, y)
        self.c2_lateral = _conv_bn(c2_channels, 64, k=1)
        self.pixel_s4 = _conv_bn(64, FEAT)
        self.heat = nn.Sequential(_conv_bn(FEAT, 32), nn.Conv2d(32, 1, 1))
        nn.init.constant_(self.heat[-1].bias, HEAT_PRIOR)
        self.token_features = nn.Conv2d(FEAT, dim, 1)
        self.reduce_s4 = _conv_bn(FEAT, FINE, k=1)
        self.stem_lateral = _conv_bn(stem_channels, FINE, k=1)
        self.embed = nn.Sequential(_conv_bn(FINE + 2, FINE), nn.Conv2d(FINE, EMBED, 1))
        # per object: embedding weights, bias and log envelope scales (x, y)
        self.kernel = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(inplace=True),
                                    nn.Linear(dim, EMBED + 3))
        self.pool_norm = nn.LayerNorm(dim)
        self.center_proj = nn.Linear(dim, dim)
        self.geometry = nn.Sequential(nn.Linear(4, dim), nn.ReLU(inplace=True),
                                      nn.Linear(dim, dim))
        self.position = nn.Linear(dim, dim)
        self.blocks = nn.ModuleList(ObjectTextBlock(dim, heads) for _ in range(blocks))
        self.heads = heads
        self.score_query = nn.Linear(dim, dim)
        self.score_key = nn.Linear(dim, dim)
        self.none_score = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(inplace=True), nn.Linear(dim, 1))
        self.heat_weight = nn.Parameter(torch.tensor(1.0))

    # ---- image side (language-free) -------------------------------------------------------
    def pixels(self, stem: torch.Tensor, c2: torch.Tensor, p3: torch.Tensor, p4: torch.Tensor,
               coords) -> dict:
        """Dense maps of one image batch: heat (B, 1, h4, w4) logits, token features
        (B, D, h4, w4), mask embedding (B, E, h2, w2)."""
        x = p3 + F.interpolate(p4, size=p3.shape[-2:], mode='bilinear', align_corners=False)
        x = self.pixel_s8(torch.cat([x, coords(x)], dim=1))
        x = F.interpolate(x, size=c2.shape[-2:], mode='bilinear', align_corners=False)
        f4 = self.pixel_s4(x + self.c2_lateral(c2))
        y = F.interpolate(self.reduce_s4(f4), size=stem.shape[-2:], mode='bilinear',
                          align_corners=False)
        y = y + self.stem_lateral(stem)
        embed = self.embed(torch.cat([y, coords(y)], dim=1))
        return {'heat': self.heat(f4), 'tokens': self.token_features(f4), 'embed': embed}

    def peaks(self, heat: torch.Tensor) -> torch.Tensor:
        """(B, 1, h, w) heat logits -> (B, K) flat cell indices of the K strongest local maxima."""
        pooled = F.max_pool2d(heat, 3, 1, 1)
        score = torch.where(heat >= pooled, heat, heat - 1e4)
        return torch.topk(score.flatten(1), self.slots, dim=1).indices

    def objects(self, maps: dict, cells: torch.Tensor) -> dict:
        """Instance masks and object tokens for the objects centred on ``cells``.

        Args:
            maps: :meth:`pixels` output for B images.
            cells: (B, K) long flat indices into the stride-4 grid.
        Returns:
            dict with ``masks`` (B, K, h2, w2) instance logits, ``tokens`` (B, K, D) object
            tokens, ``pooled`` (B, K, D) the attribute heads' input (normalised mask-pooled
            features), ``heat`` (B, K) the heat logit at each centre, and what :meth:`tokens`
            read: ``center`` (B, K, D) and ``geometry`` (B, K, 4).
        """
        tok, heat, embed = maps['tokens'], maps['heat'], maps['embed']
        b, d, h4, w4 = tok.shape
        h2, w2 = embed.shape[-2:]
        k = cells.shape[1]
        center = torch.gather(tok.flatten(2), 2, cells[:, None, :].expand(b, d, k)).transpose(1, 2)
        center_heat = torch.gather(heat.flatten(2), 2, cells[:, None, :]).squeeze(1)   # (B, K)
        cy = (torch.div(cells, w4, rounding_mode='floor').to(tok.dtype) + 0.5) / h4    # (B, K)
        cx = (torch.remainder(cells, w4).to(tok.dtype) + 0.5) / w4
        params = self.kernel(center)                                    # (B, K, E + 3)
        weight, bias = params[..., :EMBED], params[..., EMBED]
        scale = 0.08 * torch.exp(params[..., EMBED + 1:].clamp(-3.0, 3.0))  # (B, K, 2) of image
        appearance = torch.einsum('bke,behw->bkhw', weight, embed) + bias[..., None, None]
        ys = (torch.arange(h2, dtype=tok.dtype, device=tok.device) + 0.5) / h2
        xs = (torch.arange(w2, dtype=tok.dtype, device=tok.device) + 0.5) / w2
        dx = (xs[None, None, None, :] - cx[..., None, None]) / scale[..., 0, None, None]
        dy = (ys[None, None, :, None] - cy[..., None, None]) / scale[..., 1, None, None]
        masks = appearance - 0.5 * (dx * dx + dy * dy)                 # (B, K, h2, w2)

        weights = F.avg_pool2d(torch.sigmoid(masks), 2)                 # (B, K, h4, w4)
        area = weights.sum((2, 3))                                      # (B, K) in s4 cells
        pooled = torch.einsum('bkhw,bdhw->bkd', weights, tok) / area.clamp(min=1e-3)[..., None]
        pooled = self.pool_norm(pooled)
        geometry = torch.stack([cx, cy, torch.log(area / (h4 * w4) + 1e-4),
                                torch.sigmoid(center_heat)], -1)
        return {'masks': masks, 'tokens': self.tokens(pooled, center, geometry),
                'heat': center_heat, 'pooled': pooled, 'center': center, 'geometry': geometry}

    def tokens(self, pooled: torch.Tensor, center: torch.Tensor, geometry: torch.Tensor
               ) -> torch.Tensor:
        """Object tokens (B, K, D) from the normalised mask-pooled features (B, K, D), the token
        features at the centre cells (B, K, D) and the geometry (B, K, 4): cx, cy
        (normalised), log area share, sigmoid(heat)."""
        cx, cy = geometry[..., 0], geometry[..., 1]
        return (pooled + self.center_proj(center) + self.geometry(geometry)
                + self.position(point_position_encoding(cy, cx, self.dim)))

    # ---- language side ----------------------------------------------------------------------
    def select(self, tokens: torch.Tensor, heat: torch.Tensor, prompt: torch.Tensor,
               prompt_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Which object does the prompt mean.

        Args:
            tokens: (B, K, D) object tokens; heat: (B, K) their heat logits.
            prompt: (B, L, D) prompt tokens; prompt_mask: (B, L) 1 = real token.
        Returns:
            scores (B, K) per-object logits and none (B,) the "not in view" logit; softmax over
            [scores, none] is the selection distribution.
        """
        b, k, _ = tokens.shape
        bias = ((1.0 - prompt_mask) * -1e4)[:, None, :].expand(b, k, -1)
        bias = bias.repeat_interleave(self.heads, dim=0)               # (B*heads, K, L)
        o, t = tokens, prompt
        for block in self.blocks:
            o, t = block(o, t, bias)
        m = prompt_mask.unsqueeze(-1)
        sentence = (t * m).sum(1) / m.sum(1).clamp(min=1.0)             # (B, D)
        scores = torch.einsum('bd,bkd->bk', self.score_query(sentence), self.score_key(o))
        scores = scores / math.sqrt(self.dim) + self.heat_weight * F.logsigmoid(heat)
        return scores, self.none_score(sentence).squeeze(-1)

    @staticmethod
    def exists_logit(scores: torch.Tensor, none: torch.Tensor) -> torch.Tensor:
        """Target-exists logit: (B, K) object scores, (B,) "none" score -> (B,)
        logsumexp(scores) - none, i.e. log p(some object) - log p(none)."""
        return logsumexp(scores, dim=1) - none

    @staticmethod
    def compose(masks: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
        """Selection-weighted mixture of instance masks: (B, K, h, w), (B, K) -> (B, 1, h, w)
        logits of p = sum_k softmax(scores)_k * sigmoid(masks_k), with p in [1e-4, 1 - 1e-4].

        1 - p is summed as sum_k softmax(scores)_k * sigmoid(-masks_k) rather than subtracted:
        for a confident pick p is within 1e-4 of 1, where 1 - p in fp32 keeps only ~3 digits
        and the logit differed by 1e-3 between torch and ONNX Runtime."""
        w = torch.softmax(scores, dim=1)[..., None, None]
        p = (w * torch.sigmoid(masks)).sum(1, keepdim=True).clamp(min=1e-4)
        q = (w * torch.sigmoid(-masks)).sum(1, keepdim=True).clamp(min=1e-4)
        return torch.log(p) - torch.log(q)
