"""Serving the model to a fleet: a Triton Inference Server (``triton_server``, run in its own
environment with PyTriton), the launcher behind ``unipixel-ros serve`` (``launch``) and the model
repository for the official Triton container (``model_repository``). The robot side is the
``triton`` engine (``engines/triton_engine.py``)."""
