"""A daily budget of API calls: every HTTP request the site receives takes one.

Calls are counted per UTC day in a shared count when one is given (the ledger: every run and
partition sharing it shares the budget), reserved a block at a time so that a call costs no
database write; what a run reserved and did not use is given back when it closes. Without a
shared count, the budget counts this run's calls alone.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)
BLOCK = 20  # calls reserved from the shared count at a time


class BudgetError(Exception):
    """The run must make no more calls; `exit_code` says how it ends."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class BudgetSpentError(BudgetError):
    """The next call would pass max_calls_per_day: the run stops and exits 75 (EX_TEMPFAIL)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, 75)


class SharedCount(Protocol):
    def reserve_calls(self, day: str, wanted: int, budget: int) -> tuple[int, int]:
        """Up to `wanted` of `day`'s calls, counted as made: (granted, counted that day)."""
        ...

    def give_back_calls(self, day: str, unused: int) -> None: ...


class CallBudget:
    """At most `per_day` calls per UTC day; `take()` before each request."""

    def __init__(
        self,
        per_day: int,
        shared: SharedCount | None = None,
        *,
        now: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.timezone.utc),
    ) -> None:
        self.per_day = per_day
        self.made = 0  # by this run
        self._shared = shared
        self._now = now
        self._lock = threading.Lock()
        self._day = ""
        self._reserved = 0  # calls this run may still make before counting again
        self._today = 0  # calls this run made today
        self._counted = 0  # the day's calls by every run, when last counted

    def take(self) -> None:
        """Count one call; BudgetSpentError if the day's budget is spent."""
        with self._lock:
            day = self._now().date().isoformat()
            if day != self._day:
                self._give_back()
                self._day, self._today, self._counted = day, 0, 0
            if not self._reserved:
                try:
                    self._reserve(day)
                except Exception as exc:  # the shared count's own error: it says what failed
                    raise BudgetError(str(exc), 1) from None
            if not self._reserved:
                raise BudgetSpentError(self._spent())
            self._reserved -= 1
            self._today += 1
            self.made += 1

    def close(self) -> None:
        """Give back what was reserved and not used (if that fails, they stay counted)."""
        with self._lock:
            try:
                self._give_back()
            except Exception as exc:  # the shared count's own error, whatever its store
                log.warning("%s: %d reserved calls stay counted as made", exc, self._reserved)
                self._reserved = 0

    def _reserve(self, day: str) -> None:
        if self._shared is None:
            self._counted = self._today
            self._reserved = max(0, self.per_day - self._today)
            return
        self._reserved, self._counted = self._shared.reserve_calls(day, BLOCK, self.per_day)

    def _give_back(self) -> None:
        if self._shared is not None and self._reserved:
            self._shared.give_back_calls(self._day, self._reserved)
        self._reserved = 0

    def _spent(self) -> str:
        tomorrow = self._now().date() + dt.timedelta(days=1)
        whose = (
            f"{self._counted:,} calls to this site today (UTC), {self._today:,} of them by this run"
            if self._shared is not None
            else f"{self._today:,} calls by this run today (UTC; without a ledger, other runs' "
            "calls are not counted)"
        )
        return (
            f"the daily call budget is spent: max_calls_per_day={self.per_day:,}, {whose}; "
            f"it renews at {tomorrow.isoformat()}T00:00:00Z"
        )
