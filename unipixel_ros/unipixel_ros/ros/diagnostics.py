"""Pipeline health as a ``diagnostic_msgs/DiagnosticArray``, the way diagnostic_updater builds one.

The node keeps plain numbers in a :class:`PipelineStats`; :func:`evaluate` turns them into a
level, a summary and key/value pairs against a :class:`DiagnosticThresholds` (all thresholds are
parameters), and :func:`build_diagnostic_array` wraps that in one ``DiagnosticStatus`` named
``"<node name>: pipeline"`` with the node's ``hardware_id`` (diagnostic_updater's
``Updater`` names every task status ``"<node name>: <task name>"``).

What is checked, and how levels combine:

- input rate: as diagnostic_updater's ``FrequencyStatus`` with ``freq_bound`` min = max =
  ``expected_rate_hz``: no frames in the window -> ERROR; below ``expected * (1 - tolerance)``
  or above ``expected * (1 + tolerance)`` -> WARN (strict comparisons, as there); the same
  key names ("Events in window", "Actual frequency (Hz)", ...). ``expected_rate_hz <= 0``
  checks only that frames arrive.
- latency (camera stamp -> result published, ms): above ``latency_warn_ms`` -> WARN, above
  ``latency_error_ms`` -> ERROR. No latency yet (nothing processed) is not a problem by itself.
- dropped frames: the latest-frame slot replaces frames the worker had no time for, which is
  by design when the model is slower than the camera; only a dropped fraction of the window's
  frames above ``drop_warn_fraction`` -> WARN.
- engine: none loaded -> WARN.
- last error: an error younger than ``error_hold_s`` seconds -> ERROR; older ones stay visible
  as values only.

Summaries merge like ``DiagnosticStatusWrapper.mergeSummary``: the level is the maximum, and the
messages of all non-OK checks are joined with ``"; "``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

#: diagnostic_msgs/DiagnosticStatus levels (the message stores them as one byte)
OK, WARN, ERROR, STALE = 0, 1, 2, 3
LEVEL_NAMES = {OK: 'OK', WARN: 'WARN', ERROR: 'ERROR', STALE: 'STALE'}
TASK_NAME = 'pipeline'


@dataclass
class PipelineStats:
    """What the node measured, in plain numbers (no ROS types).

    Attributes:
        frames_in_window: input frames received during the last ``window_s`` seconds.
        window_s: length of that window, seconds (> 0).
        frames_total: input frames received since the node was activated.
        processed_total: frames the worker ran the model on since activation.
        dropped_in_window: frames replaced in the latest-frame slot before the worker took them,
            during the window.
        dropped_total: the same since activation.
        latency_ms: camera stamp -> result published for recent results, milliseconds (mean over
            the window), or None when nothing has been processed yet.
        engine: engine name (``'onnxruntime'``, ``'torch'``, ``'tensorrt'``), ``''`` if none loaded.
        backend: what the engine runs on (execution provider, device), free text.
        last_error: the most recent error reported by the pipeline, ``''`` if none.
        last_error_age_s: seconds since ``last_error`` happened (None if there was none).
    """

    frames_in_window: int
    window_s: float
    frames_total: int = 0
    processed_total: int = 0
    dropped_in_window: int = 0
    dropped_total: int = 0
    latency_ms: Optional[float] = None
    engine: str = ''
    backend: str = ''
    last_error: str = ''
    last_error_age_s: Optional[float] = None


@dataclass(frozen=True)
class DiagnosticThresholds:
    """Where OK becomes WARN or ERROR; every field can be a node parameter.

    Attributes:
        expected_rate_hz: camera frame rate the node should receive, Hz (<= 0: only check that
            frames arrive).
        rate_tolerance: fraction either side of the expected rate still OK (diagnostic_updater's
            ``FrequencyStatusParam.tolerance``, default 0.1 there too).
        latency_warn_ms: mean latency above this is WARN, milliseconds.
        latency_error_ms: mean latency above this is ERROR, milliseconds.
        drop_warn_fraction: dropped / received frames in the window above this is WARN.
        error_hold_s: an error stays ERROR for this many seconds after it happened.
    """

    expected_rate_hz: float = 15.0
    rate_tolerance: float = 0.1
    latency_warn_ms: float = 250.0
    latency_error_ms: float = 1000.0
    drop_warn_fraction: float = 0.8
    error_hold_s: float = 5.0

    def __post_init__(self):
        if not (0.0 <= self.rate_tolerance < 1.0):
            raise ValueError(f'rate_tolerance must be in [0, 1), got {self.rate_tolerance}')
        if not (0.0 < self.latency_warn_ms <= self.latency_error_ms):
            raise ValueError('need 0 < latency_warn_ms <= latency_error_ms, got '
                             f'{self.latency_warn_ms} and {self.latency_error_ms}')
        if not (0.0 <= self.drop_warn_fraction <= 1.0):
            raise ValueError(f'drop_warn_fraction must be in [0, 1], got {self.drop_warn_fraction}')
        if self.error_hold_s < 0.0:
            raise ValueError(f'error_hold_s must be >= 0, got {self.error_hold_s}')


@dataclass
class Evaluation:
    """Level, summary message and ordered key/value strings of one pipeline status."""

    level: int
    message: str
    values: list[tuple[str, str]]


class _Summary:
    """diagnostic_updater's DiagnosticStatusWrapper.summary / mergeSummary, on plain ints."""

    def __init__(self):
        self.level, self.message = OK, ''

    def merge(self, level: int, message: str) -> None:
        if (level > OK) == (self.level > OK):
            self.message = f'{self.message}; {message}' if self.message else message
        elif level > self.level:
            self.message = message
        self.level = max(self.level, level)


def evaluate(stats: PipelineStats, thresholds: DiagnosticThresholds = DiagnosticThresholds()
             ) -> Evaluation:
    """Judge ``stats`` against ``thresholds`` (pure function; see the module docstring)."""
    if not (stats.window_s > 0.0 and math.isfinite(stats.window_s)):
        raise ValueError(f'window_s must be a positive number of seconds, got {stats.window_s}')
    t = thresholds
    summary = _Summary()
    values: list[tuple[str, str]] = []

    # input rate, FrequencyStatus style
    events = int(stats.frames_in_window)
    freq = events / stats.window_s
    low = t.expected_rate_hz * (1.0 - t.rate_tolerance)
    high = t.expected_rate_hz * (1.0 + t.rate_tolerance)
    if events == 0:
        summary.merge(ERROR, 'no input frames')
    elif t.expected_rate_hz > 0 and freq < low:
        summary.merge(WARN, f'input rate too low ({freq:.1f} Hz < {low:.1f} Hz)')
    elif t.expected_rate_hz > 0 and freq > high:
        summary.merge(WARN, f'input rate too high ({freq:.1f} Hz > {high:.1f} Hz)')
    else:
        summary.merge(OK, f'ok: {freq:.1f} Hz input')
    values += [('Events in window', '%d' % events),
               ('Events since startup', '%d' % stats.frames_total),
               ('Duration of window (s)', '%f' % stats.window_s),
               ('Actual frequency (Hz)', '%f' % freq)]
    if t.expected_rate_hz > 0:
        values += [('Target frequency (Hz)', '%f' % t.expected_rate_hz),
                   ('Minimum acceptable frequency (Hz)', '%f' % low),
                   ('Maximum acceptable frequency (Hz)', '%f' % high)]

    # latency
    if stats.latency_ms is None:
        values.append(('Latency (ms)', 'n/a'))
    else:
        lat = float(stats.latency_ms)
        if lat > t.latency_error_ms:
            summary.merge(ERROR, f'latency {lat:.0f} ms > {t.latency_error_ms:.0f} ms')
        elif lat > t.latency_warn_ms:
            summary.merge(WARN, f'latency {lat:.0f} ms > {t.latency_warn_ms:.0f} ms')
        values.append(('Latency (ms)', '%f' % lat))
    values += [('Latency warn above (ms)', '%f' % t.latency_warn_ms),
               ('Latency error above (ms)', '%f' % t.latency_error_ms)]

    # dropped frames (latest-frame slot)
    drop_fraction = stats.dropped_in_window / events if events else 0.0
    if drop_fraction > t.drop_warn_fraction:
        summary.merge(WARN, f'{100 * drop_fraction:.0f}% of input frames dropped '
                            f'(> {100 * t.drop_warn_fraction:.0f}%)')
    values += [('Frames processed', '%d' % stats.processed_total),
               ('Dropped in window', '%d' % stats.dropped_in_window),
               ('Dropped since startup', '%d' % stats.dropped_total),
               ('Dropped fraction in window', '%f' % drop_fraction)]

    # engine
    if not stats.engine:
        summary.merge(WARN, 'no engine loaded')
    values += [('Engine', stats.engine or 'none'), ('Backend', stats.backend or 'n/a')]

    # last error
    if stats.last_error:
        age = stats.last_error_age_s
        if age is None or age <= t.error_hold_s:
            summary.merge(ERROR, f'error: {stats.last_error}')
        values += [('Last error', stats.last_error),
                   ('Seconds since last error', 'n/a' if age is None else '%f' % age)]
    else:
        values.append(('Last error', ''))

    return Evaluation(summary.level, summary.message, values)


def build_diagnostic_array(stats: PipelineStats,
                           thresholds: DiagnosticThresholds = DiagnosticThresholds(), *,
                           node_name: str = 'unipixel_node', hardware_id: str = 'none',
                           stamp=None):
    """One ``DiagnosticArray`` holding the pipeline status, ready to publish on /diagnostics.

    Args:
        stats, thresholds: see :func:`evaluate`.
        node_name: the node's name; the status is named ``"<node_name>: pipeline"``.
        hardware_id: the camera or machine the pipeline serves (diagnostic_updater's
            ``setHardwareID``; "none" when there is nothing better).
        stamp: ``builtin_interfaces/Time`` for the array header (the node's clock now); left
            zero when None.
    """
    from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

    result = evaluate(stats, thresholds)
    status = DiagnosticStatus(level=bytes([result.level]), name=f'{node_name}: {TASK_NAME}',
                              message=result.message, hardware_id=hardware_id,
                              values=[KeyValue(key=k, value=v) for k, v in result.values])
    array = DiagnosticArray(status=[status])
    if stamp is not None:
        array.header.stamp = stamp
    return array
