"""Checks the launch files run before they start anything: is an optional ROS 2 package installed?

rviz2 and realsense2_camera are exec_depends of the packages, but a headless robot or a machine
without a RealSense can skip them. A launch file that would start one asks
:func:`require_package` first, in an ``OpaqueFunction`` placed before every process it starts, so a
missing package stops the launch with one clear line (``ros2 launch`` exits 1) and leaves
nothing running, instead of some nodes starting and the include failing with a bare
"package not found".

Only ament_index_python is imported, so the launch files and these tests need no launch install.
"""
from __future__ import annotations

import os
from typing import Optional

from ament_index_python.packages import PackageNotFoundError, get_package_share_directory

TRUE_STRINGS = ('true', '1')  # what launch's IfCondition accepts as true


class MissingPackageError(RuntimeError):
    """A launch option needs a ROS 2 package that is not on AMENT_PREFIX_PATH."""


def find_package_share(package: str) -> Optional[str]:
    """Share directory of ``package``, or None when no prefix on AMENT_PREFIX_PATH has it."""
    try:
        return get_package_share_directory(package)
    except (PackageNotFoundError, OSError):  # OSError: AMENT_PREFIX_PATH unset
        return None


def missing_package_message(package: str, feature: str, hint: str = '') -> str:
    """One line saying what needed ``package``, and how to install it or do without it."""
    distro = os.environ.get('ROS_DISTRO') or '<distro>'
    apt = f"ros-{distro}-{package.replace('_', '-')}"
    text = (f"{feature} needs the ROS 2 package '{package}', which is not installed "
            f"(not found on AMENT_PREFIX_PATH). Install it (sudo apt install {apt})")
    return f'{text} or {hint}.' if hint else f'{text}.'


def require_package(package: str, feature: str, hint: str = '') -> str:
    """Share directory of ``package``; MissingPackageError with the message above otherwise."""
    share = find_package_share(package)
    if share is None:
        raise MissingPackageError(missing_package_message(package, feature, hint))
    return share


def is_true(value: str) -> bool:
    """A launch argument string as a bool, the way IfCondition reads it ('true'/'1'/...)."""
    return str(value).strip().lower() in TRUE_STRINGS
