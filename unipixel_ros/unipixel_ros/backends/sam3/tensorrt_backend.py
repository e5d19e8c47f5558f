"""TensorRT 10 engines for the three SAM 3 graphs, and a predictor running them.

``tensorrt`` and the CUDA runtime bindings (``cuda-python``: ``cuda.bindings.runtime`` or the
older ``cuda.cudart``) are imported inside functions only, so importing this module costs
nothing on machines without them; calls raise :class:`Sam3TensorRTUnavailable` there.

Engines are built from an ONNX export directory (:func:`~.export.export_sam3_onnx`), one per
graph, and cached as ``<engine_dir>/<graph>-<key>.plan`` where ``key`` hashes the source model
sha256, the exporter version, the TensorRT version, the GPU (name + compute capability) and the
precision, so a plan is never loaded on a GPU or TensorRT version it was not built for.
Text embeddings are decoder inputs: a new phrase only runs the text engine, no rebuild.

Precision: ``fp16=True`` enables FP16 kernels but pins normalisation layers to FP32
(``OBEY_PRECISION_CONSTRAINTS``), as LayerNorm over 1024 channels overflows in FP16; graph
inputs and outputs stay FP32/INT64 as exported. These are TensorRT 10 "weakly typed" builder
flags (deprecated from 10.12, removed in 11): on TensorRT 11 only ``fp16=False`` builds.
"""
from __future__ import annotations

import hashlib
import json
import threading
import time
from pathlib import Path

import numpy as np

from .graph_io import GRAPH_FILES, GRAPH_IO, MANIFEST
from .predictor import Sam3Predictor, load_preprocess_and_tokenizer
from .types import DecoderOutput, Sam3Error, Sam3ModelError, Sam3TensorRTUnavailable

ENGINE_FORMAT_VERSION = 1


def _import_tensorrt():
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise Sam3TensorRTUnavailable(
            'TensorRT is not installed (pip install tensorrt, TensorRT >= 10, on a machine with '
            f'an NVIDIA GPU and driver): {exc}') from exc
    if int(trt.__version__.split('.')[0]) < 10:
        raise Sam3TensorRTUnavailable(f'TensorRT {trt.__version__} found; the SAM 3 backend '
                                      'uses the TensorRT 10 API')
    return trt


def _import_cudart():
    try:
        from cuda.bindings import runtime as cudart  # cuda-python >= 12.6
    except ImportError:
        try:
            from cuda import cudart  # older cuda-python
        except ImportError as exc:
            raise Sam3TensorRTUnavailable(
                f'the CUDA runtime bindings are not installed (pip install cuda-python): {exc}'
            ) from exc
    return cudart


def _cuda_call(cudart, result):
    """cuda-python returns ``(err, *values)``; raise on error, return the value(s)."""
    err, *values = result if isinstance(result, tuple) else (result,)
    if int(err) != int(cudart.cudaError_t.cudaSuccess):
        raise Sam3Error(f'CUDA error {err}')
    if not values:
        return None
    return values[0] if len(values) == 1 else values


def gpu_identity(device: int = 0) -> str:
    """``"<name> sm_<major><minor>"`` of a CUDA device (part of the engine cache key)."""
    cudart = _import_cudart()
    props = _cuda_call(cudart, cudart.cudaGetDeviceProperties(device))
    name = props.name.decode() if isinstance(props.name, bytes) else str(props.name)
    return f'{name.strip(chr(0)).strip()} sm_{props.major}{props.minor}'


def engine_cache_key(model_sha256: str, graph: str, trt_version: str, gpu: str,
                     fp16: bool) -> str:
    """16-hex-digit key of one engine: same inputs -> same plan file name."""
    blob = json.dumps([ENGINE_FORMAT_VERSION, model_sha256, graph, trt_version, gpu,
                       bool(fp16)]).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def _read_manifest(onnx_dir: Path) -> dict:
    try:
        return json.loads((onnx_dir / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise Sam3ModelError(f'{onnx_dir} is not a complete SAM 3 ONNX export ({MANIFEST}: '
                             f'{exc})') from exc


def _build_engine(trt, onnx_path: Path, fp16: bool, workspace_bytes: int,
                  shapes: dict[str, list[int]]) -> bytes:
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    # parse_from_file (not parse(bytes)) so weights stored as external data next to it load
    if not parser.parse_from_file(str(onnx_path)):
        errors = '; '.join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise Sam3Error(f'TensorRT could not parse {onnx_path}: {errors}')
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(workspace_bytes))
    if fp16:
        if not hasattr(trt.BuilderFlag, 'FP16'):
            # TensorRT 11 removed weakly typed precision flags; FP16 there needs an FP16 ONNX
            # (strong typing), which this exporter does not write.
            raise Sam3Error(f'TensorRT {trt.__version__} has no BuilderFlag.FP16; build with '
                            'fp16=False, or convert the ONNX to FP16 (ModelOpt AutoCast) first')
        config.set_flag(trt.BuilderFlag.FP16)
        config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
        for i in range(network.num_layers):
            layer = network.get_layer(i)
            if layer.type == trt.LayerType.NORMALIZATION:
                layer.precision = trt.float32
                for j in range(layer.num_outputs):
                    layer.set_output_type(j, trt.float32)
    # The export is static; a profile is only needed if an input still has a dynamic dim.
    dynamic = [network.get_input(i) for i in range(network.num_inputs)
               if any(d < 0 for d in network.get_input(i).shape)]
    if dynamic:
        profile = builder.create_optimization_profile()
        for tensor in dynamic:
            if tensor.name not in shapes:
                raise Sam3Error(f'{onnx_path}: input {tensor.name} has dynamic shape '
                                f'{tuple(tensor.shape)} and no shape in the manifest')
            s = tuple(shapes[tensor.name])
            profile.set_shape(tensor.name, s, s, s)  # min = opt = max: one frame, one phrase
        config.add_optimization_profile(profile)
    plan = builder.build_serialized_network(network, config)
    if plan is None:
        raise Sam3Error(f'TensorRT failed to build an engine from {onnx_path} (see the log above)')
    return bytes(plan)


def _io_shapes(manifest: dict) -> dict[str, list[int]]:
    shapes = dict(manifest.get('shapes', {}))
    if 'input_ids' in shapes:
        shapes.setdefault('attention_mask', shapes['input_ids'])
        shapes.setdefault('text_mask', shapes['input_ids'])
    return shapes


def build_sam3_tensorrt(onnx_dir: str | Path, engine_dir: str | Path | None = None,
                        fp16: bool = True, workspace_gib: float = 4.0, device: int = 0,
                        force: bool = False) -> dict:
    """Build (or find cached) TensorRT engines for ``vision``, ``text`` and ``decoder``.

    Args:
        onnx_dir: a SAM 3 ONNX export directory.
        engine_dir: where plans are cached (default ``<onnx_dir>/tensorrt``).
        fp16: FP16 kernels with FP32 normalisation layers; False builds pure FP32.
        workspace_gib: builder workspace memory pool limit, GiB.
        device: CUDA device index the engines are built for.
        force: rebuild even when a plan with the same key exists.

    Returns:
        dict: ``engines`` (graph -> plan path), ``built`` (graph -> build seconds, only for
        engines built by this call), ``cached`` (graphs reused), ``tensorrt``, ``gpu``, ``fp16``.

    Raises:
        Sam3TensorRTUnavailable: no tensorrt / cuda-python here.
        Sam3ModelError: incomplete export. Sam3Error: parse or build failure.
    """
    trt = _import_tensorrt()
    onnx_dir = Path(onnx_dir)
    manifest = _read_manifest(onnx_dir)
    engine_dir = Path(engine_dir) if engine_dir is not None else onnx_dir / 'tensorrt'
    engine_dir.mkdir(parents=True, exist_ok=True)
    cudart = _import_cudart()
    _cuda_call(cudart, cudart.cudaSetDevice(device))
    gpu = gpu_identity(device)
    result = {'engines': {}, 'built': {}, 'cached': [], 'tensorrt': trt.__version__, 'gpu': gpu,
              'fp16': bool(fp16)}
    for graph, fname in GRAPH_FILES.items():
        key = engine_cache_key(manifest['model_sha256'], graph, trt.__version__, gpu, fp16)
        plan_path = engine_dir / f'{graph}-{key}.plan'
        if plan_path.is_file() and not force:
            result['cached'].append(graph)
        else:
            t0 = time.perf_counter()
            plan = _build_engine(trt, onnx_dir / fname, fp16, int(workspace_gib * (1 << 30)),
                                 _io_shapes(manifest))
            tmp = plan_path.with_suffix('.plan.tmp')
            tmp.write_bytes(plan)
            tmp.replace(plan_path)  # atomic: a crashed build never leaves a half plan
            result['built'][graph] = round(time.perf_counter() - t0, 2)
        result['engines'][graph] = str(plan_path)
    return result


class _DeviceArray:
    """A CUDA allocation holding one tensor; freed when garbage-collected."""

    def __init__(self, cudart, shape, dtype):
        self._cudart = cudart
        self.shape = tuple(int(s) for s in shape)
        self.dtype = np.dtype(dtype)
        self.nbytes = int(np.prod(self.shape)) * self.dtype.itemsize
        self.ptr = _cuda_call(cudart, cudart.cudaMalloc(max(self.nbytes, 1)))

    @classmethod
    def from_host(cls, cudart, array: np.ndarray, stream) -> '_DeviceArray':
        a = np.ascontiguousarray(array)
        d = cls(cudart, a.shape, a.dtype)
        _cuda_call(cudart, cudart.cudaMemcpyAsync(
            d.ptr, a.ctypes.data, d.nbytes, cudart.cudaMemcpyKind.cudaMemcpyHostToDevice, stream))
        # the host array must outlive the async copy: synchronise before returning
        _cuda_call(cudart, cudart.cudaStreamSynchronize(stream))
        return d

    def to_host(self, stream) -> np.ndarray:
        out = np.empty(self.shape, self.dtype)
        _cuda_call(self._cudart, self._cudart.cudaMemcpyAsync(
            out.ctypes.data, self.ptr, self.nbytes,
            self._cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost, stream))
        _cuda_call(self._cudart, self._cudart.cudaStreamSynchronize(stream))
        return out

    def __del__(self):
        try:
            self._cudart.cudaFree(self.ptr)
        except Exception:  # interpreter shutdown
            pass


class _Engine:
    """One deserialised engine + execution context; runs with ``execute_async_v3``."""

    def __init__(self, trt, runtime, cudart, plan_path: Path):
        self.trt, self.cudart = trt, cudart
        self.engine = runtime.deserialize_cuda_engine(Path(plan_path).read_bytes())
        if self.engine is None:
            raise Sam3Error(f'TensorRT could not deserialise {plan_path} (built by another '
                            'TensorRT version or for another GPU? delete it to rebuild)')
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        mode = trt.TensorIOMode.INPUT
        self.inputs = [n for n in names if self.engine.get_tensor_mode(n) == mode]
        self.outputs = [n for n in names if self.engine.get_tensor_mode(n) != mode]
        self._lock = threading.Lock()  # one execution context: one run at a time

    def __call__(self, feeds: dict[str, _DeviceArray], stream) -> dict[str, _DeviceArray]:
        with self._lock:
            return self._run(feeds, stream)

    def _run(self, feeds: dict[str, _DeviceArray], stream) -> dict[str, _DeviceArray]:
        for name in self.inputs:
            arr = feeds[name]
            self.context.set_input_shape(name, arr.shape)
            self.context.set_tensor_address(name, int(arr.ptr))
        outs = {}
        for name in self.outputs:
            shape = tuple(self.context.get_tensor_shape(name))
            dtype = self.trt.nptype(self.engine.get_tensor_dtype(name))
            outs[name] = _DeviceArray(self.cudart, shape, dtype)
            self.context.set_tensor_address(name, int(outs[name].ptr))
        if not self.context.execute_async_v3(int(stream)):
            raise Sam3Error('TensorRT execute_async_v3 failed')
        _cuda_call(self.cudart, self.cudart.cudaStreamSynchronize(stream))
        return outs


class Sam3TensorRTPredictor(Sam3Predictor):
    """SAM 3 predictor on TensorRT engines (built on first use, then cached).

    Image and text encodings keep their tensors on the GPU (``_DeviceArray``), so vision
    features are computed once per frame and never leave the device; each ``decode`` copies only
    the decoder outputs back (``pred_masks`` is ``Q x 288 x 288`` float32, ~66 MB for
    ``facebook/sam3``).

    Args:
        onnx_dir: SAM 3 ONNX export directory.
        engine_dir, fp16, workspace_gib, device: see :func:`build_sam3_tensorrt`.
        **kwargs: :class:`Sam3Predictor` options.
    """

    backend = 'tensorrt'

    def __init__(self, onnx_dir: str | Path, engine_dir: str | Path | None = None,
                 fp16: bool = True, workspace_gib: float = 4.0, device: int = 0, **kwargs):
        trt = _import_tensorrt()
        cudart = _import_cudart()
        onnx_dir = Path(onnx_dir)
        super().__init__(*load_preprocess_and_tokenizer(onnx_dir), **kwargs)
        built = build_sam3_tensorrt(onnx_dir, engine_dir, fp16=fp16, workspace_gib=workspace_gib,
                                    device=device)
        self.build_info = built
        self._cudart = cudart
        self._stream = _cuda_call(cudart, cudart.cudaStreamCreate())
        self._runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        self.engines = {g: _Engine(trt, self._runtime, cudart, Path(p))
                        for g, p in built['engines'].items()}

    def _run_vision(self, pixel_values: np.ndarray):
        x = _DeviceArray.from_host(self._cudart, pixel_values, self._stream)
        outs = self.engines['vision']({'pixel_values': x}, self._stream)
        return tuple(outs[n] for n in GRAPH_IO['vision']['outputs'])

    def _run_text(self, input_ids: np.ndarray, attention_mask: np.ndarray):
        ids = _DeviceArray.from_host(self._cudart, input_ids, self._stream)
        mask = _DeviceArray.from_host(self._cudart, attention_mask, self._stream)
        outs = self.engines['text']({'input_ids': ids, 'attention_mask': mask}, self._stream)
        return outs['text_embeds'], mask

    def _run_decoder(self, features, embeddings, mask) -> DecoderOutput:
        feeds = dict(zip(GRAPH_IO['decoder']['inputs'], (*features, embeddings, mask)))
        outs = self.engines['decoder'](feeds, self._stream)
        host = {k: v.to_host(self._stream) for k, v in outs.items()}
        return DecoderOutput(mask_logits=host['pred_masks'][0].astype(np.float32, copy=False),
                             logits=host['pred_logits'][0].astype(np.float32, copy=False),
                             boxes=host['pred_boxes'][0].astype(np.float32, copy=False),
                             presence_logit=float(host['presence_logits'].reshape(-1)[0]))

    def __del__(self):
        stream = getattr(self, '_stream', None)
        if stream is not None:
            try:
                self._cudart.cudaStreamDestroy(stream)
            except Exception:
                pass
