"""Locate installed package data (config, launch) without depending on the working directory."""
from __future__ import annotations

from pathlib import Path

PACKAGE = 'unipixel_ros'


def package_share(package: str = PACKAGE) -> Path:
    """Share directory of ``package``: the ament index when available, else the source tree.

    The source-tree fallback serves editable/venv installs where the ament index is not on
    ``AMENT_PREFIX_PATH``; both layouts hold ``config/`` and ``launch/`` side by side.
    """
    try:
        from ament_index_python.packages import get_package_share_directory, PackageNotFoundError
        try:
            share = Path(get_package_share_directory(package))
            if (share / 'config').is_dir():
                return share
        except (PackageNotFoundError, OSError):  # OSError: AMENT_PREFIX_PATH is not set
            pass
    except ImportError:
        pass
    source = Path(__file__).resolve().parent.parent
    if package != PACKAGE:
        source = source.parent / package
    if (source / 'package.xml').is_file():
        return source
    raise FileNotFoundError(f'cannot locate the share directory of package {package!r}')


def config_file(name: str, package: str = PACKAGE) -> Path:
    """Path of ``config/<name>`` in ``package``; FileNotFoundError naming it when absent."""
    path = package_share(package) / 'config' / name
    if not path.is_file():
        raise FileNotFoundError(f'config file not found: {path}')
    return path
