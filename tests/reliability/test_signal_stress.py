"""SIGTERM at random moments to busy two-stream runs: every run exits 143, fast, in order."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from target_convio.emulator import Emulator, Faults
from tests.target.conftest import EXE, donor, record, schema, singer_lines, state

RUNS = 30
PARALLEL = 3


@dataclass
class Outcome:
    run: int
    returncode: int | None
    seconds: float
    stderr: str
    results: list[dict]
    states: list[dict]
    calls: int


def two_streams(count: int) -> str:
    messages: list[dict] = [schema("donors"), schema("members")]
    for i in range(1, count + 1):
        messages.append(donor(i))
        member = {"id": i, "email": f"member{i}@example.org", "first_name": "M", "last_name": "L"}
        messages.append(record(member, stream="members"))
        messages.append(state({"bookmarks": {"donors": {"id": i}, "members": {"id": i}}}))
    return singer_lines(messages)


def one_run(run: int, folder: Path) -> Outcome:
    draw = random.Random(run)
    with Emulator(faults=Faults(latency_ms=draw.choice([2, 10, 30]))) as emulator:
        config = {
            "api_url": emulator.api_url,
            "api_key": "demo-api-key",
            "login_name": "apiuser",
            "login_password": "apipass",
            "field_map": {
                "email": "primary_email",
                "first_name": "name.first",
                "last_name": "name.last",
            },
            "batch_size_rows": 1,
            "max_concurrency": draw.choice([1, 2, 4]),
            "results_path": str(folder / f"results{run}.jsonl"),
            "ledger_url": f"sqlite:///{folder / f'ledger{run}.sqlite'}",
        }
        (folder / f"config{run}.json").write_text(json.dumps(config))
        with (folder / f"stderr{run}.txt").open("w+") as err:
            process = subprocess.Popen(
                [EXE, "--config", str(folder / f"config{run}.json")],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
            )
            assert process.stdin is not None
            assert process.stdout is not None
            process.stdin.write(two_streams(150))
            process.stdin.flush()
            if run % 2:  # else the reader waits on an open, silent input when the signal comes
                process.stdin.close()
            first = process.stdout.readline()
            time.sleep(draw.uniform(0, 0.4))
            process.send_signal(signal.SIGTERM)
            sent = time.monotonic()
            rest = process.stdout.read()
            process.stdout.close()
            try:
                returncode: int | None = process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                returncode = None
            seconds = time.monotonic() - sent
            if not process.stdin.closed:
                process.stdin.close()
            err.seek(0)
            stderr = err.read()
        results_file = Path(config["results_path"])
        results = [json.loads(line) for line in results_file.read_text().splitlines()]
        states = [json.loads(line) for line in (first + rest).splitlines()]
        calls = emulator.calls.get("createOrUpdate", 0)
    return Outcome(run, returncode, seconds, stderr, results, states, calls)


def test_sigterm_at_random_moments_always_ends_in_order(tmp_path: Path) -> None:
    # Slow by design: RUNS real target processes, each busy until its signal lands.
    with ThreadPoolExecutor(PARALLEL) as pool:
        outcomes = list(pool.map(lambda run: one_run(run, tmp_path), range(RUNS)))
    for outcome in outcomes:
        label = f"run {outcome.run}: {outcome.stderr[-2000:]}"
        assert outcome.returncode == 143, label
        assert outcome.seconds < 10, label
        assert "Traceback" not in outcome.stderr, label
        errors = [line for line in outcome.stderr.splitlines() if "| ERROR" in line]
        assert len(errors) == 1, label
        assert "Stopped: received SIGTERM" in errors[0], label
        # Every call made has its row; the last STATE passes no record without one.
        assert outcome.calls == len(outcome.results), label
        assert {r["outcome"] for r in outcome.results} == {"created"}, label
        settled = {(r["stream"], r["seq"]) for r in outcome.results}
        in_state = [
            (r["stream"], r["seq"]) for s in outcome.states for r in s["target_convio"]["results"]
        ]
        assert set(in_state) <= settled, label
        bookmarks = outcome.states[-1].get("bookmarks", {})
        for stream, mark in bookmarks.items():
            assert {(stream, seq) for seq in range(1, mark["id"] + 1)} <= set(in_state), label
    assert any(outcome.states[-1].get("bookmarks") for outcome in outcomes)
