"""Loading: checkpoint -> engine -> predictor, one path for the CLI and the node.

    predictor = load_predictor('onnxruntime', model_path=None, settings=DecisionSettings())
"""
from __future__ import annotations

from pathlib import Path

from unipixel_ros.model.errors import CheckpointError

from .metric_attributes import resolve_metric_attributes
from .predictor import ReferringPredictor
from .settings import DEFAULT_SETTINGS, DecisionSettings

#: The shipped model, installed with the package.
DEFAULT_CHECKPOINT = (Path(__file__).resolve().parent.parent / 'weights'
                      / 'unipixel_sim_v5.safetensors')
ENGINES = ('torch', 'onnxruntime', 'tensorrt', 'triton')


class LoadError(RuntimeError):
    """A model cannot be loaded: missing or corrupt checkpoint, engine unavailable, bad metric
    attribute head. The message says which and why."""


def resolve_checkpoint(path: str | Path | None) -> Path:
    """``path``, or the shipped checkpoint when None / ''; CheckpointError naming a missing file."""
    ckpt = Path(path) if path else DEFAULT_CHECKPOINT
    if not ckpt.exists():
        hint = (' (the shipped model is not there: train one or pass --checkpoint FILE)'
                if not path else '')
        raise CheckpointError(f'checkpoint not found: {ckpt}{hint}')
    return ckpt


def open_engine(kind: str, model_path: str | Path | None = None, device: str = 'cpu',
                threads: int = 0, **kwargs):
    """(resolved model path, Engine) for a checkpoint or an export directory.

    Args:
        kind: 'torch', 'onnxruntime', 'tensorrt' or 'triton' (a Triton server runs the graphs;
            ``url`` and ``timeout_s`` in ``kwargs``, see ``engines.triton_engine``).
        model_path: .safetensors checkpoint or ONNX export directory (None: the shipped model);
            for 'triton', what the server hosts (only its manifest and tokenizer are read).
        device: 'cpu' or 'cuda' (torch, onnxruntime).
        threads: CPU threads of the engine (0 = the library default).
        kwargs: passed to the engine (e.g. ``spin`` for ONNX Runtime).
    Raises:
        LoadError: naming the file and the reason.
    """
    from unipixel_ros.engines import create_engine
    if kind not in ENGINES:
        raise LoadError(f'unknown engine {kind!r}: choose {", ".join(ENGINES)}')
    try:
        path = resolve_checkpoint(model_path)
        if kind != 'tensorrt':
            kwargs['device'] = device
        if threads and kind == 'onnxruntime':
            kwargs['threads'] = threads
        if threads and kind == 'torch':
            import torch
            torch.set_num_threads(threads)
        return path, create_engine(kind, str(path), **kwargs)
    except (CheckpointError, RuntimeError, OSError, ValueError) as exc:
        raise LoadError(f'cannot load the {kind} engine from '
                        f'{model_path or "the shipped model"}: {exc}') from exc


def make_predictor(engine, checkpoint: str | Path | None,
                   settings: DecisionSettings = DEFAULT_SETTINGS) -> ReferringPredictor:
    """A predictor on ``engine`` with ``settings``; ``settings.metric_attributes`` is resolved
    against ``checkpoint`` ('auto' = the head fitted for it, if present).

    Raises:
        LoadError: a missing or corrupt head, or one fitted for another vocabulary.
    """
    try:
        head = resolve_metric_attributes(settings.metric_attributes, checkpoint)
        return ReferringPredictor(engine, settings, head)
    except (FileNotFoundError, ValueError) as exc:
        raise LoadError(f'cannot use the metric attribute head: {exc}') from exc


def load_predictor(kind: str, model_path: str | Path | None = None,
                   settings: DecisionSettings = DEFAULT_SETTINGS, **engine_kwargs):
    """(resolved model path, predictor): :func:`open_engine` then :func:`make_predictor`.

    Raises:
        LoadError: see both.
    """
    path, engine = open_engine(kind, model_path, **engine_kwargs)
    try:
        return path, make_predictor(engine, path, settings)
    except LoadError:
        engine.close()
        raise


BACKENDS = ('unipixel', 'sam3')


def load_sam3_referring(model_path: str | Path, engine: str = 'onnxruntime',
                        settings: DecisionSettings = DEFAULT_SETTINGS, threads: int = 0,
                        device: str = 'cpu', url: str = '127.0.0.1:8001',
                        timeout_s: float = 2.0, **_unused):
    """(model path, :class:`~.sam3_referring.Sam3ReferringPredictor`) for ``backend: sam3``.

    Args:
        model_path: Hugging Face id ('facebook/sam3', gated) or a local Hugging Face directory;
            for 'triton', a local directory with the model's tokenizer and preprocessor files
            (the Hugging Face directory or the export the server was started on).
        engine: 'torch', 'onnxruntime' (exported once per model, cached), 'tensorrt' or
            'triton' (``unipixel-ros serve --backend sam3`` at ``url``; ``timeout_s`` per
            request).
        _unused: engine options of the unipixel backend (e.g. ``spin``), ignored here.
    Raises:
        LoadError: no model path, or the model cannot be loaded (the message says why).
    """
    from unipixel_ros.backends.sam3 import create_sam3_predictor

    from .sam3_referring import Sam3ReferringPredictor
    if not model_path:
        raise LoadError('backend sam3 needs model_path: a Hugging Face id (facebook/sam3, '
                        'gated: accept the licence on its model page, then log in) or a local '
                        'directory in Hugging Face format')
    kwargs = {'device': device} if engine == 'torch' else {}
    try:
        if engine == 'triton':
            from unipixel_ros.backends.sam3.triton_client import Sam3TritonPredictor
            sam3 = Sam3TritonPredictor(model_path, url=url, timeout_s=timeout_s,
                                       max_candidates=20)
        else:
            sam3 = create_sam3_predictor(str(model_path), backend=engine,
                                         threads=threads or None, max_candidates=20, **kwargs)
    except Exception as exc:   # Sam3ModelError, missing runtime, bad directory: say which
        raise LoadError(f'cannot load SAM 3 ({engine}) from {model_path}: {exc}') from exc
    return model_path, Sam3ReferringPredictor(sam3, settings)
