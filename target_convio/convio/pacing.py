"""A ceiling on calls per second, shared by every thread of a run."""

from __future__ import annotations

import threading
import time


class Pacer:
    """Hands out evenly spaced start times; `wait()` sleeps until the caller's turn."""

    def __init__(self, per_second: float | None) -> None:
        if per_second is not None and per_second <= 0:
            raise ValueError("max_requests_per_second must be positive")
        self.interval = 1.0 / per_second if per_second else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self, cancelled: threading.Event | None = None) -> None:
        if not self.interval:
            return
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        delay = start - now
        if delay > 0:
            if cancelled is not None:
                cancelled.wait(delay)
            else:
                time.sleep(delay)
