"""Time synchronisers: the package's own and the message_filters adapter, through one factory.

Pure tests with real message objects: no rclpy.init, no subscriptions.
"""
import random
import threading

import pytest

pytest.importorskip('sensor_msgs')
from sensor_msgs.msg import CameraInfo, Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from unipixel_ros.ros.sync import (ApproximateTimeSync, ExactTimeSync,  # noqa: E402
                                   MessageFiltersTimeSync, create_time_sync,
                                   message_filters_available, stamp_ns)

IMPLS = [
    'own',
    pytest.param('message_filters', marks=pytest.mark.skipif(
        not message_filters_available(),
        reason='message_filters is not importable (it ships with a ROS install, not on PyPI)')),
]


def header(t_ns: int) -> Header:
    h = Header(frame_id='camera_color_optical_frame')
    h.stamp.sec, h.stamp.nanosec = divmod(int(t_ns), 1_000_000_000)
    return h


def image(t_ns: int) -> Image:
    return Image(header=header(t_ns), height=1, width=1, encoding='mono8', step=1, data=b'\0')


def info(t_ns: int) -> CameraInfo:
    return CameraInfo(header=header(t_ns), height=1, width=1)


def ms(x: float) -> int:
    return round(x * 1e6)


class Recorder:
    def __init__(self):
        self.sets = []

    def __call__(self, *msgs):
        self.sets.append(msgs)

    def stamps(self):
        return [tuple(stamp_ns(m) for m in s) for s in self.sets]


def make(impl, exact, n=2, queue_size=10, slop_s=0.05):
    rec = Recorder()
    sync = create_time_sync(exact, n, queue_size, slop_s, rec,
                            prefer_message_filters=impl == 'message_filters')
    expected = (MessageFiltersTimeSync if impl == 'message_filters'
                else ExactTimeSync if exact else ApproximateTimeSync)
    assert type(sync) is expected
    return sync, rec


def test_stamp_ns():
    assert stamp_ns(image(12_345_678_901)) == 12_345_678_901


@pytest.mark.parametrize('impl', IMPLS)
def test_exact_match_needs_identical_stamps(impl):
    sync, rec = make(impl, exact=True)
    sync.add(0, image(ms(100)))
    sync.add(1, image(ms(100) + 1))  # 1 ns off: no set
    assert rec.sets == []
    sync.add(1, image(ms(100)))
    assert rec.stamps() == [(ms(100), ms(100))]
    assert sync.emitted == 1


@pytest.mark.parametrize('impl', IMPLS)
def test_approximate_match_within_slop(impl):
    sync, rec = make(impl, exact=False, slop_s=0.05)
    for t in (0, 1000):  # the second pair settles the first for the own policy
        sync.add(0, image(ms(t)))
        sync.add(1, image(ms(t + 30)))
    assert rec.stamps()[0] == (ms(0), ms(30))
    assert sync.emitted >= 1


@pytest.mark.parametrize('impl', IMPLS)
def test_no_match_beyond_slop(impl):
    sync, rec = make(impl, exact=False, slop_s=0.05)
    for t in range(0, 5000, 1000):
        sync.add(0, image(ms(t)))
        sync.add(1, image(ms(t + 60)))
    assert rec.sets == [] and sync.emitted == 0


@pytest.mark.parametrize('exact', [False, True])
@pytest.mark.parametrize('impl', IMPLS)
def test_queues_stay_bounded(impl, exact):
    sync, rec = make(impl, exact, queue_size=10, slop_s=0.05)
    for k in range(10000):
        sync.add(0, image(ms(k * 1000)))
    assert sync.queue_lengths() == [10, 0]
    assert sync.dropped_overflow == 10000 - 10
    for k in range(10000):  # both inputs busy, never within slop of each other
        sync.add(1, image(ms(k * 1000 + 500)))
    assert max(sync.queue_lengths()) <= 10
    assert rec.sets == []


@pytest.mark.parametrize('exact', [False, True])
@pytest.mark.parametrize('impl', IMPLS)
def test_out_of_order_stamps_are_dropped_and_counted(impl, exact):
    sync, rec = make(impl, exact, slop_s=0.01)
    for t in (0, 100, 200):
        sync.add(0, image(ms(t)))
        sync.add(1, image(ms(t)))
    assert rec.stamps() == [(ms(t), ms(t)) for t in (0, 100, 200)]
    sync.add(0, image(ms(150)))  # older than the last emitted set
    sync.add(1, image(ms(200)))  # the stamp input 1 already delivered
    assert sync.dropped_old == 2
    assert sync.queue_lengths() == [0, 0]
    sync.add(0, image(ms(300)))
    sync.add(1, image(ms(300)))
    assert rec.stamps()[-1] == (ms(300), ms(300)) and sync.emitted == 4


def realsense_stream(rate_hz, n_frames, seed, depth_lag_frames=0):
    """(frames, arrivals): per frame (color, depth, info) with the info stamped like the color and
    depth within +-3 ms of it; arrivals in per-frame shuffled order, depth optionally late."""
    rng = random.Random(seed)
    period = 1e9 / rate_hz
    frames, per_frame = [], []
    for k in range(n_frames):
        t = round(1e9 + k * period + rng.uniform(-1e6, 1e6))
        color, depth, cam = image(t), image(t + round(rng.uniform(-3e6, 3e6))), info(t)
        frames.append((color, depth, cam))
        per_frame.append([(0, color), (2, cam)] + ([] if depth_lag_frames else [(1, depth)]))
        rng.shuffle(per_frame[-1])
    if depth_lag_frames:
        for k, (_, depth, _) in enumerate(frames):
            per_frame[min(k + depth_lag_frames, n_frames - 1)].append((1, depth))
    return frames, [item for chunk in per_frame for item in chunk]


@pytest.mark.parametrize('rate_hz,depth_lag', [(30, 0), (15, 0), (30, 1)])
@pytest.mark.parametrize('impl', IMPLS)
def test_realsense_jitter_matches_every_frame_once(impl, rate_hz, depth_lag):
    sync, rec = make(impl, exact=False, n=3, queue_size=10, slop_s=0.01)
    frames, arrivals = realsense_stream(rate_hz, 200, seed=rate_hz + depth_lag,
                                        depth_lag_frames=depth_lag)
    for index, msg in arrivals:
        sync.add(index, msg)
    # The own policy may hold the last set until it is sure no closer message can come.
    emitted = [tuple(id(m) for m in s) for s in rec.sets]
    expected = [tuple(id(m) for m in f) for f in frames]
    assert emitted in (expected, expected[:-1])
    assert sync.dropped_old == sync.dropped_overflow == sync.dropped_unmatched == 0


def test_own_policy_waits_for_the_closer_partner():
    """A slop above half the period must not pair a depth with the previous color frame."""
    sync, rec = make('own', exact=False, slop_s=0.05)
    for k in range(3):  # 30 Hz color and depth, identical stamps: learns the stamp gaps
        sync.add(0, image(ms(k * 33)))
        sync.add(1, image(ms(k * 33)))
    sync.add(1, image(ms(3 * 33 + 2)))  # depth first, the previous color is 35 ms older
    assert len(rec.sets) == 3
    sync.add(0, image(ms(3 * 33)))
    assert rec.stamps()[-1] == (ms(99), ms(101))
    assert sync.dropped_unmatched == 0


@pytest.mark.parametrize('impl', IMPLS)
def test_concurrent_adds_from_one_thread_per_input(impl):
    sync, rec = make(impl, exact=False, n=3, queue_size=400, slop_s=0.01)
    frames, _ = realsense_stream(30, 300, seed=7)
    threads = [threading.Thread(target=lambda i=i: [sync.add(i, f[i]) for f in frames])
               for i in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    index = {id(m): k for k, f in enumerate(frames) for m in f}
    ks = [[index[id(m)] for m in s] for s in rec.sets]
    assert all(len(set(k)) == 1 for k in ks)  # every set is one frame
    assert [k[0] for k in ks] == sorted({k[0] for k in ks})  # in order, each at most once
    assert sync.emitted >= len(frames) - 1  # the own policy may hold the last set


def test_invalid_arguments():
    with pytest.raises(ValueError, match='at least 2 inputs'):
        ApproximateTimeSync(1, 10, 0.05, print)
    with pytest.raises(ValueError, match='queue_size'):
        ExactTimeSync(2, 0, print)
    with pytest.raises(ValueError, match='slop_s'):
        ApproximateTimeSync(2, 10, -0.1, print)
    with pytest.raises(TypeError, match='callable'):
        ApproximateTimeSync(2, 10, 0.05)
    with pytest.raises(IndexError):
        ExactTimeSync(2, 10, print).add(2, image(0))


# ---- time jumps -----------------------------------------------------------------------------------
@pytest.mark.parametrize('impl', IMPLS)
@pytest.mark.parametrize('exact', [True, False])
def test_reset_starts_a_new_timeline(impl, exact):
    sync, rec = make(impl, exact)
    for t in (1000, 1033, 1066):
        sync.add(0, image(ms(t)))
        sync.add(1, info(ms(t)))
    sync.add(0, image(ms(1100)))          # queued, partner never comes
    emitted = len(rec.sets)
    assert emitted >= 2 and sync.last_emitted_ns(0) >= ms(1033)
    sync.add(0, image(ms(5)))             # the camera restarted: older than the last set
    assert sync.dropped_old == 1
    sync.reset()
    assert sync.last_emitted_ns(0) is None and sync.queue_lengths() == [0, 0]
    for t in (5, 38, 71, 104):
        sync.add(0, image(ms(t)))
        sync.add(1, info(ms(t)))
    assert rec.stamps()[emitted:][:2] == [(ms(5), ms(5)), (ms(38), ms(38))]
    assert sync.dropped_old == 1          # counters survive the reset


def test_jump_detector_tells_a_restart_from_a_late_message():
    from unipixel_ros.ros.sync import TimeJumpDetector

    d = TimeJumpDetector(2, threshold_s=1.0, confirm_messages=3)
    last = ms(100_000)
    # late or repeated messages: dropped by the synchroniser, never a jump
    assert d.check_message(0, last, last) is None
    assert d.check_message(0, last - ms(900), last) is None
    for _ in range(10):
        assert d.check_message(0, last - ms(500), last) is None
    # one very late message, then the stream goes on: still not a jump
    assert d.check_message(0, last - ms(5000), last) is None
    assert d.check_message(0, last + ms(33), last) is None
    assert d.check_message(0, last - ms(5000), last) is None
    assert d.check_message(0, last - ms(5000), last) is None
    assert d.check_message(0, last + ms(66), last) is None      # accepted: the count restarts
    # a stream that stays behind: the third message in a row confirms the jump
    assert d.check_message(1, ms(33), last) is None
    assert d.check_message(1, ms(66), last) is None
    assert d.check_message(1, ms(99), last) == last - ms(99)
    # nothing emitted yet: nothing to be behind of
    assert d.check_message(1, 0, None) is None


def test_jump_detector_forward_jumps_are_measured_against_the_receive_clock():
    from unipixel_ros.ros.sync import TimeJumpDetector

    d = TimeJumpDetector(3, threshold_s=1.0)
    assert d.check_set(ms(1000), 10.0) is None
    assert d.check_set(ms(1033), 10.033) is None
    # the camera paused for 5 s: stamps and the clock moved together
    assert d.check_set(ms(6033), 15.033) is None
    # one frame stamped an hour ahead
    assert d.check_set(ms(6066 + 3_600_000), 15.066) == ms(3_600_000)
    d.reset()
    assert d.check_set(ms(6099), 15.099) is None


def test_jump_detector_checks_its_arguments():
    from unipixel_ros.ros.sync import TimeJumpDetector

    with pytest.raises(ValueError):
        TimeJumpDetector(3, threshold_s=0.0)
    with pytest.raises(ValueError):
        TimeJumpDetector(3, confirm_messages=0)
