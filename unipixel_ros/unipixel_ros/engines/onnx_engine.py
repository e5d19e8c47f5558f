"""ONNX Runtime engine: CPU by default, CUDA when asked for and available.

Accepts an export directory (``model.json`` + the three graphs written by
``unipixel_ros.model.export``) or a ``.safetensors`` checkpoint, which is exported once into the
cache (``$UNIPIXEL_ROS_CACHE`` or ``~/.cache/unipixel_ros``, under
``onnx/<checkpoint sha256[:16]>/``) and reused while the checkpoint is unchanged: not next to the
checkpoint, because the shipped one lives in the (often read-only) installed package. Running needs
only onnxruntime, numpy, Pillow and a tokenizer; exporting from a checkpoint needs torch.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from unipixel_ros.model.graph_io import GRAPH_IO

from .base import Engine, EngineError

_PROVIDER_ALIASES = {'cpu': 'CPUExecutionProvider', 'cuda': 'CUDAExecutionProvider',
                     'tensorrt': 'TensorrtExecutionProvider'}


def resolve_model_dir(model_path: str | Path) -> Path:
    """Export directory for ``model_path``: itself if it holds ``model.json``, the cached export
    of a ``.safetensors`` checkpoint (exported on first use) otherwise.

    Raises:
        EngineError: the path does not exist or is neither kind.
        CheckpointError: the checkpoint is corrupt.
    """
    path = Path(model_path)
    if path.is_dir():
        if not (path / 'model.json').is_file():
            raise EngineError(f'ONNX export manifest not found: {path / "model.json"} '
                              f'(export with `unipixel-ros export --format onnx`)')
        return path
    if path.name == 'model.json' and path.is_file():
        return path.parent
    if path.suffix == '.safetensors' or path.is_file():
        from unipixel_ros.model.export import ensure_onnx_export
        return ensure_onnx_export(path)
    raise EngineError(f'model not found: {path} (expected an ONNX export directory or a '
                      f'.safetensors checkpoint)')


def load_manifest(model_dir: Path, verify: bool = True) -> dict:
    """``model.json`` of an export; every graph file is checked to exist (and match its sha256)."""
    manifest_path = model_dir / 'model.json'
    try:
        manifest = json.loads(manifest_path.read_text())
        graphs = manifest['graphs']
        manifest['model_config']
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise EngineError(f'ONNX export manifest {manifest_path} is corrupt: {exc!r}') from exc
    for name in GRAPH_IO:
        entry = graphs.get(name)
        if not entry:
            raise EngineError(f'ONNX export manifest {manifest_path} lists no {name!r} graph')
        file = model_dir / entry['file']
        if not file.is_file():
            raise EngineError(f'ONNX graph not found: {file}')
        if entry.get('inputs') != GRAPH_IO[name]['inputs'] or \
                entry.get('outputs') != GRAPH_IO[name]['outputs']:
            raise EngineError(f'ONNX graph {file} has io names {entry.get("inputs")} -> '
                              f'{entry.get("outputs")}, this version expects {GRAPH_IO[name]}; '
                              f're-export it')
        if verify and entry.get('sha256'):
            from unipixel_ros.model.graph_io import file_sha256
            if file_sha256(file) != entry['sha256']:
                raise EngineError(f'ONNX graph {file} is corrupt: its sha256 does not match '
                                  f'{manifest_path}; re-export it')
    return manifest


class OnnxRuntimeEngine(Engine):
    """ONNX Runtime back-end.

    Args:
        model_dir_or_checkpoint: export directory, its ``model.json``, or a ``.safetensors`` file.
        threads: intra-op threads (0 = ONNX Runtime's default, one per physical core).
        providers: execution providers in priority order, ONNX Runtime names or the aliases
            'cpu' / 'cuda'; default CPU only. A requested provider that this onnxruntime build
            lacks is an EngineError (no silent CPU fallback).
        verify: check the graphs' sha256 against the manifest (about 0.2 s for the text graph).
        spin: idle intra-op threads busy-wait for the next operator (ONNX Runtime's default,
            the lowest latency on an otherwise idle machine). Turn it off where the model
            shares a small CPU with other threads: in unipixel_node on 2 cores the spinning
            threads starved the ROS executor (p95 latency 413 ms, 93 of 300 frames lost at
            15 Hz) and without it p95 was 42 ms with none lost.
    """

    name = 'onnxruntime'

    def __init__(self, model_dir_or_checkpoint: str | Path, threads: int = 0,
                 providers: list[str] | str | None = None, verify: bool = True,
                 spin: bool = True) -> None:
        import onnxruntime as ort

        self.model_dir = resolve_model_dir(model_dir_or_checkpoint)
        manifest = load_manifest(self.model_dir, verify=verify)
        super().__init__(manifest)
        if isinstance(providers, str):
            providers = [providers]
        providers = [_PROVIDER_ALIASES.get(p, p) for p in (providers or ['cpu'])]
        available = ort.get_available_providers()
        missing = [p for p in providers if p not in available]
        if missing:
            raise EngineError(f'ONNX Runtime providers {missing} are not available in this '
                              f'onnxruntime build (available: {available}); for CUDA install '
                              f'onnxruntime-gpu')
        if 'CPUExecutionProvider' not in providers:
            providers.append('CPUExecutionProvider')  # ops a GPU provider lacks fall back to CPU
        self.providers = providers
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads)
        opts.log_severity_level = 3
        if not spin:
            opts.add_session_config_entry('session.intra_op.allow_spinning', '0')
        self.sessions = {}
        for graph, entry in manifest['graphs'].items():
            if graph not in GRAPH_IO:
                continue
            file = self.model_dir / entry['file']
            try:
                self.sessions[graph] = ort.InferenceSession(str(file), opts, providers=providers)
            except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf types
                raise EngineError(f'ONNX Runtime cannot load {file}: {exc}') from exc
        tok = manifest.get('tokenizer')
        self._tokenizer_dir = self.model_dir / tok if tok else None

    def tokenize(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        # Prefer the tokenizer saved with the export: no text-encoder package or download needed,
        # and no torch (see Engine.tokenize_with_export).
        return self.tokenize_with_export(text, self._tokenizer_dir)

    def _run(self, graph: str, feeds: dict) -> list[np.ndarray]:
        return self.sessions[graph].run(GRAPH_IO[graph]['outputs'], feeds)

    def _run_text(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """(1, L) int64 ids and mask -> prompt (1, L, D) float32."""
        feeds = {'input_ids': np.ascontiguousarray(input_ids, np.int64),
                 'attention_mask': np.ascontiguousarray(attention_mask, np.int64)}
        return self._run('text', feeds)[0]

    def _run_point(self, uv: np.ndarray) -> np.ndarray:
        """(1, 2) normalised (u, v) -> prompt (1, 1, D)."""
        return self._run('point', {'uv': np.ascontiguousarray(uv, np.float32)})[0]

    def _run_image(self, image: np.ndarray, prompt: np.ndarray, prompt_mask: np.ndarray) -> dict:
        """(1, C, H_in, W_in), (1, L, D), (1, L) -> dict of the five image outputs."""
        outs = self._run('image', {'image': np.ascontiguousarray(image, np.float32),
                                   'prompt': np.ascontiguousarray(prompt, np.float32),
                                   'prompt_mask': np.ascontiguousarray(prompt_mask, np.float32)})
        return dict(zip(GRAPH_IO['image']['outputs'], outs))

    def close(self) -> None:
        self.sessions.clear()
