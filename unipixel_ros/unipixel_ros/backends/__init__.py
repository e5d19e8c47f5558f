"""Optional third-party model backends.

Each backend is a self-contained subpackage that turns an RGB frame plus noun phrases into
candidate masks; it depends only on :mod:`unipixel_ros.perception` inside this project, so the
inference layer above can pick a backend without the backend knowing about nodes or engines.

- ``sam3``: SAM 3 open-vocabulary segmentation (Hugging Face ``transformers`` checkpoint), with
  ONNX Runtime and TensorRT deployment.
"""
