"""A size-1 latest-value slot between the executor thread and the inference worker.

Latest-frame-wins: ``put`` never blocks and overwrites an item the worker has not taken yet
(counted as dropped), so no queue can grow between the camera and the model however slow the
model is. No rclpy here: the node owns the threads, this owns only the hand-off.
"""
from __future__ import annotations

import threading
from typing import Generic, Optional, TypeVar

T = TypeVar('T')


class LatestSlot(Generic[T]):
    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._item: Optional[T] = None
        self._closed = False
        self.put_count = 0
        self.dropped = 0

    def put(self, item: T) -> None:
        """Store ``item``, replacing (and counting as dropped) any item not yet taken."""
        with self._cond:
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self.put_count += 1
            self._cond.notify()

    def take(self, timeout: float | None = None) -> Optional[T]:
        """The newest item, waiting up to ``timeout`` s; None on timeout or when closed."""
        with self._cond:
            if self._item is None and not self._closed:
                self._cond.wait(timeout)
            item, self._item = self._item, None
            return item

    def peek(self) -> Optional[T]:
        with self._cond:
            return self._item

    def discard(self) -> None:
        """Drop the item not taken yet, if any (it belongs to a timeline that was left)."""
        with self._cond:
            self._item = None

    def close(self) -> None:
        """Wake a waiting ``take`` for shutdown."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def reopen(self) -> None:
        with self._cond:
            self._closed = False
            self._item = None
