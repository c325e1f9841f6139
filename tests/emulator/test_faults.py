"""Fault injection over real HTTP: latency, code 1, HTTP 5xx, resets, slow answers, throttle."""

from __future__ import annotations

import socket
import struct
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from target_convio.emulator import Emulator, Faults
from target_convio.emulator.faults import FaultInjector
from tests.conftest import PERSON, Caller


def outcome(api: Caller, **params: str) -> str:
    """What one createOrUpdate call met: ok, code_1, http_5xx, reset or throttle."""
    try:
        response = api.raw("createOrUpdate", response_format="json", **PERSON, **params)
    except requests.ConnectionError:
        return "reset"
    if response.status_code == 429:
        return "throttle"
    if response.status_code >= 500:
        return f"http_{response.status_code}"
    if response.status_code == 403:
        return "code_" + response.json()["errorResponse"]["code"]
    return "ok"


def test_fixed_latency_delays_every_answer(api: Caller, emulator: Emulator) -> None:
    emulator.faults = Faults(latency_ms=120)
    started = time.monotonic()
    assert api.json("listUserFields")[0] == 200
    assert time.monotonic() - started >= 0.12


def test_latency_jitter_adds_up_to_its_bound(api: Caller, emulator: Emulator) -> None:
    emulator.faults = Faults(latency_ms=10, latency_jitter_ms=40, seed=3)
    for _ in range(5):
        started = time.monotonic()
        api.json("listUserFields")
        assert time.monotonic() - started >= 0.01


def test_code_1_changes_nothing(api: Caller, emulator: Emulator) -> None:
    emulator.faults = Faults(error_rate=1.0)
    code, message = api.error("createOrUpdate", primary_email="a@example.org", **PERSON)
    assert (code, message) == ("1", "Unable to process request.")
    assert emulator.constituents() == []
    assert emulator.faults_injected == {"code_1": 1}


def test_code_1_honours_suppress_response_codes_and_xml(api: Caller, emulator: Emulator) -> None:
    emulator.faults = Faults(error_rate=1.0)
    response = api.raw("createOrUpdate", suppress_response_codes="true", primary_email="a@x.org")
    assert response.status_code == 200
    assert "<code>1</code>" in response.text


@pytest.mark.parametrize(("rate", "status"), [("http_500_rate", 500), ("http_503_rate", 503)])
def test_http_5xx_answers_an_html_page(
    api: Caller, emulator: Emulator, rate: str, status: int
) -> None:
    emulator.faults = Faults(**{rate: 1.0})
    response = api.raw(
        "createOrUpdate", response_format="json", primary_email="a@example.org", **PERSON
    )
    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("text/html")
    assert emulator.constituents() == []
    assert emulator.faults_injected == {f"http_{status}": 1}


def test_reset_drops_the_connection_without_an_answer(api: Caller, emulator: Emulator) -> None:
    emulator.faults = Faults(reset_rate=1.0)
    with pytest.raises(requests.ConnectionError) as caught:
        api.raw("createOrUpdate", primary_email="a@example.org", **PERSON)
    assert "reset" in str(caught.value).lower() or "aborted" in str(caught.value).lower()
    assert emulator.constituents() == []
    emulator.faults = Faults()
    assert api.json("listUserFields")[0] == 200  # the server is still serving


def test_slow_answer_outlasts_a_client_timeout_but_the_write_happens(
    api: Caller, emulator: Emulator
) -> None:
    emulator.faults = Faults(slow_rate=1.0, slow_ms=600)
    data = {
        "method": "createOrUpdate",
        "v": "1.0",
        "api_key": "demo-api-key",
        "login_name": "apiuser",
        "login_password": "apipass",
        "primary_email": "slow@example.org",
        **PERSON,
    }
    with pytest.raises(requests.ReadTimeout):
        api.session.post(emulator.api_url, data=data, timeout=0.2)
    time.sleep(0.5)
    (record,) = emulator.constituents()
    assert record["fields"]["email.primary_address"] == "slow@example.org"


def test_throttle_answers_429_with_retry_after(api: Caller, emulator: Emulator) -> None:
    emulator.faults = Faults(max_rps=5)
    outcomes = [outcome(api, primary_email=f"t{i}@example.org") for i in range(30)]
    assert outcomes[:5] == ["ok"] * 5
    assert outcomes.count("throttle") >= 10
    response = api.raw("listUserFields")
    assert response.status_code == 429
    assert int(response.headers["Retry-After"]) >= 1
    time.sleep(0.5)
    assert api.json("listUserFields")[0] == 200  # tokens come back with time
    assert len(emulator.constituents()) == outcomes.count("ok")


def test_rates_between_zero_and_one_mix_outcomes(api: Caller, emulator: Emulator) -> None:
    emulator.faults = Faults(error_rate=0.3, http_500_rate=0.2, reset_rate=0.1, seed=11)
    seen = [outcome(api, primary_email=f"m{i}@example.org") for i in range(60)]
    assert {"ok", "code_1", "http_500", "reset"} <= set(seen)
    assert len(emulator.constituents()) == seen.count("ok")
    injected = emulator.faults_injected
    assert injected["code_1"] == seen.count("code_1")
    assert injected["reset"] == seen.count("reset")


def test_a_seed_makes_faults_repeatable(make_api) -> None:
    faults = Faults(error_rate=0.3, http_503_rate=0.3, reset_rate=0.2, seed=7)
    runs = []
    for _ in range(2):
        api = make_api(faults=faults)
        runs.append([outcome(api, primary_email=f"r{i}@example.org") for i in range(25)])
    assert runs[0] == runs[1]
    assert len(set(runs[0])) >= 3


def test_faults_can_spare_some_methods(api: Caller, emulator: Emulator) -> None:
    emulator.faults = Faults(error_rate=1.0, methods=frozenset({"createOrUpdate"}))
    assert api.json("listUserFields")[0] == 200
    assert outcome(api, primary_email="a@example.org") == "code_1"
    assert emulator.calls == {"listUserFields": 1, "createOrUpdate": 1}


@pytest.mark.parametrize(
    "bad",
    [
        {"error_rate": 1.5},
        {"reset_rate": -0.1},
        {"latency_ms": -1},
        {"max_rps": 0},
        {"slow_ms": -5},
    ],
)
def test_invalid_faults_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        Faults(**bad)


def test_injector_sequence_depends_only_on_the_seed() -> None:
    faults = Faults(error_rate=0.5, latency_jitter_ms=100, seed=42)
    a, b = FaultInjector(faults), FaultInjector(faults)
    drawn = [a.draw("create") for _ in range(50)]
    assert drawn == [b.draw("create") for _ in range(50)]
    assert {d.kind for d in drawn} == {None, "code_1"}
    assert len({d.delay_s for d in drawn}) > 40


def test_any_error_code_can_be_injected(api: Caller, emulator: Emulator) -> None:
    emulator.faults = Faults(error_rate=1.0, error_code=14)
    code, message = api.error("createOrUpdate", primary_email="a@example.org", **PERSON)
    assert (code, message) == ("14", "The requested method is not allowed by the caller.")
    assert emulator.faults_injected == {"code_14": 1}
    assert emulator.constituents() == []


def test_a_client_that_resets_its_connection_gets_no_traceback_logged(caplog, capfd) -> None:
    with Emulator() as emulator:
        host, port = emulator.server.server_address[:2]
        for _ in range(3):
            connection = socket.create_connection((host, port))
            connection.sendall(b"POST /site/SRConsAPI HTTP/1.1\r\nContent-Length: 100\r\n\r\nab")
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            connection.close()  # a reset, mid-request
        time.sleep(0.2)
        assert emulator.constituents() == []
    assert "Traceback" not in capfd.readouterr().err
    assert [r for r in caplog.records if r.levelname == "ERROR"] == []


def test_a_client_killed_between_two_calls_gets_no_traceback_logged(capfd) -> None:
    """As a target killed with kill -9 leaves a kept-alive connection: reset while the
    emulator waits for the next request line."""
    with Emulator() as emulator:
        host, port = emulator.server.server_address[:2]
        body = b"method=listUserFields&api_key=demo-api-key&v=1.0"
        request = (
            b"POST /site/SRConsAPI HTTP/1.1\r\nHost: x\r\nContent-Type: "
            b"application/x-www-form-urlencoded\r\nContent-Length: %d\r\n\r\n%s"
        ) % (len(body), body)
        for _ in range(3):
            connection = socket.create_connection((host, port))
            connection.sendall(request)
            assert connection.recv(65536)  # answered; the connection stays open
            time.sleep(0.05)
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            connection.close()  # a reset, between requests
        time.sleep(0.2)
    assert "Traceback" not in capfd.readouterr().err


def test_a_fail_value_fails_exactly_the_calls_that_carry_it(
    api: Caller, emulator: Emulator
) -> None:
    emulator.faults = Faults(fail_values=frozenset({"Boston"}))
    assert outcome(api, primary_email="a@example.org", **{"primary_address.city": "Boston"}) == (
        "code_1"
    )
    assert outcome(api, primary_email="b@example.org", **{"primary_address.city": "Austin"}) == "ok"
    assert [c["fields"]["email.primary_address"] for c in emulator.constituents()] == [
        "b@example.org"
    ]


def concurrent_outcomes(emulator: Emulator, calls: int) -> list[tuple[str, float]]:
    """`calls` createOrUpdate calls at once, each on its own connection: outcome, seconds."""

    def one(i: int) -> tuple[str, float]:
        api = Caller(emulator)
        started = time.monotonic()
        found = outcome(api, primary_email=f"c{i}@example.org")
        api.session.close()
        return found, time.monotonic() - started

    with ThreadPoolExecutor(calls) as pool:
        return list(pool.map(one, range(calls)))


def test_a_site_of_finite_capacity_queues_then_refuses_past_twice_its_size(
    emulator: Emulator,
) -> None:
    emulator.faults = Faults(latency_ms=300, capacity=2)
    results = concurrent_outcomes(emulator, 6)
    served = sorted(seconds for found, seconds in results if found == "ok")
    refused = [seconds for found, seconds in results if found == "http_503"]
    assert len(served) == 4  # two served at once, two queued behind them
    assert len(refused) == 2  # the fifth and sixth in flight, turned away at once
    assert max(refused) < 0.25
    assert served[1] < 0.55 < served[2]  # the queued pair waited for a slot
    assert emulator.faults_injected == {"over_capacity": 2}
    assert len(emulator.constituents()) == 4


def test_a_site_over_capacity_may_answer_code_1_instead(emulator: Emulator) -> None:
    emulator.faults = Faults(latency_ms=300, capacity=1, capacity_refusal="code_1")
    found = sorted(result for result, _ in concurrent_outcomes(emulator, 3))
    assert found == ["code_1", "ok", "ok"]


def test_capacity_must_be_at_least_one() -> None:
    with pytest.raises(ValueError, match="capacity"):
        Faults(capacity=0)
    with pytest.raises(ValueError, match="capacity_refusal"):
        Faults(capacity=1, capacity_refusal="http_418")
