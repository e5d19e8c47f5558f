"""Optional third-party model backends.

Each backend is a self-contained subpackage that turns an RGB frame plus noun phrases into
candidate masks; inside this project it depends only on :mod:`unipixel_ros.perception` and, for
its Triton client, on :mod:`unipixel_ros.engines.triton_connection` (one gRPC fault policy for
every remote model), so the inference layer above can pick a backend without the backend
knowing about nodes.

- ``sam3``: SAM 3 open-vocabulary segmentation (Hugging Face ``transformers`` checkpoint), with
  ONNX Runtime and TensorRT deployment.
"""
