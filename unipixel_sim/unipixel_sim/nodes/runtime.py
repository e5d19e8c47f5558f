"""The sim nodes use unipixel_ros's process entry point (init, spin, clean shutdown)."""
from unipixel_ros.ros.runtime import run_node

__all__ = ['run_node']
