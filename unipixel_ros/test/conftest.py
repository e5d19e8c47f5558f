"""Test environment: ROS 2 traffic isolated on loopback and on a domain of its own per run."""
import os
import random
import tempfile
from pathlib import Path

_PKG = Path(__file__).resolve().parents[1]

# Set before any rclpy.init (here or in a child process, which inherits os.environ).
os.environ.setdefault('HOME', tempfile.gettempdir())
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
os.environ.setdefault('ROS_DOMAIN_ID', str(random.Random(os.getpid()).randint(1, 100)))
_PROFILE = str(_PKG / 'config' / 'fastdds_large_messages.xml')
os.environ.setdefault('FASTRTPS_DEFAULT_PROFILES_FILE', _PROFILE)
os.environ.setdefault('FASTDDS_DEFAULT_PROFILES_FILE', _PROFILE)
