"""Fault injection: latency, Convio code 1, HTTP 5xx, resets, slow answers, a throttle, and
a site of finite capacity."""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, fields

REFUSALS = ("http_503", "code_1")


@dataclass(frozen=True)
class Faults:
    """What can go wrong with each API call; rates are probabilities from 0 to 1."""

    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    error_rate: float = 0.0
    error_code: int = 1
    http_500_rate: float = 0.0
    http_503_rate: float = 0.0
    reset_rate: float = 0.0
    slow_rate: float = 0.0
    slow_ms: float = 0.0
    lost_rate: float = 0.0
    max_rps: float | None = None
    seed: int | None = None
    methods: frozenset[str] | None = None
    # A call carrying one of these values in any parameter answers code `error_code`, every
    # time: one record fails while the others go through.
    fail_values: frozenset[str] = frozenset()
    # A site that serves `capacity` calls at once: the rest queue; past twice that many in
    # flight, the next is refused at once (`capacity_refusal`: HTTP 503 or code 1).
    capacity: int | None = None
    capacity_refusal: str = "http_503"

    def __post_init__(self) -> None:
        for spec in fields(self):
            value = getattr(self, spec.name)
            if spec.name.endswith("_rate") and not 0.0 <= value <= 1.0:
                raise ValueError(f"{spec.name} must be between 0 and 1, not {value}")
            if spec.name.endswith("_ms") and value < 0:
                raise ValueError(f"{spec.name} must not be negative, not {value}")
        if self.max_rps is not None and self.max_rps <= 0:
            raise ValueError(f"max_rps must be positive, not {self.max_rps}")
        if self.capacity is not None and self.capacity < 1:
            raise ValueError(f"capacity must be at least 1, not {self.capacity}")
        if self.capacity_refusal not in REFUSALS:
            raise ValueError(f"capacity_refusal must be one of {', '.join(REFUSALS)}")


class Capacity:
    """Calls served at once by a site of `size`: the rest wait their turn, and past twice
    that many in flight a call is turned away."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.in_flight = 0
        self._slots = threading.Semaphore(size)
        self._lock = threading.Lock()

    @contextmanager
    def serving(self) -> Iterator[bool]:
        """True while this call holds one of the site's slots; False if it is turned away."""
        with self._lock:
            admitted = self.in_flight < 2 * self.size
            self.in_flight += admitted
        if not admitted:
            yield False
            return
        try:
            with self._slots:
                yield True
        finally:
            with self._lock:
                self.in_flight -= 1


@dataclass(frozen=True)
class Decision:
    """What to do with one call: a fault kind (or None) and a delay before answering."""

    kind: str | None = None
    delay_s: float = 0.0
    retry_after_s: int = 0


class FaultInjector:
    """Draws a Decision per call; the same seed gives the same decisions in sequence."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self._random = random.Random(faults.seed)  # noqa: S311 - repeatable, not secret
        self._lock = threading.Lock()
        self._tokens = max(faults.max_rps or 0.0, 1.0)
        self._refilled_at = time.monotonic()
        self.capacity = Capacity(faults.capacity) if faults.capacity else None

    def draw(self, method: str, values: Iterable[str] = ()) -> Decision:
        f = self.faults
        if f.methods is not None and method not in f.methods:
            return Decision()
        if f.fail_values and not f.fail_values.isdisjoint(values):
            return Decision(f"code_{f.error_code}")
        with self._lock:
            if f.max_rps is not None and not self._take_token(f.max_rps):
                wait = (1.0 - self._tokens) / f.max_rps
                return Decision("throttle", retry_after_s=max(1, math.ceil(wait)))
            # A fixed number of draws per call keeps a seeded sequence repeatable.
            reset, http_500, http_503, code_1, jitter, slow = (
                self._random.random() for _ in range(6)
            )
        delay_ms = f.latency_ms + jitter * f.latency_jitter_ms
        if slow < f.slow_rate:
            delay_ms += f.slow_ms
        kind = None
        # Drawn only when asked for, so seeded sequences without it stay as they were.
        if f.lost_rate and self._draw() < f.lost_rate:
            kind = "lost"
        elif reset < f.reset_rate:
            kind = "reset"
        elif http_500 < f.http_500_rate:
            kind = "http_500"
        elif http_503 < f.http_503_rate:
            kind = "http_503"
        elif code_1 < f.error_rate:
            kind = f"code_{f.error_code}"
        return Decision(kind, delay_ms / 1000.0)

    def _draw(self) -> float:
        with self._lock:
            return self._random.random()

    def _take_token(self, rate: float) -> bool:
        now = time.monotonic()
        self._tokens = min(max(rate, 1.0), self._tokens + (now - self._refilled_at) * rate)
        self._refilled_at = now
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            return True
        return False
