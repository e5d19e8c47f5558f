"""Training batches and losses of the object-centric decoder (``model/objects.py``).

One step runs the image side once per scene and supervises it with every object of the scene
(centre heatmap, instance masks, attributes), then asks several questions about the same scene
(expressions, absent objects, clicks) through the cheap object-text blocks. Object slots are
teacher-forced: slot i < max_objects holds ground-truth object i (its centre cell, jittered by
up to one cell), the other slots hold background cells, the stand-ins for the spurious peaks
the detector produces at inference.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from unipixel_ros.model.network import UniPixelNet

from .data import TrainingCache, mask_to_input
from .losses import dice_loss


class ObjectBatchSampler:
    """Scenes, their objects and several prompts per scene from a :class:`TrainingCache`.

    Args:
        cache: the training split.
        net: the network (input size, slot count).
        queries_per_scene: expressions sampled per scene (with replacement).
        point_prompt_prob: per scene, probability of one extra click prompt.
        generator: the seeded RNG of the run (saved in last.pt).
    """

    def __init__(self, cache: TrainingCache, net: UniPixelNet, queries_per_scene: int,
                 point_prompt_prob: float, generator: torch.Generator) -> None:
        self.c, self.g = cache, generator
        cfg = net.config
        self.h, self.w = cfg.input_height, cfg.input_width
        self.slots = cfg.object_slots
        self.q = queries_per_scene
        self.point_prob = point_prompt_prob
        n_scenes = len(cache.scene_ids)
        order = torch.argsort(cache.expr_scene, stable=True)
        counts = torch.bincount(cache.expr_scene, minlength=n_scenes)
        self.first = torch.cumsum(counts, 0) - counts
        self.counts, self.order = counts, order
        self.scene_weights = (counts > 0).float()
        self.type_filter: torch.Tensor | None = None   # (E,) bool, see ``set_types``

    def set_types(self, keep: torch.Tensor | None) -> None:
        """Restrict expressions to a bool mask over the cache's expressions (None = all)."""
        self.type_filter = keep

    def _expressions_of(self, scene: int, n: int) -> torch.Tensor:
        start, count = int(self.first[scene]), int(self.counts[scene])
        idx = self.order[start:start + count]
        if self.type_filter is not None:
            kept = idx[self.type_filter[idx]]
            idx = kept if len(kept) else idx
        return idx[torch.randint(len(idx), (n,), generator=self.g)]

    def sample(self, num_scenes: int) -> dict:
        c, k_max = self.c, self.c.object_attrs.shape[1]
        scenes = torch.multinomial(self.scene_weights, num_scenes, replacement=False,
                                   generator=self.g)
        inst = c.instances[scenes]                                           # (S, H, W) uint8
        objs = inst[:, None] == torch.arange(1, k_max + 1, dtype=torch.uint8)[None, :, None, None]
        h2, w2, h4, w4 = self.h // 2, self.w // 2, self.h // 4, self.w // 4
        masks2 = mask_to_input(objs.float(), h2, w2)                          # (S, M, h2, w2)
        masks4 = mask_to_input(objs.float(), h4, w4)
        area4 = masks4.sum((2, 3))                                            # (S, M) cells
        valid = masks2.sum((2, 3)) >= 2.0
        ys = torch.arange(h4, dtype=torch.float32) + 0.5
        xs = torch.arange(w4, dtype=torch.float32) + 0.5
        cy = (masks4.sum(3) * ys).sum(2) / area4.clamp(min=1e-6)              # (S, M) cells
        cx = (masks4.sum(2) * xs).sum(2) / area4.clamp(min=1e-6)
        heat = self._heat_target(cx, cy, area4, valid, h4, w4)
        cells = self._slot_cells(inst, cx, cy, valid, h4, w4)

        # queries: expressions of each scene, plus an optional click on one of its objects
        q = self.q
        expr = torch.stack([self._expressions_of(int(s), q) for s in scenes])  # (S, q)
        expr = expr.flatten()
        q_scene = torch.arange(num_scenes).repeat_interleave(q)
        target = c.expr_target[expr].clone()
        text_feat = c.text_features[c.expr_text[expr]].float()
        text_mask = c.text_mask[c.expr_text[expr]].float()
        is_point = torch.zeros(len(expr), dtype=torch.bool)
        uv = torch.zeros(len(expr), 2)
        clicks_scene, clicks_uv, clicks_target = [], [], []
        for s in range(num_scenes):
            ids = torch.nonzero(valid[s]).flatten()
            if len(ids) == 0 or float(torch.rand(1, generator=self.g)) >= self.point_prob:
                continue
            obj = int(ids[torch.randint(len(ids), (1,), generator=self.g)])
            py, px = torch.nonzero(objs[s, obj], as_tuple=True)
            j = int(torch.randint(len(py), (1,), generator=self.g))
            clicks_scene.append(s)
            clicks_uv.append([(float(px[j]) + 0.5) / inst.shape[-1],
                              (float(py[j]) + 0.5) / inst.shape[-2]])
            clicks_target.append(obj)
        if clicks_scene:
            n = len(clicks_scene)
            q_scene = torch.cat([q_scene, torch.tensor(clicks_scene)])
            target = torch.cat([target, torch.tensor(clicks_target)])
            text_feat = torch.cat([text_feat, torch.zeros(n, *text_feat.shape[1:])])
            text_mask = torch.cat([text_mask, torch.zeros(n, text_mask.shape[1])])
            is_point = torch.cat([is_point, torch.ones(n, dtype=torch.bool)])
            uv = torch.cat([uv, torch.tensor(clicks_uv)])
        # a referred object too small to get a slot (< 2 px at stride 2) is labelled "none":
        # the selection cannot point at it (rare, and it mirrors what inference can do)
        ok = target >= 0
        ok[ok.clone()] = valid[q_scene[ok], target[ok]]
        target = torch.where(ok, target, torch.full_like(target, -1))
        gain = 1.0 + (torch.rand(num_scenes, 1, 1, 1, generator=self.g) - 0.5) * 0.3
        bias = (torch.rand(num_scenes, 1, 1, 1, generator=self.g) - 0.5) * 0.1
        rgb = (c.rgb[scenes].float() / 255.0 * gain + bias).clamp(0, 1)
        return dict(rgb=rgb, depth=c.depth_mm[scenes].float() / 1000.0, cells=cells, heat=heat,
                    masks2=masks2, valid=valid, attrs=c.object_attrs[scenes],
                    full_masks=objs, q_scene=q_scene, target=target, text_features=text_feat,
                    text_mask=text_mask, is_point=is_point, uv=uv)

    def _heat_target(self, cx, cy, area4, valid, h4, w4) -> torch.Tensor:
        """(S, 1, h4, w4) CenterNet targets: max over objects of a Gaussian at the centroid
        (sigma grows with the object's size), exactly 1 at each centre cell."""
        ys = torch.arange(h4, dtype=torch.float32)[:, None] + 0.5
        xs = torch.arange(w4, dtype=torch.float32)[None, :] + 0.5
        sigma = (area4.sqrt() / 4).clamp(0.7, 3.0)                          # (S, M)
        g = torch.exp(-((xs - cx[..., None, None]) ** 2 + (ys - cy[..., None, None]) ** 2)
                      / (2 * sigma[..., None, None] ** 2))
        g = g * valid[..., None, None]
        heat = g.max(1, keepdim=True).values
        cell = self._cell(cx, cy, h4, w4)
        flat = heat.flatten(1)
        for s in range(cell.shape[0]):
            flat[s, cell[s][valid[s]]] = 1.0
        return flat.view_as(heat)

    @staticmethod
    def _cell(cx, cy, h4, w4) -> torch.Tensor:
        return (cy.floor().clamp(0, h4 - 1) * w4 + cx.floor().clamp(0, w4 - 1)).long()

    def _slot_cells(self, inst, cx, cy, valid, h4, w4) -> torch.Tensor:
        """(S, K) flat stride-4 cells: jittered object centres, then background cells."""
        s_count, m = cx.shape
        jitter = torch.randint(-1, 2, (2, s_count, m), generator=self.g).float()
        jitter = jitter * (torch.rand(s_count, m, generator=self.g) < 0.5)
        cells = self._cell(cx + jitter[0], cy + jitter[1], h4, w4)
        sy, sx = inst.shape[-2] // h4, inst.shape[-1] // w4
        background = inst[:, sy // 2::sy, sx // 2::sx][:, :h4, :w4].flatten(1) == 0   # (S, N)
        extra = self.slots - m
        if extra < 0:
            raise ValueError(f'object_slots {self.slots} < max objects per scene {m}')
        weights = background.float() + 1e-6
        fill = torch.multinomial(weights, m + extra, replacement=True, generator=self.g)
        cells = torch.where(valid, cells, fill[:, :m])
        return torch.cat([cells, fill[:, m:]], dim=1)


def heat_focal_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """CenterNet's penalty-reduced focal loss, normalised by the number of centres."""
    p = torch.sigmoid(logits).clamp(1e-4, 1 - 1e-4)
    pos = target >= 1.0
    pos_loss = -torch.log(p) * (1 - p) ** 2 * pos
    neg_loss = -torch.log(1 - p) * p ** 2 * (1 - target) ** 4 * (~pos)
    return (pos_loss.sum() + neg_loss.sum()) / pos.sum().clamp(min=1)


#: weight of each loss part in the total (``TrainConfig.loss_weights`` overrides them)
LOSS_WEIGHTS = {'heat': 1.0, 'instance_bce': 1.0, 'instance_dice': 1.0, 'attributes': 0.5,
                'selection': 1.0, 'exists': 0.5, 'mask_bce': 1.0, 'mask_dice': 1.0}


def loss_weights(overrides: dict | None = None) -> dict:
    """:data:`LOSS_WEIGHTS` with ``overrides`` (ValueError naming an unknown part)."""
    unknown = set(overrides or {}) - set(LOSS_WEIGHTS)
    if unknown:
        raise ValueError(f'unknown loss parts {sorted(unknown)}; known: {sorted(LOSS_WEIGHTS)}')
    return {**LOSS_WEIGHTS, **{k: float(v) for k, v in (overrides or {}).items()}}


def object_step_loss(net: UniPixelNet, batch: dict, prompts: tuple, mask_objects: int = 2,
                     weights: dict | None = None) -> tuple[torch.Tensor, dict]:
    """Total loss and its parts for one batch of :meth:`ObjectBatchSampler.sample`.

    Parts: ``heat`` (focal), ``instance_bce`` + ``instance_dice`` (every object's mask at
    stride 2), ``attributes`` (CE of every object's category/colour/size), ``selection`` (CE
    over the K slots + "none" per prompt), ``exists`` (BCE of logsumexp(scores) - none),
    ``mask_bce`` + ``mask_dice`` (the final refined mask at input size for ``mask_objects``
    objects per scene, selected one-hot). ``weights``: from :func:`loss_weights` (default
    :data:`LOSS_WEIGHTS`).
    """
    dec = net.objects
    image = net.normalize_image(batch['rgb'])
    maps = net.image_maps(image)
    obj = dec.objects(maps, batch['cells'])
    valid, m = batch['valid'], batch['valid'].shape[1]
    parts = {'heat': heat_focal_loss(maps['heat'], batch['heat'])}

    inst_logits = obj['masks'][:, :m][valid]                              # (P, h2, w2)
    inst_target = batch['masks2'][valid]
    parts['instance_bce'] = F.binary_cross_entropy_with_logits(inst_logits, inst_target)
    parts['instance_dice'] = dice_loss(inst_logits[:, None], inst_target[:, None]).mean()

    pooled = obj['pooled'][:, :m][valid]                                  # (P, D)
    attrs = batch['attrs'][valid]                                         # (P, 3)
    # -1 = a name outside the vocabulary (randomized distractors): ignored; a head with no
    # known label in the batch is left out (cross_entropy over zero labels is NaN)
    attr_terms = [F.cross_entropy(head(pooled), attrs[:, j], ignore_index=-1)
                  for j, head in enumerate((net.category_head, net.color_head, net.size_head))
                  if bool((attrs[:, j] >= 0).any())]
    parts['attributes'] = (torch.stack(attr_terms).mean() if attr_terms
                           else pooled.sum() * 0)

    qs = batch['q_scene']
    prompt, prompt_mask = prompts
    scores, none = dec.select(obj['tokens'][qs], obj['heat'][qs], prompt, prompt_mask)
    target = batch['target']
    k = scores.shape[1]
    labels = torch.where(target >= 0, target, torch.full_like(target, k))
    parts['selection'] = F.cross_entropy(torch.cat([scores, none[:, None]], dim=1), labels)
    exists = dec.exists_logit(scores, none)
    parts['exists'] = F.binary_cross_entropy_with_logits(exists, (target >= 0).float())

    # final mask: refine a one-hot selection of a few objects per scene, as inference composes it
    g = torch.Generator().manual_seed(int(batch['cells'].sum()))
    rows, picks = [], []
    for s in range(valid.shape[0]):
        ids = torch.nonzero(valid[s]).flatten()
        if len(ids):
            chosen = ids[torch.randperm(len(ids), generator=g)[:mask_objects]]
            rows += [s] * len(chosen)
            picks += chosen.tolist()
    if rows:
        rows_t, picks_t = torch.tensor(rows), torch.tensor(picks)
        one_hot = torch.full((len(rows), k), -1e4)
        one_hot[torch.arange(len(rows)), picks_t] = 0.0
        out = net.finish_objects(image[rows_t], {k: v[rows_t] for k, v in maps.items()},
                                 obj['masks'][rows_t], one_hot, torch.zeros(len(rows)))
        target_mask = mask_to_input(batch['full_masks'][rows_t, picks_t][:, None].float(),
                                    net.config.input_height, net.config.input_width)
        parts['mask_bce'] = F.binary_cross_entropy_with_logits(out.mask_logits, target_mask)
        parts['mask_dice'] = dice_loss(out.mask_logits, target_mask).mean()
    weights = weights or LOSS_WEIGHTS
    total = sum(weights[name] * value for name, value in parts.items())
    return total, {name: float(value.detach()) for name, value in parts.items()}
