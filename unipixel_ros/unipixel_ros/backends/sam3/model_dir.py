"""Find and validate a SAM 3 checkpoint: a Hugging Face id or a local directory in HF format.

A model directory holds ``config.json`` (``model_type`` ``sam3`` or ``sam3_video``),
``model.safetensors`` (or ``model.safetensors.index.json`` + shards), ``tokenizer.json``
(+ ``tokenizer_config.json``) and ``preprocessor_config.json``.
"""
from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

from .types import Sam3ModelError

#: Files fetched from the Hub for a Hugging Face id (everything the image detector needs).
HUB_PATTERNS = ['config.json', '*.safetensors', 'model.safetensors.index.json', 'tokenizer*',
                'vocab.json', 'merges.txt', 'special_tokens_map.json',
                'preprocessor_config.json', 'processor_config.json']

_MODEL_TYPES = ('sam3', 'sam3_video')
_LICENCE_HINT = (
    'facebook/sam3 is a gated repository: accept the SAM licence on '
    'https://huggingface.co/facebook/sam3 with your Hugging Face account, then log in on this '
    'machine (`hf auth login`, or set HF_TOKEN), or download the repository elsewhere and pass '
    'its local directory instead.')


def _looks_like_hub_id(s: str) -> bool:
    parts = s.split('/')
    return (len(parts) == 2 and all(parts) and not s.startswith(('.', '~'))
            and not os.path.isabs(s))


def _check_safetensors(path: Path) -> None:
    """Read the safetensors header (8-byte length + JSON) and check it against the file size."""
    try:
        size = path.stat().st_size
        with path.open('rb') as f:
            head = f.read(8)
            if len(head) != 8:
                raise ValueError('shorter than its 8-byte header length')
            (n,) = struct.unpack('<Q', head)
            if n <= 0 or 8 + n > size:
                raise ValueError(f'header length {n} does not fit in a {size}-byte file')
            header = json.loads(f.read(n))
        end = max((int(v['data_offsets'][1]) for k, v in header.items() if k != '__metadata__'),
                  default=0)
        if 8 + n + end > size:
            raise ValueError(f'tensors need {8 + n + end} bytes, the file has {size} '
                             '(truncated download?)')
    except (OSError, ValueError, KeyError, TypeError, IndexError) as exc:
        raise Sam3ModelError(f'{path} is not a valid safetensors file: {exc}') from exc


def weight_files(model_dir: Path) -> list[Path]:
    """The safetensors files of a model directory (one file, or the shards of an index)."""
    single = model_dir / 'model.safetensors'
    index = model_dir / 'model.safetensors.index.json'
    if single.is_file():
        return [single]
    if index.is_file():
        try:
            names = sorted(set(json.loads(index.read_text())['weight_map'].values()))
        except (ValueError, KeyError, TypeError) as exc:
            raise Sam3ModelError(f'{index} is not a valid safetensors index: {exc}') from exc
        missing = [n for n in names if not (model_dir / n).is_file()]
        if missing:
            raise Sam3ModelError(f'{model_dir} is missing weight shards {missing}')
        return [model_dir / n for n in names]
    raise Sam3ModelError(f'{model_dir} has no model.safetensors (nor a sharded index): not a '
                         'Hugging Face SAM 3 checkpoint, or an incomplete download')


def validate_model_dir(model_dir: str | Path) -> Path:
    """Check that ``model_dir`` is a complete SAM 3 checkpoint; return it as a ``Path``.

    Raises:
        Sam3ModelError: with the missing or corrupt file named.
    """
    d = Path(model_dir)
    if not d.is_dir():
        raise Sam3ModelError(f'{d} is not a directory')
    cfg = d / 'config.json'
    if not cfg.is_file():
        raise Sam3ModelError(f'{d} has no config.json: not a Hugging Face model directory')
    try:
        config = json.loads(cfg.read_text())
    except (OSError, ValueError) as exc:
        raise Sam3ModelError(f'{cfg} is not valid JSON: {exc}') from exc
    model_type = config.get('model_type') if isinstance(config, dict) else None
    if model_type not in _MODEL_TYPES:
        raise Sam3ModelError(f'{cfg} has model_type {model_type!r}; expected one of '
                             f'{_MODEL_TYPES} (a SAM 3 checkpoint)')
    for w in weight_files(d):
        _check_safetensors(w)
    if not (d / 'tokenizer.json').is_file():
        raise Sam3ModelError(f'{d} has no tokenizer.json (the CLIP tokenizer SAM 3 reads phrases '
                             'with)')
    if not (d / 'preprocessor_config.json').is_file():
        raise Sam3ModelError(f'{d} has no preprocessor_config.json (image size and '
                             'normalisation)')
    return d


def resolve_model_path(model_path: str | Path, revision: str | None = None) -> Path:
    """A local SAM 3 directory for ``model_path`` (local path, or Hub id downloaded once).

    Args:
        model_path: a local directory, or a Hugging Face id such as ``facebook/sam3`` (gated:
            see :data:`_LICENCE_HINT`); Hub downloads go to the usual Hugging Face cache.
        revision: Hub branch, tag or commit (ignored for local directories).

    Raises:
        Sam3ModelError: missing/corrupt directory, unknown id, or no access to a gated repo.
    """
    p = Path(os.path.expanduser(str(model_path)))
    if p.exists() or not _looks_like_hub_id(str(model_path)):
        if not p.exists():
            raise Sam3ModelError(f'model path {str(model_path)!r} does not exist (and is not a '
                                 'Hugging Face id of the form owner/name)')
        return validate_model_dir(p)
    try:
        from huggingface_hub import snapshot_download
        from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError
    except ImportError as exc:  # pragma: no cover - transformers depends on huggingface_hub
        raise Sam3ModelError(f'{model_path!r} is not a local directory and huggingface_hub is '
                             'not installed to download it') from exc
    try:
        local = snapshot_download(str(model_path), revision=revision,
                                  allow_patterns=HUB_PATTERNS)
    except GatedRepoError as exc:
        raise Sam3ModelError(f'no access to {model_path!r}. {_LICENCE_HINT}') from exc
    except RepositoryNotFoundError as exc:
        raise Sam3ModelError(f'{model_path!r}: no such Hugging Face repository, or it is '
                             f'private/gated and you are not logged in. {_LICENCE_HINT}') from exc
    except Exception as exc:  # network errors, disk full, ...
        raise Sam3ModelError(f'could not download {model_path!r}: {exc}') from exc
    return validate_model_dir(local)


def model_sha256(model_dir: str | Path, chunk: int = 1 << 22) -> str:
    """sha256 over ``config.json`` and the weight files, in that order (hex).

    Keys export and engine caches: a changed config or weights means a new export.
    """
    d = Path(model_dir)
    h = hashlib.sha256()
    for path in [d / 'config.json', *weight_files(d)]:
        h.update(path.name.encode() + b'\0')
        with path.open('rb') as f:
            while block := f.read(chunk):
                h.update(block)
    return h.hexdigest()
