"""The ament prefix layout ros2 run / ros2 launch / FindPackageShare need, found by ament_index_python:

- scripts/ament_prefix.py (what scripts/bootstrap.sh runs on the venv) builds it in a fresh prefix;
- the prefix this environment actually uses (AMENT_PREFIX_PATH, else the venv itself: where
  ``make venv`` or ``colcon build`` registered the packages) has it too.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ament = pytest.importorskip('ament_index_python.packages')

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / 'scripts' / 'ament_prefix.py'
PACKAGES = {
    'unipixel_ros': {'executables': {'unipixel_node', 'unipixel-ros'},
                     'files': ['package.xml', 'launch/unipixel.launch.py',
                               'launch/realsense.launch.py', 'config/unipixel.yaml',
                               'config/fastdds_large_messages.xml', 'config/unipixel.rviz']},
    'unipixel_sim': {'executables': {'sim_camera', 'grasp_executor', 'unipixel-sim'},
                     'files': ['package.xml', 'launch/sim.launch.py', 'config/sim_camera.yaml',
                               'config/grasp_executor.yaml']},
}


def check_prefix_layout(prefix: Path, package: str, expect: dict) -> None:
    """Assert ament_index_python resolves ``package`` to ``prefix`` with its files and executables."""
    assert ament.get_package_prefix(package) == str(prefix)
    share = Path(ament.get_package_share_directory(package))
    assert share == prefix / 'share' / package
    assert (prefix / 'share' / 'ament_index' / 'resource_index' / 'packages' / package).is_file()
    for rel in expect['files']:
        assert (share / rel).is_file(), f'{package}: share/{rel} missing'
    lib = prefix / 'lib' / package
    present = {p.name for p in lib.iterdir() if p.is_file() and os.access(p, os.X_OK)}
    assert expect['executables'] <= present, f'{package}: lib/{package} has {sorted(present)}'


@pytest.fixture(scope='module')
def fresh_prefix(tmp_path_factory):
    if not SCRIPT.is_file():
        pytest.skip(f'{SCRIPT.name} is not in this source tree (installed package without scripts/)')
    prefix = tmp_path_factory.mktemp('prefix')
    stale = prefix / 'lib' / 'unipixel_ros' / 'removed_entry_point'
    stale.parent.mkdir(parents=True)
    stale.write_text('#!/bin/sh\n')
    for _ in range(2):  # idempotent: a second run rebuilds the same tree
        subprocess.run([sys.executable, str(SCRIPT), '--prefix', str(prefix),
                        str(REPO / 'unipixel_ros'), str(REPO / 'unipixel_sim')],
                       check=True, capture_output=True, text=True, timeout=120)
    return prefix


def test_script_builds_the_layout(fresh_prefix, monkeypatch):
    monkeypatch.setenv('AMENT_PREFIX_PATH', str(fresh_prefix))
    assert set(PACKAGES) <= set(ament.get_packages_with_prefixes())
    for package, expect in PACKAGES.items():
        check_prefix_layout(fresh_prefix, package, expect)
    assert not (fresh_prefix / 'lib' / 'unipixel_ros' / 'removed_entry_point').exists()
    # share files are symlinks into the source tree: edits to launch/config files are live
    launch = fresh_prefix / 'share' / 'unipixel_sim' / 'launch' / 'sim.launch.py'
    assert launch.is_symlink()
    assert launch.resolve() == REPO / 'unipixel_sim' / 'launch' / 'sim.launch.py'


def test_launcher_runs_the_entry_point(fresh_prefix):
    exe = fresh_prefix / 'lib' / 'unipixel_sim' / 'unipixel-sim'
    assert exe.read_text().startswith(f'#!{sys.executable}\n')
    run = subprocess.run([str(exe), '--help'], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert 'usage: unipixel-sim' in run.stdout


def _environment_prefixes() -> list:
    env = os.environ.get('AMENT_PREFIX_PATH')
    return env.split(os.pathsep) if env else [sys.prefix]


@pytest.mark.parametrize('package', sorted(PACKAGES))
def test_this_environment_is_an_ament_prefix(package, monkeypatch):
    prefixes = _environment_prefixes()
    monkeypatch.setenv('AMENT_PREFIX_PATH', os.pathsep.join(prefixes))
    try:
        prefix = Path(ament.get_package_prefix(package))
    except ament.PackageNotFoundError:
        pytest.skip(f'{package} is not registered in {prefixes}: run make venv (or colcon build)')
    check_prefix_layout(prefix, package, PACKAGES[package])
    # the interfaces are found the same way (build_msgs.sh or colcon installed them)
    ament.get_package_share_directory('unipixel_msgs')
