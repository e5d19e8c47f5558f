"""TensorRT 10 engine: builds (and caches) serialised engines from the ONNX export; runs on CUDA.

``tensorrt`` is imported inside functions only, so CPU installs import this module fine; without it
every entry point raises ``EngineError('TensorRT is not installed: ...')``.

Build: ``trt.Builder`` -> network parsed by ``trt.OnnxParser`` -> ``BuilderConfig`` (FP16 flag for
the per-frame graphs; an optimisation profile min 1 / opt max / max ``max_text_tokens`` on the
text graph's token axis) -> ``build_serialized_network``. Engines are cached under
``<export dir>/tensorrt/`` (or ``cache_dir``), named by the graph and a key over the ONNX sha256,
the GPU name, the TensorRT version and the build settings, because a serialised engine is only
valid for the exact GPU and TensorRT version that built it.

Run: torch CUDA tensors as I/O buffers (torch is already a dependency, so no pycuda/cuda-python),
``context.set_input_shape`` / ``set_tensor_address`` / ``execute_async_v3`` on a torch stream.
"""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from unipixel_ros.model.graph_io import GRAPH_IO

from .base import Engine, EngineError
from .onnx_engine import load_manifest, resolve_model_dir

WORKSPACE_BYTES = 1 << 30


def import_tensorrt():
    """``tensorrt`` or EngineError('TensorRT is not installed: ...')."""
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise EngineError('TensorRT is not installed: `pip install tensorrt` (10.x) on a machine '
                          'with an NVIDIA GPU and driver; on CPU use the onnxruntime engine'
                          ) from exc
    if int(trt.__version__.split('.')[0]) < 10:
        raise EngineError(f'TensorRT {trt.__version__} found; this engine needs TensorRT >= 10')
    return trt


def _require_cuda():
    import torch
    if not torch.cuda.is_available():
        raise EngineError('the TensorRT engine needs a CUDA GPU, and torch sees none')
    return torch


def engine_cache_key(onnx_sha256: str, gpu_name: str, trt_version: str, fp16: bool,
                     profile: dict | None) -> str:
    """16 hex chars identifying one serialised engine build."""
    text = '|'.join([onnx_sha256, gpu_name, trt_version, f'fp16={fp16}', repr(sorted(
        (profile or {}).items()))])
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def build_engine(onnx_path: str | Path, engine_path: str | Path, fp16: bool = True,
                 profile: dict | None = None, workspace_bytes: int = WORKSPACE_BYTES) -> Path:
    """Parse ``onnx_path`` and write a serialised TensorRT engine to ``engine_path``.

    Args:
        fp16: allow FP16 kernels (BuilderFlag.FP16); I/O tensors stay as exported (fp32/int64).
        profile: {input name: (min shape, opt shape, max shape)} for inputs with dynamic axes.

    Raises:
        EngineError: TensorRT is missing, the parser rejects the graph (its errors are quoted),
            or the build fails.
    """
    trt = import_tensorrt()
    onnx_path, engine_path = Path(onnx_path), Path(engine_path)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10 networks are always explicit-batch
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = '; '.join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise EngineError(f'TensorRT cannot parse {onnx_path}: {errors}')
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace_bytes)
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    if profile:
        opt_profile = builder.create_optimization_profile()
        for name, (lo, opt, hi) in profile.items():
            opt_profile.set_shape(name, tuple(lo), tuple(opt), tuple(hi))
        config.add_optimization_profile(opt_profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise EngineError(f'TensorRT failed to build an engine from {onnx_path} (see its log)')
    engine_path.parent.mkdir(parents=True, exist_ok=True)
    tmp = engine_path.with_name(f'{engine_path.name}.{os.getpid()}.tmp')
    with open(tmp, 'wb') as f:
        f.write(memoryview(serialized))
    tmp.replace(engine_path)
    return engine_path


def graph_profiles(manifest: dict) -> dict:
    """Optimisation profiles per graph: the text graph's token axis, 1..max_text_tokens."""
    tokens = manifest.get('text_tokens') or {}
    hi = int(tokens.get('max', manifest['model_config'].get('max_text_tokens', 24)))
    lo, opt = int(tokens.get('min', 1)), int(tokens.get('opt', hi))
    shape = lambda n: (1, n)  # noqa: E731
    return {'text': {'input_ids': (shape(lo), shape(opt), shape(hi)),
                     'attention_mask': (shape(lo), shape(opt), shape(hi))},
            'point': None, 'image': None}


def build_engines(model_dir: str | Path, cache_dir: str | Path | None = None, fp16: bool = True,
                  text_fp16: bool = False, rebuild: bool = False) -> dict[str, Path]:
    """Build (or reuse cached) engines for the three graphs of an ONNX export -> {graph: path}.

    The text graph is built fp32 by default: it runs once per command, so FP16 buys nothing there
    and would only cost accuracy in the 6-layer encoder.
    """
    trt = import_tensorrt()
    torch = _require_cuda()
    model_dir = Path(model_dir)
    manifest = load_manifest(model_dir, verify=False)
    cache = Path(cache_dir) if cache_dir else model_dir / 'tensorrt'
    gpu = torch.cuda.get_device_name()
    paths = {}
    for graph, profile in graph_profiles(manifest).items():
        entry = manifest['graphs'][graph]
        half = fp16 and (graph != 'text' or text_fp16)
        key = engine_cache_key(entry['sha256'], gpu, trt.__version__, half, profile)
        path = cache / f'{graph}-{key}.engine'
        if rebuild or not path.is_file():
            build_engine(model_dir / entry['file'], path, fp16=half, profile=profile)
        paths[graph] = path
    return paths


class TensorRTEngine(Engine):
    """TensorRT back-end on one CUDA device.

    Args:
        model_dir_or_checkpoint: ONNX export directory or ``.safetensors`` checkpoint (exported to
            the ONNX cache first, see ``onnx_engine``).
        fp16: FP16 kernels for the point and image graphs.
        cache_dir: where serialised engines live (default ``<export dir>/tensorrt``).
        device: CUDA device index.
    """

    name = 'tensorrt'

    def __init__(self, model_dir_or_checkpoint: str | Path, fp16: bool = True,
                 cache_dir: str | Path | None = None, device: int = 0) -> None:
        trt = import_tensorrt()
        torch = _require_cuda()
        self.model_dir = resolve_model_dir(model_dir_or_checkpoint)
        manifest = load_manifest(self.model_dir)
        super().__init__(manifest)
        self._torch = torch
        self.device = torch.device('cuda', device)
        torch.cuda.set_device(self.device)
        self.engine_paths = build_engines(self.model_dir, cache_dir, fp16=fp16)
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self._stream = torch.cuda.Stream(self.device)
        self._engines, self._contexts, self._io = {}, {}, {}
        for graph, path in self.engine_paths.items():
            engine = self._runtime.deserialize_cuda_engine(path.read_bytes())
            if engine is None:
                raise EngineError(f'cannot deserialise TensorRT engine {path} (corrupt, or built '
                                  f'by another TensorRT version/GPU); delete it to rebuild')
            names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
            expected = GRAPH_IO[graph]['inputs'] + GRAPH_IO[graph]['outputs']
            if sorted(names) != sorted(expected):
                raise EngineError(f'TensorRT engine {path} has tensors {names}, '
                                  f'expected {expected}')
            self._engines[graph] = engine
            self._contexts[graph] = engine.create_execution_context()
            self._io[graph] = {n: _torch_dtype(torch, trt, engine.get_tensor_dtype(n))
                               for n in names}

    def _execute(self, graph: str, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
        torch = self._torch
        ctx, dtypes = self._contexts[graph], self._io[graph]
        keep = []  # device buffers must outlive the asynchronous launch
        with torch.cuda.stream(self._stream):
            for name in GRAPH_IO[graph]['inputs']:
                t = torch.from_numpy(np.ascontiguousarray(feeds[name])).to(
                    self.device, dtypes[name], non_blocking=True).contiguous()
                ctx.set_input_shape(name, tuple(t.shape))
                ctx.set_tensor_address(name, t.data_ptr())
                keep.append(t)
            outs = []
            for name in GRAPH_IO[graph]['outputs']:
                shape = tuple(ctx.get_tensor_shape(name))
                t = torch.empty(shape, dtype=dtypes[name], device=self.device)
                ctx.set_tensor_address(name, t.data_ptr())
                outs.append(t)
            if not ctx.execute_async_v3(self._stream.cuda_stream):
                raise EngineError(f'TensorRT execution of the {graph} graph failed')
        self._stream.synchronize()
        return [o.float().cpu().numpy() for o in outs]

    def _run_text(self, input_ids: np.ndarray, attention_mask: np.ndarray) -> np.ndarray:
        """(1, L) int64 ids and mask -> prompt (1, L, D) float32."""
        return self._execute('text', {'input_ids': input_ids, 'attention_mask': attention_mask})[0]

    def _run_point(self, uv: np.ndarray) -> np.ndarray:
        """(1, 2) normalised (u, v) -> prompt (1, 1, D)."""
        return self._execute('point', {'uv': uv})[0]

    def _run_image(self, image: np.ndarray, prompt: np.ndarray, prompt_mask: np.ndarray) -> dict:
        """(1, C, H_in, W_in), (1, L, D), (1, L) -> dict of the five image outputs."""
        outs = self._execute('image', {'image': image, 'prompt': prompt,
                                       'prompt_mask': prompt_mask})
        return dict(zip(GRAPH_IO['image']['outputs'], outs))

    def close(self) -> None:
        self._contexts.clear()
        self._engines.clear()
        self._torch.cuda.empty_cache()


def _torch_dtype(torch, trt, dtype):
    table = {trt.float32: torch.float32, trt.float16: torch.float16, trt.int32: torch.int32,
             trt.int64: torch.int64, trt.bool: torch.bool, trt.int8: torch.int8}
    if dtype not in table:
        raise EngineError(f'unsupported TensorRT I/O dtype {dtype}')
    return table[dtype]
