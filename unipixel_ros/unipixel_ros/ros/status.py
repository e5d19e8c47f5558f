"""Pipeline statistics of ``unipixel_node`` and their ``unipixel/status`` message.

The worker and the camera intake record into :class:`PipelineStats` (plain deques, appended from
one thread each); the status timer turns them into a ``PipelineStatus`` once per period.
"""
from __future__ import annotations

import time
from collections import deque

import numpy as np
from unipixel_msgs.msg import PipelineStatus

#: results kept for the latency percentiles (40 s at 15 Hz)
LATENCY_WINDOW = 600

#: ``PipelineStatus.state`` values of an active node (it listens to the camera and to speech)
ACTIVE_STATES = ('idle', 'tracking')


def is_active(status: PipelineStatus) -> bool:
    """True when a received ``unipixel/status`` comes from an active node.

    Clients should test the state, not the message: the message 'active: waiting for a command'
    is replaced by the next event (a silent camera topic, a command), possibly before a client's
    subscription has matched the node's publisher.
    """
    return status.state in ACTIVE_STATES


def _median(values) -> float:
    return float(np.median(values)) if values else 0.0


class PipelineStats:
    """Counters and recent timings (milliseconds unless named otherwise)."""

    def __init__(self) -> None:
        self.frames_in = 0
        self.frames_processed = 0
        self.errors = 0
        self.last_overhead_ms = 0.0
        self.latencies_ms: deque = deque(maxlen=LATENCY_WINDOW)   # stamp -> result publish
        self.input_delay_ms: deque = deque(maxlen=LATENCY_WINDOW)  # stamp -> synchronised
        self.model_ms: deque = deque(maxlen=LATENCY_WINDOW)
        self.worker_overhead_ms: deque = deque(maxlen=60)
        self.queue_wait_ms: deque = deque(maxlen=60)
        self.out_times: deque = deque(maxlen=60)                   # time.monotonic()
        self.in_times: deque = deque(maxlen=60)
        self.last_input = {'color': 0.0, 'depth': 0.0, 'info': 0.0}   # time.monotonic()
        self._stale: list = []
        self._warned_silent = False      # a silent-topic warning is the latest input news
        self.last_error = ''
        self.last_error_time = 0.0                                    # time.monotonic()

    def error(self, message: str) -> None:
        """Count an error and remember it for /diagnostics."""
        self.errors += 1
        self.last_error, self.last_error_time = message, time.monotonic()

    def diagnostics(self, frames_dropped: int, engine: str, backend: str, window_s: float = 5.0):
        """The :class:`~.diagnostics.PipelineStats` of the last ``window_s`` seconds."""
        from .diagnostics import PipelineStats as DiagnosticStats
        now = time.monotonic()
        recent = [t for t in self.in_times if now - t < window_s]
        recent_latency = list(self.latencies_ms)[-len(recent):] if recent else []
        return DiagnosticStats(
            frames_in_window=len(recent), window_s=window_s, frames_total=self.frames_in,
            processed_total=self.frames_processed, dropped_total=frames_dropped,
            latency_ms=float(np.mean(recent_latency)) if recent_latency else None,
            engine=engine, backend=backend, last_error=self.last_error,
            last_error_age_s=(now - self.last_error_time) if self.last_error else None)

    def stale_inputs(self, started: float, timeout_s: float) -> list:
        """Camera inputs silent for more than ``timeout_s`` while others arrive, when that set
        changed since the last call (counted as an error); [] otherwise. With no input at all
        the camera is simply off, which is not a fault."""
        now = time.monotonic()
        stale = [n for n, t in self.last_input.items() if now - max(t, started) > timeout_s]
        stale = stale if 0 < len(stale) < len(self.last_input) else []
        changed = stale and stale != self._stale
        self._stale = stale
        if changed:
            self.error(f'no {", ".join(stale)} received for more than {timeout_s:.1f} s')
        return stale if changed else []

    def silent_inputs_message(self, started: float, timeout_s: float,
                              topics: list) -> tuple[str, bool]:
        """:meth:`stale_inputs` as a status message naming the ``topics`` (color, depth,
        camera_info) and whether it is a warning.

        Returns ('no info received ...', True) when the set of silent topics changed,
        ('all camera topics arrive again ...', False) once none is silent after a warning (so
        the status does not keep naming a topic that came back), ('', False) otherwise.
        """
        stale = self.stale_inputs(started, timeout_s)
        if stale:
            self._warned_silent = True
            return (f'no {", ".join(stale)} received for more than {timeout_s:.1f} s while '
                    f'other camera topics arrive (topics: {", ".join(topics)})'), True
        now = time.monotonic()
        if self._warned_silent and all(now - t <= timeout_s for t in self.last_input.values()):
            self._warned_silent = False
            return f'all camera topics arrive again (topics: {", ".join(topics)})', False
        return '', False

    def log_silent_inputs(self, logger, started: float, timeout_s: float, topics: list) -> str:
        """:meth:`silent_inputs_message`, logged (a warning or, for the recovery, info) on the
        node's rclpy ``logger``; the message, or ''."""
        message, warning = self.silent_inputs_message(started, timeout_s, topics)
        if message and warning:      # (rclpy: one call site logs at one severity)
            logger.warning(message)
        elif message:
            logger.info(message)
        return message

    def frame_in(self, input_delay_ms: float) -> None:
        self.frames_in += 1
        self.in_times.append(time.monotonic())
        self.input_delay_ms.append(input_delay_ms)

    def frame_out(self, received: float, taken: float) -> None:
        """A frame's outputs are published; ``received``/``taken``: its monotonic times at
        synchronisation and when the worker took it from the slot."""
        now = time.monotonic()
        self.frames_processed += 1
        self.out_times.append(now)
        model_ms = self.model_ms[-1] if self.model_ms else 0.0
        self.last_overhead_ms = 1e3 * (now - received) - model_ms
        self.worker_overhead_ms.append(1e3 * (now - taken) - model_ms)
        self.queue_wait_ms.append(1e3 * (taken - received))

    def to_msg(self, stamp, state: str, query: str, message: str,
               frames_dropped: int) -> PipelineStatus:
        """The ``unipixel/status`` message; rates are over the last 5 s."""
        now = time.monotonic()

        def rate(times) -> float:
            return sum(1 for t in times if now - t < 5.0) / 5.0

        msg = PipelineStatus()
        msg.header.stamp = stamp
        msg.state, msg.query, msg.message = state, query, message
        msg.input_rate_hz = rate(self.in_times)
        msg.output_rate_hz = rate(self.out_times)
        latencies = np.asarray(self.latencies_ms) if self.latencies_ms else np.zeros(1)
        msg.latency_ms_median = float(np.median(latencies))
        msg.latency_ms_p95 = float(np.percentile(latencies, 95))
        msg.input_delay_ms_median = _median(self.input_delay_ms)
        msg.model_ms_median = _median(self.model_ms)
        msg.worker_overhead_ms_median = _median(self.worker_overhead_ms)
        msg.queue_wait_ms_median = _median(self.queue_wait_ms)
        msg.frames_in = self.frames_in
        msg.frames_processed = self.frames_processed
        msg.frames_dropped = frames_dropped
        msg.errors = self.errors
        return msg
