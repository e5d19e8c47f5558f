"""sim.launch.py compiles everywhere and builds its description where launch_ros exists."""
import importlib.util
import py_compile
from pathlib import Path

import pytest

LAUNCH_FILE = Path(__file__).resolve().parents[1] / 'launch' / 'sim.launch.py'


def test_launch_file_compiles(tmp_path):
    py_compile.compile(str(LAUNCH_FILE), cfile=str(tmp_path / 'sim.launch.pyc'), doraise=True)


def test_generate_launch_description():
    for module in ('launch', 'launch_ros'):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f'{module} is not installed (not on PyPI; needs a ROS 2 install)')
    from launch import LaunchDescription
    spec = importlib.util.spec_from_file_location('sim_launch', LAUNCH_FILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    description = module.generate_launch_description()
    assert isinstance(description, LaunchDescription)
    names = {a.name for a in description.get_launch_arguments()}
    assert {'seed', 'rate_hz', 'depth_encoding', 'use_rviz'} <= names
