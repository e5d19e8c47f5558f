"""The last answer carried forward, with its age, while the model works on a newer frame.

A heavy backend (SAM 3: tens of seconds per frame on a CPU, 0.1-0.8 s on Jetson) grounds the
command far less often than the camera runs. Between groundings the node republishes the last
``ReferringResult`` (mask, cloud, grasp of the frame it was computed on, its header unchanged)
every ``carry_forward_period_s`` with ``carried_forward`` true and ``age_s`` growing; past
``stale_after_s`` the result says ``stale`` and ``unipixel/status`` says so too. A consumer
that acts on a result checks ``stale`` (or its own bound on ``age_s``), never a mask older than
it can afford. With the default model a grounding takes milliseconds and nothing is carried.

``age_s`` of every result (fresh or carried) is the node's clock minus the color image stamp,
so a fresh answer that took 45 s to compute is stale from the start.
"""
from __future__ import annotations

import copy
import threading
import time

from unipixel_msgs.msg import PipelineStatus, ReferringResult


def age_s(result: ReferringResult, now_s: float) -> float:
    """Seconds from the result's image stamp to ROS time ``now_s`` (never negative)."""
    stamp = result.header.stamp
    return max(0.0, now_s - (stamp.sec + stamp.nanosec * 1e-9))


class ResultCarrier:
    """The last published result of the followed command (thread-safe: the worker publishes,
    a timer carries forward, the status timer reads).

    Args:
        period_s: carry forward when no result was published for this long (0 = never).
        stale_after_s: a result older than this (s, node clock minus image stamp) is stale.
    """

    def __init__(self, period_s: float, stale_after_s: float) -> None:
        self.period_s, self.stale_after_s = period_s, stale_after_s
        self._lock = threading.Lock()
        self._last: ReferringResult | None = None
        self._published_at = 0.0          # time.monotonic() of the last publish, fresh or carried

    @classmethod
    def for_node(cls, node) -> 'ResultCarrier':
        """The carrier of ``unipixel_node`` (its ``carry_forward_period_s`` and
        ``stale_after_s``), with a steady timer that republishes the last result when due."""
        carrier = cls(node.get_parameter('carry_forward_period_s').value,
                      node.get_parameter('stale_after_s').value)
        if carrier.period_s > 0:
            node.create_timer(min(0.1, carrier.period_s / 2), lambda: carrier.publish_due(node),
                              clock=node._steady)
        return carrier

    def publish_due(self, node) -> None:
        """Republish the last result on ``unipixel/result`` when due and a command is
        followed (lifecycle publishers drop it while the node is inactive)."""
        carried = self.due(node.get_clock().now().nanoseconds * 1e-9)
        if carried is not None and node._pubs and node._session is not None:
            node._publish_safely(lambda: node._pubs['result'].publish(carried))

    def mark(self, result: ReferringResult, now_s: float) -> ReferringResult:
        """Set ``age_s`` / ``stale`` of a fresh result at ROS time ``now_s`` and keep it."""
        result.age_s = age_s(result, now_s)
        result.stale = result.age_s > self.stale_after_s
        result.carried_forward = False
        with self._lock:
            self._last, self._published_at = result, time.monotonic()
        return result

    def forget(self) -> None:
        """A new command, "stop", or a time jump: nothing to carry."""
        with self._lock:
            self._last = None

    def due(self, now_s: float) -> ReferringResult | None:
        """A carried-forward copy of the last result when ``period_s`` passed without a
        publish, else None."""
        with self._lock:
            last = self._last
            if (last is None or self.period_s <= 0
                    or time.monotonic() - self._published_at < self.period_s):
                return None
            self._published_at = time.monotonic()
        carried = copy.copy(last)       # the big fields (mask, cloud) are shared, not copied
        carried.age_s = age_s(last, now_s)
        carried.stale = carried.age_s > self.stale_after_s
        carried.carried_forward = True
        return carried

    def annotate(self, status: PipelineStatus, now_s: float) -> None:
        """Age and staleness of the last result on ``unipixel/status`` (0 / false: none)."""
        with self._lock:
            last = self._last
        status.result_age_s = age_s(last, now_s) if last else 0.0
        status.result_stale = bool(last) and status.result_age_s > self.stale_after_s
