"""Time synchronisation of N message streams by ``header.stamp`` (message_filters semantics).

The synchronisers here never subscribe: the node keeps its own subscriptions (QoS chosen by the
node) and feeds every received message to ``add(index, msg)``, where ``index`` is the input's
position in the callback's argument list. A matched set calls ``callback(msg_0, ..., msg_{N-1})``.

``create_time_sync`` returns a message_filters-backed adapter where ``message_filters`` is
importable (a ROS install) and the package's own ``ApproximateTimeSync`` / ``ExactTimeSync``
otherwise; both have the same interface and counters:

* ``emitted``: sets passed to the callback;
* ``dropped_old``: messages not newer than the message their input contributed to the last
  emitted set (out-of-order or repeated stamps), or repeating a stamp already queued for that
  input (the newer message replaces the queued one, as in message_filters);
* ``dropped_overflow``: messages evicted, oldest first, because an input held more than
  ``queue_size`` unmatched messages;
* ``dropped_unmatched``: queued messages discarded because a set newer than them was emitted
  (their partners never came). message_filters keeps those until they overflow, so with the
  adapter this counter stays 0 and they are counted in ``dropped_overflow`` instead.

The callback runs under the synchroniser's lock (as in message_filters), so sets reach it in
order: keep it short (hand the set to the latest-frame slot) and never call ``add`` from it.
"""
from __future__ import annotations

import threading
from bisect import bisect_left
from collections import deque
from typing import Any, Callable, List, Optional, Sequence

SyncCallback = Callable[..., None]

# Gaps remembered per input to bound how soon its next message can be stamped.
_GAP_HISTORY = 8


def stamp_ns(msg: Any) -> int:
    """``msg.header.stamp`` (sec, nanosec) as integer nanoseconds."""
    stamp = msg.header.stamp
    return int(stamp.sec) * 1_000_000_000 + int(stamp.nanosec)


def _check_args(n_inputs: int, queue_size: int, callback: SyncCallback) -> None:
    if n_inputs < 2:
        raise ValueError(f'a time synchroniser needs at least 2 inputs, got {n_inputs}')
    if queue_size < 1:
        raise ValueError(f'queue_size must be >= 1, got {queue_size}')
    if not callable(callback):
        raise TypeError(f'callback must be callable, got {callback!r}')


class _TimeSyncBase:
    """Bounded, stamp-sorted queues per input, counters and lock shared by both policies."""

    def __init__(self, n_inputs: int, queue_size: int, callback: SyncCallback) -> None:
        _check_args(n_inputs, queue_size, callback)
        self.n_inputs = n_inputs
        self.queue_size = queue_size
        self._callback = callback
        self._lock = threading.Lock()
        self._stamps: List[List[int]] = [[] for _ in range(n_inputs)]
        self._msgs: List[List[Any]] = [[] for _ in range(n_inputs)]
        self._last_emitted: List[Optional[int]] = [None] * n_inputs
        self.emitted = 0
        self.dropped_old = 0
        self.dropped_overflow = 0
        self.dropped_unmatched = 0

    def add(self, index: int, msg: Any) -> None:
        """Queue ``msg`` (any message with ``header.stamp``) on input ``index`` and emit the sets
        that are now complete."""
        if not 0 <= index < self.n_inputs:
            raise IndexError(f'input index {index} out of range for {self.n_inputs} inputs')
        t = stamp_ns(msg)
        with self._lock:
            last = self._last_emitted[index]
            if last is not None and t <= last:
                self.dropped_old += 1
                return
            stamps, msgs = self._stamps[index], self._msgs[index]
            pos = bisect_left(stamps, t)
            if pos < len(stamps) and stamps[pos] == t:
                msgs[pos] = msg
                self.dropped_old += 1
                return
            stamps.insert(pos, t)
            msgs.insert(pos, msg)
            if len(stamps) > self.queue_size:
                del stamps[0], msgs[0]
                self.dropped_overflow += 1
            self._on_queued(index, t)
            self._match()

    def queue_lengths(self) -> List[int]:
        """Messages waiting for partners, per input."""
        with self._lock:
            return [len(s) for s in self._stamps]

    def last_emitted_ns(self, index: int) -> Optional[int]:
        """Stamp (ns) of input ``index``'s member of the last emitted set; None before any."""
        return self._last_emitted[index]

    def reset(self) -> None:
        """Forget queued messages and the last emitted stamps (a time jump): the next messages
        start a new timeline. The counters are kept."""
        with self._lock:
            for i in range(self.n_inputs):
                self._stamps[i].clear()
                self._msgs[i].clear()
                self._last_emitted[i] = None
            self._on_reset()

    def _on_reset(self) -> None:
        """Hook run (under the lock) by :meth:`reset`."""

    def _on_queued(self, index: int, t: int) -> None:
        """Hook run (under the lock) after a message with stamp ``t`` ns joined input ``index``."""

    def _match(self) -> None:
        raise NotImplementedError

    def _emit(self, positions: Sequence[int]) -> None:
        """Emit the set made of queue entry ``positions[i]`` of every input i; drop older ones."""
        out = [self._msgs[i][p] for i, p in enumerate(positions)]
        for i, p in enumerate(positions):
            self._last_emitted[i] = self._stamps[i][p]
            self.dropped_unmatched += p
            del self._stamps[i][:p + 1], self._msgs[i][:p + 1]
        self.emitted += 1
        self._callback(*out)


class ExactTimeSync(_TimeSyncBase):
    """Emits a set when every input holds a message with the same stamp (message_filters'
    ``TimeSynchronizer`` / depth_image_proc ``exact_sync``).

    Args:
        n_inputs: number of inputs (>= 2).
        queue_size: unmatched messages kept per input; the oldest is evicted beyond it.
        callback: called as ``callback(msg_0, ..., msg_{n_inputs - 1})``.
    """

    def __init__(self, n_inputs: int, queue_size: int = 10,
                 callback: Optional[SyncCallback] = None) -> None:
        super().__init__(n_inputs, queue_size, callback)

    def _match(self) -> None:
        common = set(self._stamps[0]).intersection(*self._stamps[1:])
        for t in sorted(common):
            self._emit([bisect_left(s, t) for s in self._stamps])


class ApproximateTimeSync(_TimeSyncBase):
    """Emits the tightest set of one message per input whose stamp spread is <= ``slop_s``.

    Algorithm, run after every queued message (stamps in integer nanoseconds):

    1. Candidate: over all sets taking one queued message per input, the one with the smallest
       spread ``max(stamps) - min(stamps)`` <= ``slop_s`` (earliest on ties), found by the
       smallest-range sweep over the sorted queues, O(queued messages * n_inputs). None: wait.
    2. Sets leave in time order and never cross: while a set within slop can be made of messages
       all older than the candidate's (one per input, again the tightest), it becomes the
       candidate.
    3. Wait while a future message could still tighten the candidate. Stamps are assumed
       non-decreasing per input, and the next stamp of input j is at least
       ``E_j = latest_j + L_j``, with ``latest_j`` its newest stamp and ``L_j`` half the
       smallest of its last 8 stamp gaps (0 until two messages were seen; the half tolerates
       jitter). Replacing the candidate's member from input j by a future message cannot shrink
       the spread if ``latest_j >= max`` (that message would be no better than ``latest_j``,
       already considered) or ``E_j >= max + (min_without_j - min)``.
    4. Otherwise emit it and discard every queued message older than it (``dropped_unmatched``).
       Repeat while sets remain.

    How this relates to message_filters:

    * The C++ ``ApproximateTime`` policy likewise emits, in time order, the set of smallest
      spread once no future message can improve it, but searches around a pivot (the newest of
      the queue heads), takes the inter-message lower bounds ``L_j`` from the user instead of
      estimating them, and has no slop (its ``max_interval_duration`` plays that role). Its
      optimality guarantee also covers sets mixing several future messages; step 3 here only
      rules out single replacements, which is what matters for streams of similar rates.
    * rclpy's ``ApproximateTimeSynchronizer`` emits at once, when a new message completes a
      set within slop with the queued messages closest to it, and keeps older unmatched
      messages until they overflow. With a slop above half the frame period it can pair a
      message with its partner's previous frame; step 3 waits for the right one instead, at
      the cost of up to one frame of latency while ``L_j`` is unknown (the first two messages
      of an input) or when a partner's stamp is ahead of it by more than ``L_j``.

    Args:
        n_inputs: number of inputs (>= 2).
        queue_size: unmatched messages kept per input; the oldest is evicted beyond it.
        slop_s: largest accepted stamp spread of a set, seconds (>= 0).
        callback: called as ``callback(msg_0, ..., msg_{n_inputs - 1})``.
    """

    def __init__(self, n_inputs: int, queue_size: int = 10, slop_s: float = 0.05,
                 callback: Optional[SyncCallback] = None) -> None:
        if not slop_s >= 0:
            raise ValueError(f'slop_s must be >= 0, got {slop_s}')
        super().__init__(n_inputs, queue_size, callback)
        self.slop_s = float(slop_s)
        self._slop_ns = round(slop_s * 1e9)
        self._latest: List[Optional[int]] = [None] * n_inputs
        self._gaps = [deque(maxlen=_GAP_HISTORY) for _ in range(n_inputs)]

    def _on_reset(self) -> None:
        self._latest = [None] * self.n_inputs
        for gaps in self._gaps:
            gaps.clear()

    def _on_queued(self, index: int, t: int) -> None:
        latest = self._latest[index]
        if latest is None or t > latest:
            if latest is not None:
                self._gaps[index].append(t - latest)
            self._latest[index] = t

    def _match(self) -> None:
        while all(self._stamps):
            positions = self._tightest_set([len(s) for s in self._stamps])
            if positions is None:
                return
            # Sets leave in time order: a set within slop wholly in front of it goes first.
            earlier = self._tightest_set(positions)
            while earlier is not None:
                positions, earlier = earlier, self._tightest_set(earlier)
            if not self._settled([self._stamps[i][p] for i, p in enumerate(positions)]):
                return
            self._emit(positions)

    def _tightest_set(self, limits: Sequence[int]) -> Optional[List[int]]:
        """Queue positions, one per input and each below ``limits[i]``, of the set with the
        smallest stamp spread; None if there is no such set within slop."""
        if not all(limits):
            return None
        pos = [0] * self.n_inputs
        best, best_spread = None, self._slop_ns
        while True:
            heads = [self._stamps[i][p] for i, p in enumerate(pos)]
            lo = min(heads)
            spread = max(heads) - lo
            if spread < best_spread or (best is None and spread == best_spread):
                best, best_spread = list(pos), spread
            # Only advancing the input holding the minimum can shrink the spread.
            i = heads.index(lo)
            if pos[i] + 1 == limits[i]:
                return best
            pos[i] += 1

    def _settled(self, chosen: Sequence[int]) -> bool:
        hi, lo = max(chosen), min(chosen)
        for j, t_j in enumerate(chosen):
            latest = self._latest[j]
            if latest >= hi:
                continue
            gaps = self._gaps[j]
            earliest_next = latest + (min(gaps) // 2 if gaps else 0)
            lo_without_j = min(t for k, t in enumerate(chosen) if k != j)
            if earliest_next < hi + (lo_without_j - lo):
                return False
        return True


class MessageFiltersTimeSync:
    """The same interface and counters, backed by message_filters' ``ApproximateTimeSynchronizer``
    (``exact=False``) or ``TimeSynchronizer`` (``exact=True``).

    Each input is a bare ``message_filters.SimpleFilter``; ``add`` calls its ``signalMessage``.
    Messages not newer than their input's member of the last emitted set are dropped here
    (``dropped_old``) before reaching message_filters, so both implementations agree on them.
    The counters and ``queue_lengths`` read the synchroniser's ``queues`` (one dict
    ``{stamp_ns: msg}`` per input), which every rclpy message_filters release has.

    Raises:
        ImportError: message_filters is not importable.
    """

    def __init__(self, exact: bool, n_inputs: int, queue_size: int = 10, slop_s: float = 0.05,
                 callback: Optional[SyncCallback] = None) -> None:
        import message_filters

        _check_args(n_inputs, queue_size, callback)
        self.n_inputs = n_inputs
        self.queue_size = queue_size
        self._callback = callback
        self._lock = threading.Lock()
        self._inputs = [message_filters.SimpleFilter() for _ in range(n_inputs)]
        if exact:
            self._sync = message_filters.TimeSynchronizer(self._inputs, queue_size)
        else:
            if not slop_s >= 0:
                raise ValueError(f'slop_s must be >= 0, got {slop_s}')
            self._sync = message_filters.ApproximateTimeSynchronizer(
                self._inputs, queue_size, slop_s)
        self._sync.registerCallback(self._on_set)
        self._last_emitted: List[Optional[int]] = [None] * n_inputs
        self.emitted = 0
        self.dropped_old = 0
        self.dropped_overflow = 0
        self.dropped_unmatched = 0

    def add(self, index: int, msg: Any) -> None:
        """Queue ``msg`` on input ``index``; message_filters calls back with complete sets."""
        if not 0 <= index < self.n_inputs:
            raise IndexError(f'input index {index} out of range for {self.n_inputs} inputs')
        t = stamp_ns(msg)
        with self._lock:
            last = self._last_emitted[index]
            if last is not None and t <= last:
                self.dropped_old += 1
                return
            queue = self._sync.queues[index]
            if t in queue:
                self.dropped_old += 1
            elif len(queue) >= self.queue_size:
                self.dropped_overflow += 1
            self._inputs[index].signalMessage(msg)

    def queue_lengths(self) -> List[int]:
        """Messages waiting for partners, per input."""
        with self._lock:
            return [len(q) for q in self._sync.queues]

    def last_emitted_ns(self, index: int) -> Optional[int]:
        """Stamp (ns) of input ``index``'s member of the last emitted set; None before any."""
        return self._last_emitted[index]

    def reset(self) -> None:
        """Forget queued messages and the last emitted stamps (a time jump); counters kept."""
        with self._lock:
            for queue in self._sync.queues:
                queue.clear()
            self._last_emitted = [None] * self.n_inputs

    def _on_set(self, *msgs: Any) -> None:
        for i, m in enumerate(msgs):
            self._last_emitted[i] = stamp_ns(m)
        self.emitted += 1
        self._callback(*msgs)


class TimeJumpDetector:
    """Tells a time jump of the camera stamps from a late or repeated message.

    Cameras, bag players and simulators restart their clocks: a driver reset or a simulator
    restart starts the stamps again near zero, a looping bag jumps back to its start, an NTP step
    moves the system clock. A synchroniser that only accepts newer stamps then drops every later
    message for good. The rules, per input (stamps in integer nanoseconds):

    * backwards: a message more than ``threshold_s`` older than the input's member of the last
      synchronised set is *behind*; ``confirm_messages`` behind messages in a row are a jump
      back (a stream that stays behind). One late or repeated message is only dropped, and any
      accepted message clears the count;
    * forwards: the colour stamps of two consecutive synchronised sets advance more than
      ``threshold_s`` beyond the time that passed between receiving them (a jump ahead of the
      clock, e.g. one frame stamped an hour ahead). A pause of the camera is not one: its stamps
      and the receive clock advance together.

    A jump ahead is always followed, if it was a glitch, by a jump back once the stream resumes
    its own time, so both directions recover.

    Args:
        n_inputs: number of synchronised inputs.
        threshold_s: smallest jump, seconds (> 0).
        confirm_messages: behind messages in a row that make a jump back (>= 1).
    """

    def __init__(self, n_inputs: int, threshold_s: float = 1.0, confirm_messages: int = 3) -> None:
        if not threshold_s > 0:
            raise ValueError(f'threshold_s must be > 0, got {threshold_s}')
        if int(confirm_messages) != confirm_messages or confirm_messages < 1:
            raise ValueError(f'confirm_messages must be an integer >= 1, got {confirm_messages}')
        self.threshold_ns = round(threshold_s * 1e9)
        self.confirm_messages = int(confirm_messages)
        self._behind = [0] * n_inputs
        self._last_set: Optional[tuple] = None       # (stamp ns, receive time s)

    def reset(self) -> None:
        """Start over (after a jump was handled, or on activation)."""
        self._behind = [0] * len(self._behind)
        self._last_set = None

    def check_message(self, index: int, stamp: int, last_emitted: Optional[int]) -> Optional[int]:
        """One received message of input ``index``, before it reaches the synchroniser.

        Args:
            stamp: its stamp, ns.
            last_emitted: the synchroniser's last emitted stamp of this input, ns (None: none).

        Returns:
            How far back the stamps jumped, ns (> 0), when this message confirms a jump back;
            None otherwise (the message is new, or merely late).
        """
        if last_emitted is None or stamp > last_emitted:
            self._behind[index] = 0
            return None
        if last_emitted - stamp <= self.threshold_ns:
            return None
        self._behind[index] += 1
        if self._behind[index] < self.confirm_messages:
            return None
        return last_emitted - stamp

    def check_set(self, stamp: int, received_s: float) -> Optional[int]:
        """One synchronised set: its colour ``stamp`` (ns) and monotonic receive time (s).

        Returns:
            How far the stamps ran ahead of the receive clock since the previous set, ns, when
            that is more than the threshold; None otherwise.
        """
        last, self._last_set = self._last_set, (stamp, received_s)
        if last is None:
            return None
        ahead = (stamp - last[0]) - round((received_s - last[1]) * 1e9)
        return ahead if ahead > self.threshold_ns else None


def message_filters_available() -> bool:
    """Whether ``message_filters`` (ROS install only, not on PyPI) can be imported."""
    try:
        import message_filters  # noqa: F401
    except ImportError:
        return False
    return True


def create_time_sync(exact: bool, n_inputs: int, queue_size: int, slop_s: float,
                     callback: SyncCallback, prefer_message_filters: bool = True):
    """A synchroniser with ``add(index, msg)``, ``queue_lengths()`` and the counters.

    Args:
        exact: identical stamps only (the ``exact_sync`` parameter of depth_image_proc);
            ``slop_s`` is then ignored.
        n_inputs: number of inputs (>= 2), e.g. 3 for color, depth, camera_info.
        queue_size: unmatched messages kept per input (the ``queue_size`` parameter).
        slop_s: largest accepted stamp spread of an approximate set, seconds.
        callback: called as ``callback(msg_0, ..., msg_{n_inputs - 1})`` under the lock.
        prefer_message_filters: use message_filters when importable.

    Returns:
        ``MessageFiltersTimeSync`` when preferred and importable, else ``ExactTimeSync`` or
        ``ApproximateTimeSync``.
    """
    if prefer_message_filters and message_filters_available():
        return MessageFiltersTimeSync(exact, n_inputs, queue_size, slop_s, callback)
    if exact:
        return ExactTimeSync(n_inputs, queue_size, callback)
    return ApproximateTimeSync(n_inputs, queue_size, slop_s, callback)
