"""Training loop: seeded, resumable, with progress bars, a metrics CSV and a PNG of the curves.

``unipixel-ros train --config FILE`` (JSON or YAML) with keys of :class:`TrainConfig`. Each run
writes into ``out_dir``: ``last.pt`` (weights, optimizer, step, RNG states; loaded with
``weights_only=True``), ``best.safetensors`` + ``best.json`` (the shipped format), ``metrics.csv``
and ``curves.png``. Re-running the same command resumes from ``last.pt``; ``max_minutes`` stops
a run cleanly (checkpoint first) so long trainings can span several sessions.
"""
from __future__ import annotations

import csv
import json
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from unipixel_ros.model.checkpoint import save_checkpoint, warm_start
from unipixel_ros.model.network import ModelConfig, UniPixelNet
from unipixel_ros.model.text_encoder import TextEncoder

from .data import TrainingCache, build_cache, mask_to_input
from .object_training import ObjectBatchSampler, object_step_loss
from .object_training import loss_weights as resolve_loss_weights  # `loss_weights` is a local


@dataclass
class TrainConfig:
    data: list = field(default_factory=lambda: ['data/sim_train'])  # dataset roots
    out_dir: str = 'runs/default'
    model: dict = field(default_factory=dict)        # ModelConfig overrides
    text_encoder: str | None = None                  # None = offline all-MiniLM-L6-v2
    steps: int = 6000
    batch_size: int = 16                             # samples (object decoder: scenes) per step
    queries_per_scene: int = 4                       # object decoder: prompts per scene
    lr: float = 1.5e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 200
    grad_clip: float = 1.0
    point_prompt_prob: float = 0.15                  # share of region (click) prompts
    absent_min_share: float = 0.15                   # oversample absent queries up to this
    expression_types: list = field(default_factory=list)  # train only on these ([] = all)
    # curriculum: [{'until_step': N, 'expression_types': [...]}, ...] applied in order before
    # falling back to ``expression_types``
    phases: list = field(default_factory=list)
    eval_every: int = 500
    eval_samples: int = 400
    seed: int = 0
    threads: int = 0                                 # 0 = torch default
    device: str = 'auto'                             # auto | cpu | cuda
    max_minutes: float = 0.0                         # 0 = no limit; stop cleanly when reached
    init_from: str | None = None                     # warm start (see checkpoint.warm_start)
    # weights of the loss parts, overriding object_training.LOSS_WEIGHTS (e.g. {attributes: 2})
    loss_weights: dict = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | Path) -> 'TrainConfig':
        text = Path(path).read_text()
        if str(path).endswith(('.yaml', '.yml')):
            import yaml
            raw = yaml.safe_load(text)
        else:
            raw = json.loads(text)
        unknown = set(raw) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(f'{path}: unknown training options {sorted(unknown)}')
        return cls(**raw)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def expression_weights(cache: TrainingCache, absent_min_share: float) -> torch.Tensor:
    """(E,) sampling weight per expression: absent-target queries are oversampled up to
    ``absent_min_share`` of the draws, every other expression weighs 1."""
    absent = (cache.expr_target < 0).float()
    share = float(absent.mean())
    weight_absent = (absent_min_share / max(share, 1e-6)) if share < absent_min_share else 1.0
    return torch.where(absent > 0, weight_absent, 1.0)


def build_prompts(net: UniPixelNet, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Text prompts for expression samples, one-token point prompts for click samples."""
    text = net.encode_text(batch['text_features'])                  # (B, L, D)
    mask = batch['text_mask'].clone()
    is_point = batch['is_point']
    if is_point.any():
        point = net.encode_point(batch['uv'])                         # (B, 1, D)
        pad = torch.zeros_like(text)
        pad[:, :1] = point
        text = torch.where(is_point[:, None, None], pad, text)
        point_mask = torch.zeros_like(mask)
        point_mask[:, 0] = 1
        mask = torch.where(is_point[:, None], point_mask, mask)
    return text, mask


@torch.no_grad()
def quick_eval(net: UniPixelNet, cache: TrainingCache, n: int, device: torch.device,
               batch_size: int = 16) -> dict:
    """Fast validation at network resolution: cIoU, mIoU, exists accuracy (threshold 0.5)."""
    net.eval()
    cfg = net.config
    n = min(n, cache.num_expressions)
    idx = torch.linspace(0, cache.num_expressions - 1, n).long()
    inter = union = 0.0
    ious, correct = [], 0
    for i in range(0, n, batch_size):
        j = idx[i:i + batch_size]
        scenes, targets = cache.expr_scene[j], cache.expr_target[j]
        image = net.normalize_image(cache.rgb[scenes].float().to(device) / 255.0)
        prompt = net.encode_text(cache.text_features[cache.expr_text[j]].float().to(device))
        out = net(image, prompt, cache.text_mask[cache.expr_text[j]].float().to(device))
        found = (out.exists_logit > 0).cpu()
        full = (cache.instances[scenes] == (targets + 1).to(torch.uint8)[:, None, None])
        gt = mask_to_input(full[:, None], cfg.input_height, cfg.input_width) > 0.5
        pred = (out.mask_logits > 0).cpu() & found[:, None, None, None]
        for b in range(len(j)):
            exists = bool(targets[b] >= 0)
            correct += int(bool(found[b]) == exists)
            if exists:
                it = float((pred[b] & gt[b]).sum())
                un = float((pred[b] | gt[b]).sum())
                inter, union = inter + it, union + un
                ious.append(it / un if un else 0.0)
    net.train()
    return {'val_ciou': 100 * inter / max(union, 1.0), 'val_miou': 100 * float(np.mean(ious or [0])),
            'val_exists_acc': 100 * correct / max(n, 1)}


def plot_curves(csv_path: Path, png_path: Path) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    rows = list(csv.DictReader(csv_path.open()))
    if not rows:
        return
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    steps = [int(r['step']) for r in rows]
    for key in ('loss', 'mask_bce', 'mask_dice', 'exists', 'attributes', 'selection',
                'dense_attributes', 'text_attributes', 'heat', 'instance_bce', 'instance_dice'):
        values = [(s, float(r[key])) for s, r in zip(steps, rows) if r.get(key)]
        if values:
            axes[0].plot(*zip(*values), label=key)
    axes[0].set_yscale('log')
    axes[0].set_xlabel('step')
    axes[0].set_title('training losses (mean over the logging window)')
    axes[0].legend()
    ev = [r for r in rows if r.get('val_ciou')]
    for key in ('val_ciou', 'val_miou', 'val_exists_acc'):
        axes[1].plot([int(r['step']) for r in ev], [float(r[key]) for r in ev], marker='o', label=key)
    axes[1].set_xlabel('step')
    axes[1].set_ylabel('%')
    axes[1].set_title('validation')
    axes[1].legend()
    fig.tight_layout()
    fig.savefig(png_path, dpi=110)
    plt.close(fig)


def train(cfg: TrainConfig, progress: bool = True) -> dict:
    """Run (or resume) a training; returns a summary dict."""
    loss_weights = resolve_loss_weights(cfg.loss_weights)   # a typo fails before the caches load
    out = Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = torch.device('cuda' if cfg.device == 'auto' and torch.cuda.is_available()
                          else ('cpu' if cfg.device == 'auto' else cfg.device))
    _seed_everything(cfg.seed)
    model_cfg = ModelConfig.from_dict(cfg.model)
    encoder = TextEncoder(cfg.text_encoder, max_tokens=model_cfg.max_text_tokens)
    model_cfg.text_dim = encoder.hidden_size
    # teacher forcing gives every ground-truth object a slot: keep at most object_slots per scene
    caches = [build_cache(root, 'train', model_cfg.input_height, model_cfg.input_width, encoder,
                          max_objects=model_cfg.object_slots, progress=progress)
              for root in cfg.data]
    train_cache = caches[0] if len(caches) == 1 else _concat(caches)
    val_cache = build_cache(cfg.data[0], 'val', model_cfg.input_height, model_cfg.input_width,
                            encoder, max_objects=model_cfg.object_slots, progress=progress)

    net = UniPixelNet(model_cfg).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    g = torch.Generator().manual_seed(cfg.seed)
    step, best = 0, -1.0
    last = out / 'last.pt'
    if cfg.init_from and not last.is_file():
        report = warm_start(net, cfg.init_from)
        net.to(device)
        tqdm.write(f"warm start from {cfg.init_from}: {len(report['copied'])} tensors copied, "
                   f"grown {report['grown']}, new {report['new']}")
    if last.is_file():
        state = torch.load(last, weights_only=True, map_location=device)
        net.load_state_dict(state['model'])
        opt.load_state_dict(state['optimizer'])
        step, best = int(state['step']), float(state['best'])
        g.set_state(state['generator'])
        torch.set_rng_state(state['torch_rng'])
    sampler = ObjectBatchSampler(train_cache, net, cfg.queries_per_scene, cfg.point_prompt_prob,
                                 g)
    base_weights = expression_weights(train_cache, cfg.absent_min_share)

    def weights_for(types: list) -> torch.Tensor:
        if not types:
            return base_weights
        from unipixel_ros.dataset.vocab import EXPRESSION_TYPES
        unknown = set(types) - set(EXPRESSION_TYPES)
        if unknown:
            raise ValueError(f'unknown expression types {sorted(unknown)}; '
                             f'known: {list(EXPRESSION_TYPES)}')
        keep = torch.tensor([EXPRESSION_TYPES.index(t) for t in types])
        return base_weights * torch.isin(train_cache.expr_type, keep)

    def types_at(s: int) -> list:
        for phase in cfg.phases:
            if s < int(phase['until_step']):
                return list(phase.get('expression_types', []))
        return list(cfg.expression_types)

    active_types = None

    def lr_at(s: int) -> float:
        if s < cfg.warmup_steps:
            return cfg.lr * (s + 1) / cfg.warmup_steps
        t = (s - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
        return cfg.lr * 0.5 * (1 + math.cos(math.pi * min(1.0, t)))

    csv_path = out / 'metrics.csv'
    fields = ['step', 'lr', 'loss', 'mask_bce', 'mask_dice', 'exists', 'attributes', 'selection',
              'heat', 'instance_bce', 'instance_dice', 'sec_per_step',
              'val_ciou', 'val_miou', 'val_exists_acc']
    if not csv_path.is_file():
        with csv_path.open('w', newline='') as f:
            csv.DictWriter(f, fieldnames=fields).writeheader()
    (out / 'train_config.json').write_text(json.dumps(asdict(cfg), indent=2))

    def checkpoint(final_eval: dict | None) -> None:
        torch.save({'model': net.state_dict(), 'optimizer': opt.state_dict(), 'step': step,
                    'best': best, 'generator': g.get_state(), 'torch_rng': torch.get_rng_state(),
                    'model_config': json.dumps(model_cfg.to_dict())}, out / 'last.tmp')
        (out / 'last.tmp').replace(last)

    start = time.monotonic()
    window: dict[str, list] = {}
    net.train()
    bar = tqdm(total=cfg.steps, initial=step, desc='train', disable=not progress)
    stopped_early = False
    while step < cfg.steps:
        if cfg.max_minutes and (time.monotonic() - start) / 60 > cfg.max_minutes:
            stopped_early = True
            break
        t0 = time.perf_counter()
        for group in opt.param_groups:
            group['lr'] = lr_at(step)
        if types_at(step) != active_types:
            active_types = types_at(step)
            sampler.set_types(weights_for(active_types) > 0 if active_types else None)
            bar.write(f"step {step}: training on {active_types or 'all expression types'}")
        batch = {k: v.to(device) for k, v in sampler.sample(cfg.batch_size).items()}
        loss, parts = object_step_loss(net, batch, build_prompts(net, batch),
                                       weights=loss_weights)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), cfg.grad_clip)
        opt.step()
        step += 1
        parts['loss'] = float(loss.detach())
        parts['sec_per_step'] = time.perf_counter() - t0
        for k, v in parts.items():
            window.setdefault(k, []).append(v)
        bar.update(1)
        bar.set_postfix(loss=f"{parts['loss']:.3f}", dice=f"{parts.get('mask_dice', 0):.3f}",
                        sel=f"{parts.get('selection', 0):.3f}")
        if step % cfg.eval_every == 0 or step == cfg.steps:
            row = {'step': step, 'lr': lr_at(step - 1)}
            row.update({k: float(np.mean(v)) for k, v in window.items()})
            window = {}
            row.update(quick_eval(net, val_cache, cfg.eval_samples, device))
            with csv_path.open('a', newline='') as f:
                csv.DictWriter(f, fieldnames=fields).writerow({k: row.get(k, '') for k in fields})
            score = row['val_ciou'] + row['val_exists_acc']
            if score > best:
                best = score
                save_checkpoint(net, out / 'best.safetensors',
                                extra={'step': step, 'val': {k: round(row[k], 2) for k in row
                                                             if k.startswith('val_')}})
            checkpoint(row)
            plot_curves(csv_path, out / 'curves.png')
            bar.write(f"step {step}: loss {row['loss']:.3f} val cIoU {row['val_ciou']:.1f} "
                      f"exists acc {row['val_exists_acc']:.1f}")
    bar.close()
    checkpoint(None)
    if csv_path.stat().st_size:
        plot_curves(csv_path, out / 'curves.png')
    summary = {'steps_done': step, 'steps_total': cfg.steps, 'stopped_early': stopped_early,
               'best_score': best, 'minutes': round((time.monotonic() - start) / 60, 1),
               'out_dir': str(out)}
    (out / 'summary.json').write_text(json.dumps(summary, indent=2))
    return summary


def _concat(caches: list[TrainingCache]) -> TrainingCache:
    """Merge caches of several dataset roots (scene and text indices are offset)."""
    base = caches[0]
    out = {k: [getattr(base, k)] for k in base.__dataclass_fields__}
    s_off, t_off = len(base.scene_ids), len(base.texts)
    for c in caches[1:]:
        for k in c.__dataclass_fields__:
            v = getattr(c, k)
            if k == 'expr_scene':
                v = v + s_off
            elif k == 'expr_text':
                v = v + t_off
            out[k].append(v)
        s_off += len(c.scene_ids)
        t_off += len(c.texts)
    merged = {}
    for k, parts in out.items():
        if isinstance(parts[0], list):
            merged[k] = [x for p in parts for x in p]
        elif k in ('text_features', 'text_mask'):
            width = max(p.shape[1] for p in parts)
            merged[k] = torch.cat([F.pad(p, (0, 0, 0, width - p.shape[1]) if p.dim() == 3
                                         else (0, width - p.shape[1])) for p in parts])
        else:
            merged[k] = torch.cat(parts)
    return TrainingCache(**merged)
