"""The last result carried forward with its age between groundings (``ros/carry_forward.py``);
the node-level behaviour is tested with SAM 3 against the simulated camera
(unipixel_sim/test/test_node_sam3.py)."""
import time

import pytest

pytest.importorskip('unipixel_msgs')
from unipixel_msgs.msg import PipelineStatus, ReferringResult  # noqa: E402

from unipixel_ros.ros.carry_forward import ResultCarrier  # noqa: E402


def _result(stamp_s: float) -> ReferringResult:
    r = ReferringResult(query='the red cup', found=True)
    r.header.stamp.sec, r.header.stamp.nanosec = int(stamp_s), int(round(stamp_s % 1 * 1e9))
    r.mask.height, r.mask.width = 4, 5
    return r


def test_a_fresh_result_gets_its_age_and_is_stale_only_past_the_bound():
    c = ResultCarrier(period_s=0.05, stale_after_s=1.0)
    r = c.mark(_result(100.0), now_s=100.25)
    assert r.age_s == pytest.approx(0.25) and not r.stale and not r.carried_forward
    assert c.mark(_result(100.0), now_s=101.5).stale      # a slow grounding is stale at once


def test_nothing_is_carried_before_the_period_or_without_a_result():
    c = ResultCarrier(period_s=0.2, stale_after_s=1.0)
    assert c.due(now_s=5.0) is None
    c.mark(_result(100.0), now_s=100.1)
    assert c.due(now_s=100.15) is None                      # published just now


def test_carried_copies_age_and_turn_stale_and_the_original_is_untouched():
    c = ResultCarrier(period_s=0.02, stale_after_s=1.0)
    fresh = c.mark(_result(100.0), now_s=100.1)
    time.sleep(0.03)
    first = c.due(now_s=100.6)
    assert first is not None and first.carried_forward and not first.stale
    assert first.age_s == pytest.approx(0.6) and first.header.stamp == fresh.header.stamp
    assert first.mask is fresh.mask                          # shared, not copied
    assert c.due(now_s=100.7) is None                        # one per period
    time.sleep(0.03)
    later = c.due(now_s=101.4)
    assert later.stale and later.age_s == pytest.approx(1.4)
    assert not fresh.carried_forward and fresh.age_s == pytest.approx(0.1)


def test_forget_stops_carrying_and_status_reports_the_age():
    c = ResultCarrier(period_s=0.01, stale_after_s=0.5)
    status = PipelineStatus()
    c.annotate(status, now_s=100.0)
    assert status.result_age_s == 0.0 and not status.result_stale
    c.mark(_result(100.0), now_s=100.1)
    c.annotate(status, now_s=100.8)
    assert status.result_age_s == pytest.approx(0.8) and status.result_stale
    c.forget()
    time.sleep(0.02)
    assert c.due(now_s=101.0) is None
    c.annotate(status, now_s=101.0)
    assert status.result_age_s == 0.0 and not status.result_stale


def test_period_zero_never_carries():
    c = ResultCarrier(period_s=0.0, stale_after_s=1.0)
    c.mark(_result(100.0), now_s=100.0)
    time.sleep(0.01)
    assert c.due(now_s=200.0) is None
