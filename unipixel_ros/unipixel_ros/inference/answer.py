"""The answer step: one decoded frame + an encoded query -> everything the robot acts on.

prediction (mask, found, score, attributes) -> object geometry (cloud, box, grasps) -> attribute
refinement from the measured box (one-off answers) or a tracker update (a followed command).
``unipixel_node``, the dataset evaluation, attribute fitting and the closed-loop evaluation all
call :func:`answer_frame`, so they measure what the robot does.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from unipixel_ros.perception import CameraIntrinsics, GeometryConfig, GeometryError
from unipixel_ros.perception.pipeline import ObjectGeometry, estimate_object_geometry
from unipixel_ros.perception.tracking import ObjectTracker, TrackState

from .predictor import Prediction, Query, ReferringPredictor


@dataclass
class Answer:
    """What one frame says about one query.

    Attributes:
        query: the encoded query that was answered.
        prediction: the predictor's output (attributes refined when ``refine`` applied).
        geometry: the found object's measured geometry in the camera optical frame (metres),
            or None (not found, no depth, or the geometry failed: see ``status``).
        mask: (H, W) bool final mask: the tracker's smoothed mask while tracking, all False
            when not found.
        status: 'ok', 'geometry failed: ...', 'not found', 'not found (<why rejected>)',
            'uncertain' (not found, but the score is at least ``uncertain_threshold``) or
            'ambiguous: <question>' (several objects fit the words; sam3 backend).
        track: the tracker's state after this frame (None for one-off answers).
    """

    query: Query
    prediction: Prediction
    geometry: ObjectGeometry | None
    mask: np.ndarray
    status: str
    track: TrackState | None = None

    @property
    def found(self) -> bool:
        return self.prediction.found

    @property
    def score(self) -> float:
        return self.prediction.score


def measure(mask: np.ndarray, depth_m: np.ndarray | None, intrinsics: CameraIntrinsics | None,
            rgb: np.ndarray | None = None,
            config: GeometryConfig | None = None) -> tuple[ObjectGeometry | None, str]:
    """(geometry, '') of ``mask``, or (None, why) when it cannot be measured.

    Args:
        mask: (H, W) bool object mask.
        depth_m: (H, W) float32 metres aligned with the image (0 / NaN = no reading).
        intrinsics: of that image.
        rgb: optional (H, W, 3) uint8 colours for the cloud.
        config: geometry tunables (default :class:`GeometryConfig`).
    """
    if depth_m is None or intrinsics is None:
        return None, 'no depth'
    try:
        return estimate_object_geometry(mask, np.asarray(depth_m, np.float32), '32FC1',
                                        intrinsics, rgb, config or GeometryConfig()), ''
    except GeometryError as exc:
        return None, f'geometry failed: {exc}'


def answer_frame(predictor: ReferringPredictor, query: Query, rgb: np.ndarray,
                 depth_m: np.ndarray | None, intrinsics: CameraIntrinsics | None,
                 geometry_config: GeometryConfig | None = None,
                 tracker: ObjectTracker | None = None, stamp_s: float = 0.0,
                 refine: bool = True) -> Answer:
    """Answer ``query`` on one RGB-D frame.

    Args:
        predictor: the loaded predictor (its ``settings`` decide found / not found).
        query: from ``predictor.encode_text`` or ``encode_point``.
        rgb: (H, W, 3) uint8 RGB.
        depth_m: (H, W) float32 metres aligned to ``rgb`` (None: no geometry).
        intrinsics: of ``rgb``.
        geometry_config: geometry tunables (default :class:`GeometryConfig`).
        tracker: when given, the answer updates it and its smoothed mask replaces the raw one
            (a followed command); when None the answer stands alone.
        stamp_s: the frame's time stamp, s (the tracker's clock).
        refine: one-off answers only: re-decide category and size from the measured box
            and the colour from the mask's pixels (``predictor.refine_attributes``).
    """
    if getattr(predictor, 'needs_geometry', False):    # the sam3 backend's resolver
        pred = predictor.predict(rgb, query, depth_m=depth_m, intrinsics=intrinsics)
    else:
        pred = predictor.predict(rgb, query)
    geometry, status = None, 'ok'
    if pred.found:
        geometry, why = measure(pred.mask, depth_m, intrinsics, rgb, geometry_config)
        if geometry is None and why != 'no depth':
            status = why
    mask, state = pred.mask, None
    if tracker is None:
        if refine:
            predictor.refine_attributes(pred, geometry, rgb)
    else:
        grasp = None if geometry is None else geometry.best_grasp
        state = tracker.update(
            pred.found, mask_prob=pred.mask_prob if pred.found else None,
            centroid=None if geometry is None else geometry.box.center,
            grasp_position=None if grasp is None else grasp.position,
            grasp_quaternion=None if grasp is None else grasp.quaternion,
            grasp_width=None if grasp is None else grasp.width, stamp_s=stamp_s)
        if pred.found and state.mask_prob is not None:
            mask = state.mask_prob > predictor.settings.mask_threshold
    if pred.question:   # several objects fit the words (sam3 backend): ask which one
        status = f'ambiguous: {pred.question}'
    elif pred.rejected:   # the words and the attribute heads disagree: not a "which one?"
        status = f'not found ({pred.rejected})'
    elif not pred.found:
        status = ('not found' if pred.score < predictor.settings.uncertain_threshold
                  else 'uncertain')
    if not pred.found:
        mask = np.zeros_like(mask)
    return Answer(query, pred, geometry, mask, status, state)
