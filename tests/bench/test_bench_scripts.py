"""Benchmarks are not tests; this only checks that each script still runs on a tiny input."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def run(script: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(BENCH / script), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_emulator_calls_benchmark_runs() -> None:
    output = run("emulator_calls.py", "--calls", "20", "--rounds", "1")
    assert "| http.client | xml |" in output
    assert "| 64 |" in output


def test_client_cpu_benchmark_runs() -> None:
    output = run("client_cpu.py", "--calls", "20")
    assert "| target_convio ConvioClient (json) |" in output
    assert "| requests.Session + xmltodict (xml) |" in output


def test_throughput_benchmark_runs() -> None:
    output = run("throughput.py", "--records", "40", "--levels", "1,4")
    assert "| target-convio, max_concurrency 4 | 80 |" in output
    assert "| naive script (requests, sequential) | 20 |" in output


def test_cpu_memory_benchmark_runs() -> None:
    output = run("cpu_memory.py", "--records", "200", "--memory", "200,400")
    assert "| on |" in output
    assert "| 400 |" in output
    assert "| difference: writing results |" in output


def test_checkpoint_size_benchmark_runs() -> None:
    output = run("checkpoint_size.py", "--records", "30")
    assert "| 1 |" in output
    assert "| ratio 1 / 500 |" in output


def test_ledger_benchmark_runs() -> None:
    # Slow: starts its own PostgreSQL server and runs the target against both backends.
    output = run("ledger.py", "--records", "40", "--memory", "40,80")
    assert "| unchanged rerun | SQLite | 0 |" in output
    assert "| unchanged rerun | PostgreSQL | 0 |" in output
    assert "| 80 |" in output


def test_ledger_model_benchmark_runs() -> None:
    output = run("ledger_model.py", "--seed", "7", "--nights", "2", "--backends", "sqlite")
    assert "seed 7 sqlite: 2 nights held" in output
    assert output.endswith("histories that held: 1; that broke an invariant: 0\n")


def test_concurrency_benchmark_runs() -> None:
    output = run("concurrency.py", "--capacities", "3", "--seconds", "0.3")
    assert "| 3 | 1: " in output
    assert "Two processes at once, capacity 8" in output


def test_big_ledger_benchmark_runs() -> None:
    output = run("big_ledger.py", "--sizes", "100,1000", "--night", "40")
    assert "ledger of     1,000 keys:" in output
    assert "large / small:" in output


def test_replay_scan_benchmark_runs() -> None:
    output = run("replay_scan.py", "--sizes", "100,1000")
    rows = [line.split()[:2] for line in output.splitlines()[1:]]
    assert rows == [["sqlite", "100"], ["sqlite", "1,000"]]


def test_ledger_off_benchmark_runs() -> None:
    output = run("ledger_off.py", "--records", "20", "--rounds", "1")
    assert "| ledger off | " in output
    assert "| SQLite ledger | " in output


def test_ledger_commit_benchmark_runs() -> None:
    output = run("ledger_commit.py", "--records", "600", "--rounds", "1")
    assert re.search(r"the ledger's work: \d+\.\d us CPU a record", output), output
