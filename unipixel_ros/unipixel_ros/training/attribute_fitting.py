"""Fitting the metric attribute head (``unipixel-ros fit-attributes``).

The head itself, its file format and its use at run time are in
:mod:`unipixel_ros.inference.metric_attributes`; this module collects the network's answers on
held-out scenes (through the same answer step the node runs) and fits the MLP with torch.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from unipixel_ros.inference.answer import answer_frame
from unipixel_ros.inference.metric_attributes import MetricAttributeModel, feature_vector


def fit_metric_attributes(features: np.ndarray, category: np.ndarray, size: np.ndarray,
                          categories: list, sizes: list, hidden: int = 64, epochs: int = 400,
                          lr: float = 3e-3, weight_decay: float = 1e-4, seed: int = 0,
                          info: dict | None = None) -> MetricAttributeModel:
    """Fit the MLP (two hidden ReLU layers) by full-batch Adam on cross-entropy of both outputs.

    Args:
        features: (N, F) from :func:`feature_vector`.
        category, size: (N,) int labels (indices into ``categories`` / ``sizes``).
    """
    import torch
    from torch import nn

    torch.manual_seed(seed)
    x = np.asarray(features, np.float32)
    mean = x.mean(0)
    std = x.std(0) + 1e-6
    xt = torch.from_numpy((x - mean) / std)
    ct, st = torch.as_tensor(category, dtype=torch.long), torch.as_tensor(size, dtype=torch.long)
    n_cat = len(categories)
    net = nn.Sequential(nn.Linear(x.shape[1], hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                        nn.ReLU(), nn.Linear(hidden, n_cat + len(sizes)))
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    loss_fn = nn.CrossEntropyLoss()
    for _ in range(epochs):
        opt.zero_grad()
        out = net(xt)
        loss = loss_fn(out[:, :n_cat], ct) + loss_fn(out[:, n_cat:], st)
        loss.backward()
        opt.step()
    layers = [(m.weight.detach().numpy().T.copy(), m.bias.detach().numpy().copy())
              for m in net if isinstance(m, nn.Linear)]
    return MetricAttributeModel(mean, std, layers, list(categories), list(sizes),
                                dict(info or {}, final_loss=round(float(loss.detach()), 4)))


def collect_samples(predictor, scene_dirs: list, progress: bool = True) -> dict:
    """Run ``predictor`` on every referring expression with a target in ``scene_dirs`` and keep,
    for each found and measurable object, its feature vector and the true category and size of
    the object the mask actually covers (the instance it overlaps most).

    Returns:
        {'features': (N, F) float32, 'category': (N,) int64, 'size': (N,) int64,
         'net_category': (N,), 'net_size': (N,) the heads' own answers, 'queries': int,
         'found': int}.
    """
    from tqdm import tqdm

    from unipixel_ros.dataset.reader import load_scene

    cats, sizes = predictor.vocab['categories'], predictor.vocab['sizes']
    rows: dict = {k: [] for k in ('features', 'category', 'size', 'net_category', 'net_size')}
    queries = found = 0
    for d in tqdm(scene_dirs, desc='collect', disable=not progress):
        rec = load_scene(d)
        for expr in rec.expressions:
            if expr.get('target') is None:
                continue
            queries += 1
            answer = answer_frame(predictor, predictor.encode_text(expr['text']), rec.rgb,
                                  rec.depth_m, rec.intrinsics, refine=False)
            pred, geometry = answer.prediction, answer.geometry
            if geometry is None:
                continue
            found += 1
            ids, counts = np.unique(rec.instances[pred.mask], return_counts=True)
            counts[ids == 0] = 0
            if counts.max() == 0:
                continue
            obj = rec.objects[int(ids[counts.argmax()]) - 1]
            if obj.get('category') not in cats or obj.get('size') not in sizes:
                continue    # a name outside the model's vocabulary (e.g. 'object'): no label
            probs = pred.attribute_probs
            rows['features'].append(feature_vector(geometry, probs['category'], probs['size']))
            rows['category'].append(cats.index(obj['category']))
            rows['size'].append(sizes.index(obj['size']))
            rows['net_category'].append(int(np.argmax(probs['category'])))
            rows['net_size'].append(int(np.argmax(probs['size'])))
    out = {k: np.asarray(v) for k, v in rows.items()}
    out.update(queries=queries, found=found)
    return out


def fit_from_datasets(predictor, checkpoint: Path, data: list, split: str, eval_data: list,
                      eval_split: str, seed: int = 0, progress: bool = True):
    """Fit the metric attribute head of ``predictor``'s model on ``data`` (splits
    ``split``, comma-separated: scenes the network never trained on) and score the heads alone
    and the heads + geometry on ``eval_data`` / ``eval_split``.

    Returns:
        (head, summary dict, held-out samples, fused category (N,), fused size (N,)).
    Raises:
        FileNotFoundError: no scenes in a dataset / split.
    """
    from unipixel_ros.dataset.reader import scene_dirs

    def dirs(data: list, splits: str) -> list:
        out = []
        for d in data:
            for split in splits.split(','):
                out += scene_dirs(d, split.strip() or None)
        if not out:
            raise FileNotFoundError(f'no scenes in {data} (splits {splits})')
        return out

    fit_dirs, eval_dirs = dirs(data, split), dirs(eval_data, eval_split)
    fit = collect_samples(predictor, fit_dirs, progress=progress)
    held = collect_samples(predictor, eval_dirs, progress=progress)
    vocab = predictor.vocab
    head = fit_metric_attributes(
        fit['features'], fit['category'], fit['size'], vocab['categories'], vocab['sizes'],
        seed=seed, info={'checkpoint': checkpoint.name, 'data': data, 'split': split,
                         'samples': int(len(fit['category']))})
    cat_logits, size_logits = head.logits(held['features'])
    fused_cat, fused_size = cat_logits.argmax(1), size_logits.argmax(1)

    def accuracy(category: np.ndarray, size: np.ndarray) -> dict:
        """Percent right on the held-out objects: category, size, and both."""
        cat_ok, size_ok = category == held['category'], size == held['size']
        return {name: round(100.0 * float(np.mean(ok)), 2)
                for name, ok in (('category', cat_ok), ('size', size_ok),
                                 ('both', cat_ok & size_ok))}

    summary = {
        'checkpoint': str(checkpoint), 'fit_scenes': len(fit_dirs),
        'fit_samples': int(len(fit['category'])),
        'eval_data': eval_data, 'eval_split': eval_split, 'eval_scenes': len(eval_dirs),
        'eval_samples': int(len(held['category'])),
        'network': accuracy(held['net_category'], held['net_size']),
        'network_geometry': accuracy(fused_cat, fused_size),
        'fit_loss': head.info['final_loss'],
    }
    head.info.update(eval=summary['network_geometry'], eval_network=summary['network'],
                     eval_data=eval_data, eval_split=eval_split)
    return head, summary, held, fused_cat, fused_size


def plot_confusions(held: dict, fused_category: np.ndarray, fused_size: np.ndarray, vocab: dict,
                    png: str | Path) -> None:
    """Category and size confusion matrices (rows = truth), heads alone vs heads + geometry."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt

    panels = [('category, heads', held['net_category'], held['category'], vocab['categories']),
              ('category, heads + geometry', fused_category, held['category'], vocab['categories']),
              ('size, heads', held['net_size'], held['size'], vocab['sizes']),
              ('size, heads + geometry', fused_size, held['size'], vocab['sizes'])]
    fig, axes = plt.subplots(1, 4, figsize=(18, 4.6))
    for ax, (title, pred, true, names) in zip(axes, panels):
        m = np.zeros((len(names), len(names)), int)
        np.add.at(m, (np.asarray(true, int), np.asarray(pred, int)), 1)
        ax.imshow(m, cmap='Blues')
        for (r, c), v in np.ndenumerate(m):
            if v:
                ax.text(c, r, str(v), ha='center', va='center', fontsize=7)
        ax.set_xticks(range(len(names)), names, rotation=45, fontsize=8)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.set_title(f'{title}: {100.0 * np.trace(m) / max(m.sum(), 1):.1f}%', fontsize=10)
        ax.set_xlabel('predicted')
    axes[0].set_ylabel('true')
    fig.tight_layout()
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png, dpi=100)
    plt.close(fig)
