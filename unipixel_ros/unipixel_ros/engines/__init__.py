"""Inference engines behind one interface (torch | onnxruntime | tensorrt)."""
from unipixel_ros.model.graph_io import GRAPH_IO

from .base import Engine, EngineError


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
    raise EngineError(f'unknown engine {kind!r}: choose torch, onnxruntime or tensorrt')


__all__ = ['GRAPH_IO', 'Engine', 'EngineError', 'create_engine']
