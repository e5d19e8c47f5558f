"""Benchmarks that print and write JSON (+ a PNG): geometry, model (per engine), node (a real
``unipixel_node`` process under a camera stream; ``node.py`` is a ROS client), and the suite
behind ``make bench``."""
