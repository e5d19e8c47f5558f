"""Pinhole camera intrinsics (the ``k`` matrix of ``sensor_msgs/CameraInfo``)."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence, Tuple

import numpy as np

from .errors import GeometryError


@dataclass(frozen=True)
class CameraIntrinsics:
    """Pinhole intrinsics of an undistorted (rectified) image.

    Attributes:
        fx, fy: focal lengths in pixels (> 0, finite).
        cx, cy: principal point in pixels (finite; pixel centres at integer coordinates,
            as in ``sensor_msgs/CameraInfo``).
        width, height: image size in pixels (> 0).

    The projection of a point ``(x, y, z)`` in the camera optical frame (x right, y down,
    z forward, metres) is ``u = fx * x / z + cx``, ``v = fy * y / z + cy``.
    Lens distortion is not modelled: use the rectified image or an aligned depth image.
    """

    fx: float
    fy: float
    cx: float
    cy: float
    width: int
    height: int

    def __post_init__(self) -> None:
        for name in ('fx', 'fy'):
            value = float(getattr(self, name))
            if not math.isfinite(value) or value <= 0.0:
                raise GeometryError(
                    f'focal length {name} must be a positive finite number of pixels, got '
                    f'{value!r} (an all-zero K means an uncalibrated camera)')
        for name in ('cx', 'cy'):
            value = float(getattr(self, name))
            if not math.isfinite(value):
                raise GeometryError(f'principal point {name} must be finite, got {value!r}')
        for name in ('width', 'height'):
            value = getattr(self, name)
            if int(value) != value or int(value) <= 0:
                raise GeometryError(f'image {name} must be a positive integer, got {value!r}')
        # Normalise types once so that downstream arithmetic never sees numpy scalars/strings.
        for name in ('fx', 'fy', 'cx', 'cy'):
            object.__setattr__(self, name, float(getattr(self, name)))
        for name in ('width', 'height'):
            object.__setattr__(self, name, int(getattr(self, name)))

    @classmethod
    def from_k(cls, k: Sequence[float], width: int, height: int) -> 'CameraIntrinsics':
        """Build from a row-major 3x3 K (``CameraInfo.k``: 9 floats) and the image size.

        Args:
            k: 9 numbers ``[fx, 0, cx, 0, fy, cy, 0, 0, 1]`` (any sequence or array of size 9).
            width, height: image size in pixels.
        Raises:
            GeometryError: K does not have 9 entries, or any value fails validation.
        """
        arr = np.asarray(k, dtype=np.float64).reshape(-1)
        if arr.size != 9:
            raise GeometryError(f'K must have 9 entries (row-major 3x3), got {arr.size}')
        return cls(fx=arr[0], fy=arr[4], cx=arr[2], cy=arr[5], width=width, height=height)

    @property
    def k(self) -> np.ndarray:
        """(3, 3) float64 camera matrix."""
        return np.array([[self.fx, 0.0, self.cx], [0.0, self.fy, self.cy], [0.0, 0.0, 1.0]])

    @property
    def shape(self) -> Tuple[int, int]:
        """Image shape ``(height, width)`` as numpy orders it."""
        return (self.height, self.width)

    def check_image_shape(self, shape: Sequence[int], what: str = 'depth image') -> None:
        """Raise GeometryError if an image of numpy ``shape`` (H, W[, C]) does not match."""
        h, w = int(shape[0]), int(shape[1])
        if (h, w) != (self.height, self.width):
            raise GeometryError(
                f'intrinsics (K) are for a {self.width}x{self.height} image but the {what} is '
                f'{w}x{h}: camera_info and image do not belong together (or the image was '
                f'resized without scaling K)')

    def crop(self, u0: int, v0: int, width: int, height: int) -> 'CameraIntrinsics':
        """Intrinsics of the sub-image ``[v0:v0 + height, u0:u0 + width]``."""
        return CameraIntrinsics(self.fx, self.fy, self.cx - u0, self.cy - v0, width, height)

    def scale(self, sx: float, sy: float) -> 'CameraIntrinsics':
        """Intrinsics of the image resized by ``(sx, sy)`` (pixel-centre convention kept)."""
        return CameraIntrinsics(
            self.fx * sx, self.fy * sy, (self.cx + 0.5) * sx - 0.5, (self.cy + 0.5) * sy - 0.5,
            int(round(self.width * sx)), int(round(self.height * sy)))
