"""The max_failure_rate breaker: stop a run whose recent calls mostly fail."""

from __future__ import annotations

import threading
from collections import deque

WINDOW = 100
MIN_OBSERVED = 20


class FailureBreaker:
    """Trips when `rate` of the last 100 sent records failed (checked from the 20th on)."""

    def __init__(self, rate: float) -> None:
        self.rate = rate
        self._recent: deque[bool] = deque(maxlen=WINDOW)
        self._lock = threading.Lock()

    def observe(self, failed: bool) -> str | None:
        """Record one settled call; the reason to stop when the breaker trips, else None."""
        if self.rate >= 1.0:
            return None
        with self._lock:
            self._recent.append(failed)
            seen, bad = len(self._recent), sum(self._recent)
        if seen >= MIN_OBSERVED and bad >= self.rate * seen:
            return (
                f"{bad} of the last {seen} records sent were rejected or failed, "
                f"at or above max_failure_rate={self.rate:g}"
            )
        return None
