"""Shared fixtures: one 50-scene dataset generated per test session; ROS 2 traffic of the node
tests isolated on loopback and on a domain of its own per run."""
import os
import random
import tempfile
import time
from pathlib import Path

import pytest

os.environ.setdefault('MUJOCO_GL', 'egl')

# Set before any rclpy.init (here or in a child process, which inherits os.environ).
os.environ.setdefault('HOME', tempfile.gettempdir())
os.environ['ROS_AUTOMATIC_DISCOVERY_RANGE'] = 'LOCALHOST'
os.environ.setdefault('RMW_IMPLEMENTATION', 'rmw_fastrtps_cpp')
os.environ.setdefault('ROS_DOMAIN_ID', str(random.Random(os.getpid()).randint(1, 100)))
_PROFILE = str(Path(__file__).resolve().parents[2] / 'unipixel_ros' / 'config'
               / 'fastdds_large_messages.xml')
os.environ.setdefault('FASTRTPS_DEFAULT_PROFILES_FILE', _PROFILE)
os.environ.setdefault('FASTDDS_DEFAULT_PROFILES_FILE', _PROFILE)

from unipixel_sim.model_guard import FIXTURES, generate_fixture  # noqa: E402

# the shared dataset is also the default fixture of the shipped model's guard
DATASET_SCENES = FIXTURES['default']['scenes']
DATASET_SEED = FIXTURES['default']['seed']


@pytest.fixture(scope='session')
def generated_dataset(tmp_path_factory):
    """(root, summary) of a 50-scene, 640x480, 4-expression dataset made with 2 workers."""
    from unipixel_sim.generate import generate_dataset
    root = tmp_path_factory.mktemp('dataset')
    start = time.perf_counter()
    summary = generate_dataset(root, DATASET_SCENES, seed=DATASET_SEED, workers=2,
                               n_expressions=FIXTURES['default']['expressions'], progress=False)
    summary['wall_s'] = time.perf_counter() - start
    print(f"\ngenerated {DATASET_SCENES} scenes in {summary['wall_s']:.1f} s "
          f"({summary['scenes_per_s']:.2f} scenes/s)")
    return root, summary


@pytest.fixture(scope='session')
def randomized_guard_dataset(tmp_path_factory):
    """The randomized fixture of the shipped model's guard (``model_guard.FIXTURES``)."""
    return generate_fixture('randomized', tmp_path_factory.mktemp('guard_randomized'))
