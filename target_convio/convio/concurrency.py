"""How many calls may be in flight: a fixed number, or one found by adaptive concurrency.

Adaptive concurrency is AIMD, as TCP and Vector's adaptive request concurrency do it. A site
queues calls before it refuses them, so the early signal is latency: the limit grows by one
per round trip while calls return as fast as they did at the least load seen, and is cut as
soon as they queue (calls half again as slow), or at once on back pressure (code 1,
HTTP 429 or 5xx, a timeout, a reset). At the start it doubles per round trip instead (TCP's
slow start), until calls begin to queue, so a large site is reached in a few round trips.

A doubled limit is judged a round trip after it took effect, once the queue it makes has
formed, so starting seldom leaps past twice what the site serves (where a small site refuses).

A site may also refuse before its calls slow down. The limit it refused at is remembered, as
CUBIC remembers its last maximum: from three quarters of it the limit grows slowly, and each
refusal while it is remembered halves that pace again, so a site that refuses at a fixed number
is probed ever more rarely. A refusal is forgotten after four times that pace in round trips
(32 to 256), since the site may have room again.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

SLOWER = 1.5  # a window this much slower than the baseline means calls are queueing
RISING = 1.15  # while starting, this much slower ends the doubling
SLACK_SECONDS = 0.002  # below this, a difference in latency is noise, not a queue
QUEUE_CUT = 0.7  # the limit after latency rose, as a share of what it was
PUSHBACK_CUT = 0.5  # the limit after the site pushed back
WINDOW = 4  # calls judged together, at least
WINDOW_PER_ROOT = 2  # and twice the square root of the limit: fewer false alarms
BASELINE_WINDOWS = 400  # the baseline is the fastest of this many recent windows
PROBE_FROM = 0.75  # past this share of the limit the site refused at, the limit grows slowly
PROBE_PACE = 8  # there, one call more per this many round trips; doubled by each refusal
MAX_PROBE_PACE = 64
PROBE_MEMORY = 4  # a refusal is remembered for this many times the pace, in round trips


@dataclass
class _Window:
    """The last few calls that came back, sent since the last cut."""

    since: float  # calls sent before this say nothing of the limit since; inf: not yet
    total: float = 0.0
    samples: int = 0
    full: bool = False  # the limit was reached: more calls were waiting


class ConcurrencyLimit:
    """Calls in flight, at most `limit` at once; `limit` moves only when `adaptive`.

    Every WINDOW calls that come back are judged together, so a process with more calls in
    flight judges more often: when the site starts to queue, the larger share sees it first
    and yields first, which brings processes sharing a site to even shares. Between cuts the
    limit grows by 1/limit per call, one per round trip.
    """

    def __init__(
        self,
        ceiling: int,
        *,
        adaptive: bool = True,
        initial: int = 1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ceiling < 1:
            raise ValueError("the ceiling must be at least 1")
        self.ceiling = ceiling
        self.adaptive = adaptive
        self._limit = float(min(ceiling, max(1, initial)) if adaptive else ceiling)
        self.in_flight = 0
        self._clock = clock
        self._window = _Window(clock())
        self._cut_at = -math.inf  # calls sent before the last cut were sent under a higher limit
        self._doubled_at = -math.inf
        self._refused_at: float | None = None  # the limit the site last refused at
        self._probe_pace = PROBE_PACE
        self._remembered = 0.0  # round trips left before the refusal is forgotten
        self._starting = True  # doubling per round trip, until calls queue or a first cut
        self._window_means: deque[float] = deque(maxlen=BASELINE_WINDOWS)
        self._lock = threading.Lock()
        self._line: deque[threading.Event] = deque()  # calls waiting for a slot, in order

    @property
    def limit(self) -> int:
        return int(self._limit)

    @property
    def baseline(self) -> float | None:
        """Seconds a call takes when nothing queues: the fastest recent window."""
        return min(self._window_means) if self._window_means else None

    def now(self) -> float:
        return self._clock()

    def acquire(self, cancelled: threading.Event | None = None) -> bool:
        """Wait for a free slot, first come first served; False if `cancelled` was set."""
        with self._lock:
            if cancelled is not None and cancelled.is_set():
                return False
            if not self._line and self.in_flight < self.limit:
                self.in_flight += 1
                self._window.full |= self.in_flight >= self.limit
                return True
            self._window.full = True
            turn = threading.Event()
            self._line.append(turn)
        while not turn.wait(0.05 if cancelled is not None else None):
            if cancelled is not None and cancelled.is_set():
                with self._lock:
                    if not turn.is_set():
                        self._line.remove(turn)
                        return False
                break
        if cancelled is not None and cancelled.is_set():
            self.release(None)  # handed a slot after all was cancelled: passed on
            return False
        return True

    def release(
        self,
        started_at: float | None,
        answered_at: float | None = None,
        *,
        pushed_back: bool = False,
    ) -> None:
        """A call that started at `started_at` and was answered at `answered_at` (now, if not
        given) is done; `started_at` None: it was never sent. `pushed_back`: the site refused."""
        with self._lock:
            self.in_flight -= 1
            if self.adaptive and started_at is not None:
                self._observe(started_at, answered_at or self._clock(), pushed_back)
            while self._line and self.in_flight < self.limit:  # the slot goes to the longest wait
                self.in_flight += 1
                self._line.popleft().set()

    def _observe(self, started_at: float, now: float, pushed_back: bool) -> None:
        if pushed_back and started_at >= self._cut_at:
            self._refused(now)
            return
        window = self._window
        if started_at < window.since:
            if window.since == math.inf and started_at >= self._doubled_at:
                window.since = now  # a round trip under the doubled limit: its queue has formed
            return
        window.samples += 1
        window.total += now - started_at
        if window.samples < self._window_size():
            return
        baseline, mean = self.baseline, window.total / window.samples
        self._window_means.append(mean)
        if baseline is not None and mean > baseline * SLOWER + SLACK_SECONDS:
            took, usual = mean * 1000, baseline * 1000
            self._cut(QUEUE_CUT, f"calls queue: {took:.0f} ms, usually {usual:.0f}", now)
            return
        if self._starting and baseline is not None and mean > baseline * RISING + SLACK_SECONDS:
            self._starting = False  # calls begin to queue: from here on, one per round trip
        if window.full and self._starting:
            self._set(self._limit * 2, "latency holds")
            self._window = _Window(math.inf)  # judged from a round trip on
            self._doubled_at = now
            return
        round_trips = window.samples / self._limit
        self._forget(round_trips)
        if window.full:
            self._grow(round_trips)
        self._window = _Window(window.since)

    def _grow(self, round_trips: float) -> None:
        refused_at = self._refused_at
        if refused_at is not None and self._limit >= refused_at * PROBE_FROM:
            round_trips /= self._probe_pace
        self._set(self._limit + round_trips, "latency holds")

    def _refused(self, now: float) -> None:
        if self._refused_at is not None:
            self._probe_pace = min(MAX_PROBE_PACE, self._probe_pace * 2)  # refused again
        self._refused_at = self._limit
        self._remembered = PROBE_MEMORY * self._probe_pace
        self._cut(PUSHBACK_CUT, "the site pushed back", now)

    def _forget(self, round_trips: float) -> None:
        """The site may have room again: a refusal is remembered for so many round trips."""
        self._remembered -= round_trips
        if self._refused_at is not None and self._remembered <= 0:
            self._refused_at, self._probe_pace = None, PROBE_PACE

    def _window_size(self) -> int:
        if self._starting:  # a round trip's worth: the limit doubles once per round trip
            return max(WINDOW, self.limit)
        return max(WINDOW, math.isqrt(self.limit) * WINDOW_PER_ROOT)

    def _cut(self, share: float, why: str, now: float) -> None:
        self._starting = False
        self._set(max(1.0, math.floor(self._limit * share)), why)
        self._window = _Window(now)
        self._cut_at = now

    def _set(self, limit: float, why: str) -> None:
        before = self.limit
        self._limit = min(float(self.ceiling), max(1.0, limit))
        if self.limit != before:
            log.debug("Calls in flight: %d -> %d (%s)", before, self.limit, why)
