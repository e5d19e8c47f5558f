"""Optional packages (rviz2, realsense2_camera): found through the ament index, or a clear stop.

The checks themselves need only ament_index_python; the launch files are run for real where
launch and launch_ros are importable (a ROS 2 install; they are not on PyPI) and skipped otherwise.
"""
import importlib.util
import os
from pathlib import Path

import pytest

pytest.importorskip('ament_index_python')
from unipixel_ros.ros.launch_checks import (MissingPackageError, find_package_share,  # noqa: E402
                                            is_true, missing_package_message, require_package)

REPO = Path(__file__).resolve().parents[2]
LAUNCH_FILES = {
    'unipixel': REPO / 'unipixel_ros' / 'launch' / 'unipixel.launch.py',
    'realsense': REPO / 'unipixel_ros' / 'launch' / 'realsense.launch.py',
    'sim': REPO / 'unipixel_sim' / 'launch' / 'sim.launch.py',
}


def make_prefix(root: Path, *packages: str) -> Path:
    """An ament prefix whose index lists ``packages`` (markers and empty share dirs)."""
    index = root / 'share' / 'ament_index' / 'resource_index' / 'packages'
    index.mkdir(parents=True)
    for package in packages:
        (index / package).write_text('')
        (root / 'share' / package).mkdir()
    return root


def test_present_package_gives_its_share_directory(tmp_path, monkeypatch):
    prefix = make_prefix(tmp_path, 'rviz2')
    monkeypatch.setenv('AMENT_PREFIX_PATH', str(prefix))
    assert find_package_share('rviz2') == str(prefix / 'share' / 'rviz2')
    assert require_package('rviz2', 'use_rviz:=true') == str(prefix / 'share' / 'rviz2')


def test_missing_package_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv('AMENT_PREFIX_PATH', str(make_prefix(tmp_path, 'rviz2')))
    monkeypatch.setenv('ROS_DISTRO', 'jazzy')
    assert find_package_share('realsense2_camera') is None
    with pytest.raises(MissingPackageError) as info:
        require_package('realsense2_camera', 'realsense.launch.py', hint='use your own driver')
    text = str(info.value)
    assert text == ("realsense.launch.py needs the ROS 2 package 'realsense2_camera', which is not "
                    'installed (not found on AMENT_PREFIX_PATH). Install it (sudo apt install '
                    'ros-jazzy-realsense2-camera) or use your own driver.')


def test_unset_prefix_path_counts_as_missing(monkeypatch):
    monkeypatch.delenv('AMENT_PREFIX_PATH', raising=False)
    monkeypatch.delenv('ROS_DISTRO', raising=False)
    assert find_package_share('rviz2') is None
    assert 'ros-<distro>-rviz2' in missing_package_message('rviz2', 'use_rviz:=true')


@pytest.mark.parametrize('value,expected', [('true', True), ('True', True), ('1', True),
                                            ('false', False), ('0', False), ('', False)])
def test_is_true_reads_launch_booleans(value, expected):
    assert is_true(value) is expected


# ---- the launch files, where launch is installed -------------------------------------------------

def _need_launch():
    for module in ('launch', 'launch_ros'):
        if importlib.util.find_spec(module) is None:
            pytest.skip(f'{module} is not installed (not on PyPI; needs a ROS 2 install)')


def _own_prefix(tmp_path) -> Path:
    """unipixel_ros + unipixel_sim registered (scripts/ament_prefix.py), rviz2/realsense absent."""
    import subprocess
    import sys
    script = REPO / 'scripts' / 'ament_prefix.py'
    if not script.is_file():
        pytest.skip('scripts/ament_prefix.py is not in this source tree')
    prefix = tmp_path / 'prefix'
    subprocess.run([sys.executable, str(script), '--prefix', str(prefix),
                    str(REPO / 'unipixel_ros'), str(REPO / 'unipixel_sim')],
                   check=True, capture_output=True, timeout=120)
    return prefix


@pytest.mark.parametrize('name,arguments,missing', [
    ('unipixel', {'use_rviz': 'true'}, 'rviz2'),
    ('sim', {'use_rviz': 'true'}, 'rviz2'),
    ('realsense', {}, 'realsense2_camera'),
])
def test_launch_stops_before_starting_anything(name, arguments, missing, tmp_path, monkeypatch,
                                               capfd):
    _need_launch()
    psutil = pytest.importorskip('psutil')
    from launch import LaunchDescription, LaunchService
    from launch.actions import IncludeLaunchDescription
    from launch.launch_description_sources import PythonLaunchDescriptionSource

    prefix = _own_prefix(tmp_path)
    monkeypatch.setenv('AMENT_PREFIX_PATH', str(prefix))
    # the launch files set these in this process; monkeypatch restores them afterwards
    for var in ('FASTRTPS_DEFAULT_PROFILES_FILE', 'FASTDDS_DEFAULT_PROFILES_FILE'):
        monkeypatch.setenv(var, os.environ.get(var, ''))
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    service = LaunchService()
    service.include_launch_description(LaunchDescription([IncludeLaunchDescription(
        PythonLaunchDescriptionSource(str(LAUNCH_FILES[name])),
        launch_arguments=arguments.items())]))
    assert service.run() == 1
    captured = capfd.readouterr()  # launch logs to the terminal through its own handlers
    text = captured.out + captured.err
    assert f"needs the ROS 2 package '{missing}'" in text
    started = {p.pid for p in psutil.Process().children(recursive=True)} - before
    assert not started, 'a process was started before the check'
    assert 'process started' not in text


def _declared_and_forwarded(path):
    """(arguments a launch file declares, keys of every launch_arguments / parameters dict)."""
    import ast
    tree = ast.parse(path.read_text())
    declared, passed = set(), set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, 'id', '') == 'DeclareLaunchArgument':
            declared.add(node.args[0].value)
        if isinstance(node, ast.Dict):
            passed |= {k.value for k in node.keys if isinstance(k, ast.Constant)}
    return declared, passed


@pytest.mark.parametrize('name', sorted(LAUNCH_FILES))
def test_every_launch_file_takes_and_forwards_backend_and_model_path(name):
    """`backend:=sam3 model_path:=DIR` reaches unipixel_node from each launch file (read with
    ast: the launch package itself is not on PyPI)."""
    declared, passed = _declared_and_forwarded(LAUNCH_FILES[name])
    assert {'backend', 'engine', 'model_path'} <= declared
    assert {'backend', 'engine', 'model_path'} <= passed
