"""What the benchmarks share: an emulator process, Singer input files, timed target runs."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

BIN = Path(sys.executable).parent
CREDENTIALS = {"api_key": "demo-api-key", "login_name": "apiuser", "login_password": "apipass"}
FIELD_MAP = {
    "email": "email.primary_address",
    "first_name": "name.first",
    "last_name": "name.last",
    "city": "primary_address.city",
}
SCHEMA = {
    "type": "SCHEMA",
    "stream": "donors",
    "key_properties": ["id"],
    "schema": {
        "properties": {
            "id": {"type": "integer"},
            "email": {"type": "string"},
            "first_name": {"type": "string"},
            "last_name": {"type": "string"},
            "city": {"type": ["string", "null"]},
            "updated_at": {"type": "string", "format": "date-time"},
        }
    },
}


@contextmanager
def emulator(*args: str) -> Iterator[str]:
    """An emulator process on a free port; yields its SRConsAPI URL."""
    server = subprocess.Popen(
        [BIN / "convio-emulator", "--port", "0", *args], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        yield server.stdout.readline().strip()
    finally:
        server.terminate()
        server.wait(10)


def singer_input(records: int, folder: Path, tag: str = "") -> Path:
    """A Singer file of `records` donors, with a STATE message every 1,000 records."""
    path = folder / f"donors-{records}{tag}.singer"
    with path.open("w") as out:
        out.write(json.dumps(SCHEMA) + "\n")
        for i in range(1, records + 1):
            out.write(
                json.dumps(
                    {
                        "type": "RECORD",
                        "stream": "donors",
                        "record": {
                            "id": i,
                            "email": f"donor{i}{tag}@example.org",
                            "first_name": "Bench",
                            "last_name": f"Donor{i}",
                            "city": "Austin",
                            "updated_at": "2026-11-20T10:00:00Z",
                        },
                    }
                )
                + "\n"
            )
            if i % 1000 == 0:
                out.write(
                    json.dumps(
                        {
                            "type": "STATE",
                            "value": {"bookmarks": {"donors": {"replication_key_value": i}}},
                        }
                    )
                    + "\n"
                )
    return path


@dataclass(frozen=True)
class Measured:
    wall_s: float
    cpu_s: float
    max_rss_mb: float
    returncode: int
    instructions: int = 0  # user-space instructions, when run under callgrind


CALLGRIND = ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null"]


def collected(log: Path) -> int:
    """The user-space instructions a callgrind log (`--log-file`) counted."""
    return int(re.findall(r"Collected : (\d+)", log.read_text())[-1])


def run_target(
    config: dict,
    input_path: Path,
    exe: Path = BIN / "target-convio",
    *,
    instructions: bool = False,
) -> Measured:
    """Run target-convio on a file; wall time, CPU time and peak RSS of that process alone.

    `instructions`: under valgrind's callgrind, which counts the user-space instructions the
    process ran: the same count for the same work, whatever else the machine is doing.
    """
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(config, handle)
    log = Path(handle.name).with_suffix(".callgrind")
    prefix = [*CALLGRIND, f"--log-file={log}"] if instructions else []
    try:
        with input_path.open() as stdin:
            started = time.perf_counter()
            process = subprocess.Popen(
                [*prefix, exe, "--config", handle.name],
                stdin=stdin,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            _, status, usage = os.wait4(process.pid, 0)
            wall = time.perf_counter() - started
        counted = collected(log) if instructions else 0
    finally:
        os.unlink(handle.name)
        log.unlink(missing_ok=True)
    process.returncode = os.waitstatus_to_exitcode(status)
    return Measured(
        wall,
        usage.ru_utime + usage.ru_stime,
        usage.ru_maxrss / 1024,
        process.returncode,
        counted,
    )


def target_config(url: str, **overrides: object) -> dict:
    """A config for the emulator at `url`: no ledger, and exactly `max_concurrency` calls in
    flight (fixed), unless a benchmark measures adaptive concurrency itself."""
    return {
        "api_url": url,
        **CREDENTIALS,
        "field_map": FIELD_MAP,
        "ledger_url": "none",
        "adaptive_concurrency": False,
        **overrides,
    }


def per_record_ms(measured: Measured, fixed: Measured, records: int) -> float:
    """CPU per record, less the fixed cost of a run (start, listUserFields, exit)."""
    if measured.returncode or fixed.returncode:
        raise SystemExit(f"a target run failed (exit {measured.returncode or fixed.returncode})")
    return (measured.cpu_s - fixed.cpu_s) / records * 1000


def site_state(api_url: str) -> dict:
    """The emulator's calls by method and faults injected (its read-only inspection route)."""
    base = api_url.split("/", 3)
    state = f"{base[0]}//{base[2]}/_emulator/state"  # the emulator on loopback, http
    with urllib.request.urlopen(state, timeout=10) as answer:
        found: dict = json.load(answer)
    return found


def write_calls(api_url: str) -> int:
    """The emulator's count of write calls so far."""
    calls = site_state(api_url)["calls"]
    return sum(calls.get(method, 0) for method in ("createOrUpdate", "create", "update"))
