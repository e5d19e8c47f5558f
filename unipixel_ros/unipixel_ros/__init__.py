"""unipixel_ros: language-conditioned referring segmentation and grasping for ROS 2.

Subpackages (dependencies point one way, and only ``ros`` imports rclpy):

- ``perception``: numpy/open3d geometry, depth -> object cloud -> oriented box -> grasp pose.
- ``model``: the torch referring-segmentation network, losses, metrics, training, export.
- ``engines``: one inference interface over torch, ONNX Runtime and TensorRT.
- ``language``: command parsing ("pick up the red cup" -> action + referring expression).
- ``ros``: nodes, message conversion, synchronisation, QoS.
"""

__version__ = '0.1.0'
