#!/usr/bin/env python3
"""Register ament_python packages that are pip-installed in editable mode in an ament prefix.

``pip install -e`` puts the Python code on sys.path and console scripts in ``<prefix>/bin``, but
installs none of setup.py's ``data_files`` and nothing under ``lib/<package>``. ``ros2 run``,
``ros2 launch`` and ``FindPackageShare`` look for exactly those, as colcon installs them:

    share/ament_index/resource_index/packages/<package>   marker (from data_files)
    share/<package>/package.xml, launch/, config/         (from data_files)
    lib/<package>/<executable>                            every console_scripts entry point

This script reads each package's setup.py arguments (by running it with ``setuptools.setup``
replaced, so the lists are the package's own, globs included), symlinks every data file into
the prefix, as ``colcon build --symlink-install`` does, and writes one launcher per console
script into ``lib/<package>/`` that runs the entry point with this interpreter. Edits to a launch
or config file are live; a new file needs a rerun (scripts/bootstrap.sh hashes the file lists).

    python scripts/ament_prefix.py --prefix .venv unipixel_ros unipixel_sim

Idempotent: ``share/<package>`` and ``lib/<package>`` are rebuilt from scratch on every run.
"""
from __future__ import annotations

import argparse
import os
import runpy
import shutil
import stat
import sys
from pathlib import Path

import setuptools

LAUNCHER = '''#!{python}
# ament_prefix.py: console script {name} = {target} (editable install of {package})
import sys
from {module} import {attr}
if __name__ == '__main__':
    sys.exit({call}())
'''


def setup_arguments(package_dir: Path) -> dict:
    """The keyword arguments ``package_dir/setup.py`` passes to ``setup()``."""
    captured: dict = {}
    real_setup = setuptools.setup
    cwd = os.getcwd()
    setuptools.setup = lambda **kwargs: captured.update(kwargs)
    try:
        os.chdir(package_dir)  # setup.py globs relative paths
        runpy.run_path(str(package_dir / 'setup.py'), run_name='__main__')
    finally:
        os.chdir(cwd)
        setuptools.setup = real_setup
    if not captured:
        raise SystemExit(f'{package_dir}/setup.py did not call setuptools.setup()')
    return captured


def console_scripts(args: dict) -> list[tuple[str, str]]:
    """[(name, 'module:attr')] from setup()'s entry_points."""
    entries = (args.get('entry_points') or {}).get('console_scripts', [])
    out = []
    for entry in entries:
        name, _, target = entry.partition('=')
        out.append((name.strip(), target.strip()))
    return out


def _replace_dir(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True)


def register(package_dir: Path, prefix: Path, python: str) -> list[Path]:
    """Install the ament layout of one package into ``prefix``; returns the paths created."""
    package_dir = package_dir.resolve()
    args = setup_arguments(package_dir)
    package = args['name']
    created: list[Path] = []
    _replace_dir(prefix / 'share' / package)
    _replace_dir(prefix / 'lib' / package)
    for dest, files in args.get('data_files', []):
        target_dir = prefix / dest
        target_dir.mkdir(parents=True, exist_ok=True)
        for rel in files:
            source = package_dir / rel
            if not source.is_file():
                raise SystemExit(f'{package}: data file {source} does not exist')
            link = target_dir / source.name
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to(source)
            created.append(link)
    for name, target in console_scripts(args):
        module, _, attr = target.partition(':')
        attr = attr.split('[')[0].strip()  # drop setuptools "extras"
        script = prefix / 'lib' / package / name
        script.write_text(LAUNCHER.format(python=python, name=name, target=target, package=package,
                                          module=module.strip(), attr=attr.split('.')[0],
                                          call=attr))
        script.chmod(script.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        created.append(script)
    return created


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--prefix', required=True, type=Path, help='the ament prefix (the venv)')
    parser.add_argument('--python', default=sys.executable,
                        help='interpreter the launchers run with (default: this one)')
    parser.add_argument('packages', nargs='+', type=Path, help='package directories (setup.py)')
    opts = parser.parse_args(argv)
    prefix = opts.prefix.resolve()
    for package_dir in opts.packages:
        created = register(package_dir, prefix, opts.python)
        print(f'{package_dir.name}: {len(created)} entries in {prefix}', file=sys.stderr)
    return 0


if __name__ == '__main__':
    sys.exit(main())
