"""SIGTERM and SIGINT: read no more, let calls in flight finish, write what settled, exit 128+n."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from target_convio.emulator import Emulator, Faults
from tests.target.conftest import EXE, donor, schema, singer_lines, state


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_the_run_in_order(
    emulator: Emulator, config_for, tmp_path: Path, signum: int, code: int
) -> None:
    emulator.faults = Faults(latency_ms=150, methods=frozenset({"createOrUpdate"}))
    config = config_for(emulator, batch_size_rows=2, max_concurrency=2)
    (tmp_path / "config.json").write_text(json.dumps(config))
    messages = [schema()]
    for i in range(1, 41):
        messages += [donor(i), state({"bookmarks": {"donors": {"id": i}}})]
    with (tmp_path / "stderr.txt").open("w+") as err:
        process = subprocess.Popen(
            [EXE, "--config", str(tmp_path / "config.json")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
        process.stdin.write(singer_lines(messages))
        process.stdin.close()
        first = process.stdout.readline()
        process.send_signal(signum)
        rest = process.stdout.read()
        process.stdout.close()
        assert process.wait(30) == code
        err.seek(0)
        stderr = err.read()
    states = [json.loads(line) for line in (first + rest).splitlines()]
    results = [json.loads(line) for line in Path(config["results_path"]).read_text().splitlines()]
    assert f"Received {signal.Signals(signum).name}: no new calls" in stderr
    assert "Traceback" not in stderr
    assert len(states) >= 1
    # Every call made has its row, and every row's record is in Convio.
    assert emulator.calls["createOrUpdate"] == len(results)
    assert len(emulator.constituents()) == len(results)
    assert {r["outcome"] for r in results} == {"created"}
    # The last STATE names the last record whose checkpoint settled, never one past it.
    in_state = [r["seq"] for s in states for r in s["target_convio"]["results"]]
    assert in_state == list(range(1, len(in_state) + 1))
    assert states[-1]["bookmarks"]["donors"]["id"] <= max(in_state)
    assert len(results) < 40  # it did stop early
