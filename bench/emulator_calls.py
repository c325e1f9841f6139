"""How fast the emulator answers, so that it is never the bottleneck of a benchmark.

1. Sequential calls per second at zero latency, on loopback (goal: at least 500/s).
2. Concurrent clients at 50 ms latency: calls per second against the ideal concurrency / latency.

The emulator runs as its own process (as in the demo and the end-to-end tests), so client and
server do not share one interpreter. Usage: python bench/emulator_calls.py [--calls N] [--rounds N]
"""

from __future__ import annotations

import argparse
import http.client
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlencode, urlsplit

import requests
from harness import emulator

CREDENTIALS = {
    "v": "1.0",
    "api_key": "demo-api-key",
    "login_name": "apiuser",
    "login_password": "apipass",
}
GOAL_CALLS_PER_SECOND = 500
LATENCY_MS = 50
HEADERS = {"Content-Type": "application/x-www-form-urlencoded; charset=UTF-8"}


def body(i: int, fmt: str) -> dict[str, str]:
    return {
        **CREDENTIALS,
        "method": "createOrUpdate",
        "response_format": fmt,
        "primary_email": f"bench-{fmt}-{i}@example.org",
        "name.first": "Bench",
        "name.last": f"N{i}",
        "primary_address.city": "Austin",
        "custom_string1": "teal",
    }


def with_http_client(url: str, calls: int, fmt: str) -> float:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port)
    started = time.perf_counter()
    for i in range(calls):
        post(connection, parts.path, body(i, fmt))
    elapsed = time.perf_counter() - started
    connection.close()
    return calls / elapsed


def post(connection: http.client.HTTPConnection, path: str, data: dict[str, str]) -> None:
    connection.request("POST", path, urlencode(data), HEADERS)
    response = connection.getresponse()
    response.read()
    assert response.status == 200, response.status


def with_requests(url: str, calls: int, fmt: str) -> float:
    session = requests.Session()
    session.trust_env = False
    started = time.perf_counter()
    for i in range(calls):
        response = session.post(url, data=body(i, fmt), timeout=10)
        assert response.status_code == 200, response.text
    return calls / (time.perf_counter() - started)


def concurrent(url: str, concurrency: int, calls: int) -> float:
    """Calls per second from `concurrency` threads, each on its own keep-alive connection."""
    parts = urlsplit(url)
    local = threading.local()

    def call(i: int) -> None:
        if not hasattr(local, "connection"):
            local.connection = http.client.HTTPConnection(parts.hostname, parts.port)
        post(local.connection, parts.path, body(i, "json"))

    started = time.perf_counter()
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(call, range(calls)))
    return calls / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=3000, help="sequential calls per row")
    parser.add_argument("--rounds", type=int, default=20, help="concurrent calls per client")
    args = parser.parse_args()
    with emulator() as url:
        # The first client's calls create records; the second's update the same ones.
        rows = [
            (client, fmt, run(url, args.calls, fmt))
            for client, run in (("http.client", with_http_client), ("requests", with_requests))
            for fmt in ("xml", "json")
        ]
    with emulator("--latency-ms", str(LATENCY_MS)) as url:
        levels = [(n, concurrent(url, n, n * args.rounds)) for n in (1, 4, 16, 64)]
    print(f"sequential createOrUpdate calls at zero latency, {args.calls} per row")
    print("(the http.client rows create records, the requests rows update them)")
    print("| client | format | calls/s | vs goal (500/s) |")
    print("|---|---|---|---|")
    for client, fmt, rate in rows:
        print(f"| {client} | {fmt} | {rate:,.0f} | {rate / GOAL_CALLS_PER_SECOND:.1f}x |")
    print(f"\nconcurrent clients at {LATENCY_MS} ms latency, {args.rounds} calls per client")
    print("| concurrency | calls/s | ideal | efficiency |")
    print("|---|---|---|---|")
    for n, rate in levels:
        ideal = n * 1000 / LATENCY_MS
        print(f"| {n} | {rate:,.0f} | {ideal:,.0f} | {rate / ideal:.3f} |")


if __name__ == "__main__":
    main()
