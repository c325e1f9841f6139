"""Benchmarks are not tests; this only checks that each script still runs on a tiny input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_emulator_calls_benchmark_runs() -> None:
    result = subprocess.run(
        [sys.executable, str(BENCH / "emulator_calls.py"), "--calls", "20", "--rounds", "1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "| http.client | xml |" in result.stdout
    assert "| 64 |" in result.stdout
