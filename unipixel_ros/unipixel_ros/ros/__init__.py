"""The only subpackage that imports rclpy: nodes, message conversion, synchronisation, QoS."""
