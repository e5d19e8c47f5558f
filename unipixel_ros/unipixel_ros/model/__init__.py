"""The referring-segmentation network in plain torch (``layers``, ``objects``, ``network``), the
text encoder, checkpoints, and the ONNX export; ``graph_io`` is the torch-free graph interface
that the exporter and every engine share. Never imports MuJoCo or rclpy."""
