"""unipixel_ros: language-conditioned referring segmentation and grasping for ROS 2.

Layers, from the bottom up (each imports only the ones below it; docs/ARCHITECTURE.md):
``perception`` (numpy/open3d geometry), ``dataset`` (the dataset format), ``language``
(commands, replies), ``model`` (the torch network, export, graph I/O), ``engines`` (torch, ONNX
Runtime, TensorRT), ``backends`` (SAM 3), ``inference`` (predictor, answer step, loading),
``training`` (trainers, dataset evaluation), ``ros`` (the only layer running rclpy nodes),
``benchmarks``, ``cli``.
"""

__version__ = '0.1.0'
