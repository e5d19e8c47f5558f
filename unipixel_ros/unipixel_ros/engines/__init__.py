"""Inference engines behind one interface (torch | onnxruntime | tensorrt | triton)."""
from unipixel_ros.model.graph_io import GRAPH_IO

from .base import Engine, EngineError, EngineUnavailable


def create_engine(kind: str, model_path: str, device: str = 'cpu', **kwargs) -> Engine:
    """Build an engine by name; back-end libraries are imported only when chosen."""
    if kind == 'torch':
        from .torch_engine import TorchEngine
        return TorchEngine(model_path, device=device, **kwargs)
    if kind == 'onnxruntime':
        from .onnx_engine import OnnxRuntimeEngine
        return OnnxRuntimeEngine(model_path, **kwargs)
    if kind == 'tensorrt':
        from .tensorrt_engine import TensorRTEngine
        return TensorRTEngine(model_path, **kwargs)
    if kind == 'triton':
        from .triton_engine import TritonEngine
        return TritonEngine(model_path, device=device, **kwargs)
    raise EngineError(f'unknown engine {kind!r}: choose torch, onnxruntime, tensorrt or triton')


__all__ = ['GRAPH_IO', 'Engine', 'EngineError', 'EngineUnavailable', 'create_engine']
