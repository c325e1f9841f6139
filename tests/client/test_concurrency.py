"""Adaptive concurrency: on its own with a scripted clock against a simulated site of finite
capacity, then in the client against the emulator over real HTTP. The limit must find the
site's capacity, hold it, and fall on back pressure."""

from __future__ import annotations

import heapq
import logging
import math
import random
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from target_convio.convio.client import ConvioClient
from target_convio.convio.codes import Kind
from target_convio.convio.concurrency import ConcurrencyLimit
from target_convio.emulator import Emulator, Faults
from tests.conftest import PERSON


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def simulate(
    limiter: ConcurrencyLimit,
    clock: Clock,
    *,
    capacity: int,
    latency: float = 0.040,
    seconds: float = 20.0,
) -> dict[str, float]:
    """Keeps the limiter full against a site that serves `capacity` calls at once (the rest
    queue; past twice that, refused at once), each in `latency` give or take a quarter.
    Returns calls served, calls refused, and the limit's history."""
    jitter = random.Random(7)
    served = refused = 0
    busy_until: list[float] = [0.0] * capacity  # when each of the site's slots frees
    done: list[tuple[float, float, bool]] = []  # (comes back at, started at, refused)
    limits: list[int] = []
    while clock.now < seconds:
        while limiter.in_flight < limiter.limit:
            assert limiter.acquire()
            start = clock.now
            if len(done) >= 2 * capacity:
                heapq.heappush(done, (start + 0.001, start, True))
                continue
            slot = min(range(capacity), key=busy_until.__getitem__)
            begins = max(start, busy_until[slot])
            busy_until[slot] = begins + latency * jitter.uniform(0.75, 1.25)
            heapq.heappush(done, (busy_until[slot], start, False))
        back_at, started, was_refused = heapq.heappop(done)
        clock.now = back_at
        limiter.release(started, pushed_back=was_refused)
        refused += was_refused
        served += not was_refused
        limits.append(limiter.limit)
    return {"served": served, "refused": refused, "limits": limits}  # type: ignore[dict-item]


@pytest.mark.parametrize("capacity", [3, 8, 24])
def test_the_limit_rises_to_the_sites_capacity_and_stays_below_refusals(capacity: int) -> None:
    clock = Clock()
    limiter = ConcurrencyLimit(64, clock=clock)
    result = simulate(limiter, clock, capacity=capacity)
    settled = sorted(result["limits"][len(result["limits"]) // 2 :])
    assert settled[len(settled) // 2] >= capacity  # mostly at what it serves at once or more
    assert settled[-1] <= 2 * capacity  # and never past twice it, where it refuses
    best = 20.0 / 0.040 * capacity
    assert result["served"] >= 0.9 * best
    assert result["refused"] <= 0.01 * result["served"]


@pytest.mark.parametrize("capacity", [3, 8, 24])
def test_starting_it_never_passes_twice_the_capacity(capacity: int) -> None:
    clock = Clock()
    limiter = ConcurrencyLimit(64, clock=clock)
    result = simulate(limiter, clock, capacity=capacity, seconds=2.0)
    assert max(result["limits"]) <= 2 * capacity  # a doubling is judged once calls queue
    assert result["refused"] == 0


def refusing(
    limiter: ConcurrencyLimit,
    clock: Clock,
    *,
    refuses_past: int,
    seconds: float = 30.0,
    room_from: float = math.inf,
) -> tuple[int, int]:
    """Keeps the limiter full against a site that answers every call in 40 ms give or take a
    quarter, however many, but refuses at once past `refuses_past` in flight (until
    `room_from`): it never slows first. Returns calls served and calls refused."""
    jitter = random.Random(7)
    served = refused = 0
    done: list[tuple[float, float, bool]] = []
    while clock.now < seconds:
        while limiter.in_flight < limiter.limit:
            assert limiter.acquire()
            start = clock.now
            over = len(done) >= refuses_past and start < room_from
            back_at = start + (0.001 if over else 0.040 * jitter.uniform(0.75, 1.25))
            heapq.heappush(done, (back_at, start, over))
        back_at, started, was_refused = heapq.heappop(done)
        clock.now = back_at
        limiter.release(started, pushed_back=was_refused)
        refused += was_refused
        served += not was_refused
    return served, refused


@pytest.mark.parametrize("refuses_past", [6, 16])
def test_a_site_that_refuses_before_it_slows_is_probed_ever_more_rarely(refuses_past) -> None:
    clock = Clock()
    limiter = ConcurrencyLimit(64, clock=clock)
    served, refused = refusing(limiter, clock, refuses_past=refuses_past)
    assert refused <= 0.005 * served  # not once every few round trips
    assert served >= 0.8 * 30.0 / 0.040 * refuses_past  # and close to what it allows


def test_a_refusal_is_forgotten_once_the_site_has_room() -> None:
    clock = Clock()
    limiter = ConcurrencyLimit(64, clock=clock)
    refusing(limiter, clock, refuses_past=6, seconds=20.0, room_from=10.0)
    assert limiter.limit == 64  # ten seconds on, the ceiling again


@pytest.mark.parametrize(
    ("round_trips", "limit"),
    [(0, 1), (5, 2), (12, 16), (18, 64)],  # four calls judged, then doubled: never a jump
)
def test_it_starts_at_one_call_and_doubles_while_nothing_queues(round_trips, limit) -> None:
    clock = Clock()
    limiter = ConcurrencyLimit(64, clock=clock)
    simulate(limiter, clock, capacity=1000, seconds=0.040 * round_trips)
    assert limiter.limit == limit  # each doubling judged a round trip after it took effect


def test_back_pressure_halves_the_limit_once_per_burst() -> None:
    clock = Clock()
    limiter = ConcurrencyLimit(64, initial=40, clock=clock)
    starts = []
    for _ in range(40):
        assert limiter.acquire()
        starts.append(clock.now)
    clock.now = 0.01
    for started in starts:  # a burst of refusals for calls sent under the old limit
        limiter.release(started, pushed_back=True)
    assert limiter.limit == 20


def test_a_fixed_limit_never_moves() -> None:
    clock = Clock()
    limiter = ConcurrencyLimit(16, adaptive=False, clock=clock)
    result = simulate(limiter, clock, capacity=4, seconds=2.0)
    assert set(result["limits"]) == {16}
    assert result["refused"] > 0  # 16 against a site refusing past 8


@pytest.mark.parametrize("seed", [7, 8, 9, 10, 11])
def test_two_clients_of_one_site_converge_to_even_shares(seed: int) -> None:
    clock = Clock()
    first, second = ConcurrencyLimit(64, clock=clock), ConcurrencyLimit(64, clock=clock)
    capacity, latency = 8, 0.040
    jitter = random.Random(seed)
    busy_until = [0.0] * capacity
    done: list[tuple[float, int, float, bool]] = []
    served = [0, 0]
    refused = 0
    limiters = (first, second)
    while clock.now < 60.0:
        for who, limiter in enumerate(limiters):
            while limiter.in_flight < limiter.limit:
                assert limiter.acquire()
                start = clock.now
                if len(done) >= 2 * capacity:
                    heapq.heappush(done, (start + 0.001, who, start, True))
                    continue
                slot = min(range(capacity), key=busy_until.__getitem__)
                begins = max(start, busy_until[slot])
                busy_until[slot] = begins + latency * jitter.uniform(0.75, 1.25)
                heapq.heappush(done, (busy_until[slot], who, start, False))
        back_at, who, started, was_refused = heapq.heappop(done)
        clock.now = back_at
        limiters[who].release(started, pushed_back=was_refused)
        refused += was_refused
        if clock.now > 10.0:  # after they found their shares
            served[who] += not was_refused
    assert min(served) >= 0.75 * max(served)
    assert refused <= 0.02 * sum(served)
    assert sum(served) >= 0.9 * 50.0 / latency * capacity


def test_every_change_is_logged_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    clock = Clock()
    limiter = ConcurrencyLimit(4, clock=clock)
    with caplog.at_level(logging.DEBUG, logger="target_convio.convio.concurrency"):
        simulate(limiter, clock, capacity=100, seconds=1.0)
    assert re.search(r"Calls in flight: 1 -> \d \(latency holds\)", caplog.text)
    assert limiter.limit == 4  # the ceiling holds


def test_a_waiting_call_gives_up_when_cancelled() -> None:
    limiter = ConcurrencyLimit(1, adaptive=False)
    assert limiter.acquire()
    cancelled = threading.Event()
    result: list[bool] = []
    waiter = threading.Thread(target=lambda: result.append(limiter.acquire(cancelled)))
    waiter.start()
    cancelled.set()
    waiter.join(2)
    assert result == [False]
    assert limiter.in_flight == 1


def test_waiting_calls_start_in_the_order_they_came() -> None:
    limiter = ConcurrencyLimit(1, adaptive=False)
    assert limiter.acquire()
    order: list[int] = []
    waiters = []
    for i in range(5):
        waiter = threading.Thread(target=lambda i=i: (limiter.acquire(), order.append(i)))
        waiter.start()
        waiters.append(waiter)
        while len(limiter._line) <= i:
            time.sleep(0.001)
    for released in range(1, 6):
        limiter.release(None)
        while len(order) < released:
            time.sleep(0.001)
    for waiter in waiters:
        waiter.join(2)
    assert order == [0, 1, 2, 3, 4]


# -- over real HTTP, against the emulator's site of finite capacity ------------------------


def load(client: ConvioClient, calls: int, threads: int) -> list[Kind]:
    def one(i: int) -> Kind:
        return client.create_or_update({"primary_email": f"l{i}@example.org", **PERSON}).kind

    with ThreadPoolExecutor(threads) as pool:
        return list(pool.map(one, range(calls)))


def test_against_the_emulator_the_limit_finds_its_capacity(make_client) -> None:
    with Emulator(faults=Faults(latency_ms=40, capacity=3)) as emulator:
        client = make_client(emulator, max_concurrency=16, max_retries=8)
        kinds = load(client, 300, 16)
        assert set(kinds) == {Kind.OK}
        assert 3 <= client.concurrency.limit <= 6  # refused only past twice the capacity
        refused = emulator.faults_injected.get("over_capacity", 0)
        assert refused <= 3  # at most the odd one while it searched
        assert len(emulator.constituents()) == 300


def test_against_the_emulator_a_fixed_limit_draws_refusals(make_client) -> None:
    with Emulator(faults=Faults(latency_ms=40, capacity=3)) as emulator:
        client = make_client(emulator, max_concurrency=16, adaptive_concurrency=False)
        load(client, 100, 16)
        assert client.concurrency.limit == 16
        assert emulator.faults_injected["over_capacity"] >= 20


def test_against_the_emulator_back_pressure_cuts_the_limit(make_client) -> None:
    with Emulator(faults=Faults(latency_ms=20)) as emulator:
        client = make_client(emulator, max_concurrency=16, max_retries=0)
        load(client, 200, 16)
        grown = client.concurrency.limit
        assert grown >= 8  # nothing queues here: it grew towards the ceiling
        emulator.faults = Faults(latency_ms=20, http_503_rate=1.0)
        load(client, 16, 16)
        assert client.concurrency.limit <= grown // 2


def test_a_call_handed_a_slot_after_the_client_closed_gives_it_up() -> None:
    limiter = ConcurrencyLimit(1, adaptive=False)
    assert limiter.acquire()
    closed = threading.Event()
    result: list[bool] = []
    waiter = threading.Thread(target=lambda: result.append(limiter.acquire(closed)))
    waiter.start()
    while not limiter._line:  # queued
        time.sleep(0.001)
    closed.set()  # the run stops as the call in flight comes back and hands its slot on
    limiter.release(None)
    waiter.join(2)
    assert result == [False]
    assert limiter.in_flight == 0
