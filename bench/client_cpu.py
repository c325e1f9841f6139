"""Client CPU per call against the emulator at zero latency, parsing included.

Goal: at most 0.6 ms of client CPU per call. In the same run, for scale: a plain `requests`
session doing the same calls and the same parsing. The emulator runs as its own process, so
only the client's work is counted. Usage: python bench/client_cpu.py [--calls N]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections.abc import Callable
from pathlib import Path

import requests
import xmltodict

sys.path.insert(0, str(Path(__file__).resolve().parent))
from harness import emulator

from target_convio.convio.client import ClientSettings, ConvioClient

GOAL_MS = 0.6
CREDENTIALS = {"api_key": "demo-api-key", "login_name": "apiuser", "login_password": "apipass"}


def params(i: int, tag: str) -> dict[str, str]:
    return {
        "primary_email": f"cpu-{tag}-{i}@example.org",
        "name.first": "Cpu",
        "name.last": f"N{i}",
        "primary_address.city": "Austin",
        "custom_string1": "teal",
    }


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def measure(calls: int, call: Callable[[int], None]) -> tuple[float, float]:
    """(client CPU ms per call, wall ms per call)."""
    for i in range(20):  # warm up: connections, imports, caches
        call(-1 - i)
    cpu, wall = cpu_seconds(), time.perf_counter()
    for i in range(calls):
        call(i)
    return ((cpu_seconds() - cpu) / calls * 1000, (time.perf_counter() - wall) / calls * 1000)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=3000)
    args = parser.parse_args()
    rows = []
    with emulator() as url:
        for fmt in ("xml", "json"):
            client = ConvioClient(ClientSettings(api_url=url, response_format=fmt, **CREDENTIALS))

            def ours(i: int, client: ConvioClient = client, fmt: str = fmt) -> None:
                assert client.create_or_update(params(i, fmt)).ok

            rows.append((f"target_convio ConvioClient ({fmt})", *measure(args.calls, ours)))
            client.close()
        session = requests.Session()
        base = {**CREDENTIALS, "v": "1.0", "method": "createOrUpdate"}

        def plain(i: int) -> None:
            response = session.post(url, data={**base, **params(i, "requests")}, timeout=30)
            assert "errorResponse" not in xmltodict.parse(response.content)

        rows.append(("requests.Session + xmltodict (xml)", *measure(args.calls, plain)))
    ours_xml = rows[0][1]
    print(f"client CPU per createOrUpdate call at zero latency, {args.calls} calls per row")
    print("| client | CPU ms/call | wall ms/call | CPU vs ConvioClient (xml) | goal (0.6 ms) |")
    print("|---|---|---|---|---|")
    for name, cpu, wall in rows:
        verdict = "met" if cpu <= GOAL_MS else "missed"
        print(f"| {name} | {cpu:.3f} | {wall:.3f} | {cpu / ours_xml:.2f}x | {verdict} |")


if __name__ == "__main__":
    main()
