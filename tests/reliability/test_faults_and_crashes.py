"""Faults from the emulator, a killed process, a server that is not Convio: nothing is lost."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest

from target_convio.emulator import Emulator, Faults
from tests.hostile import Canned, HostileServer
from tests.target.conftest import EXE, donor, schema, singer_lines, state

WRITES = frozenset({"createOrUpdate"})
RECOVERABLE = [
    ("latency spikes", Faults(latency_ms=5, latency_jitter_ms=150, seed=1, methods=WRITES), {}),
    ("random code 1", Faults(error_rate=0.3, seed=2, methods=WRITES), {}),
    (
        "HTTP 500 and 503",
        Faults(http_500_rate=0.15, http_503_rate=0.15, seed=3, methods=WRITES),
        {},
    ),
    ("connection resets", Faults(reset_rate=0.3, seed=4, methods=WRITES), {}),
    (
        "answers past the timeout",
        Faults(slow_rate=0.3, slow_ms=700, seed=5, methods=WRITES),
        {"request_timeout_seconds": 0.3},
    ),
    ("throttling, unpaced target", Faults(max_rps=10, methods=WRITES), {"max_concurrency": 8}),
]


def one_constituent_per_email(emulator: Emulator) -> Counter:
    emails = Counter(r["fields"]["email.primary_address"] for r in emulator.constituents())
    assert set(emails.values()) == {1}, "a record was created twice"
    return emails


@pytest.mark.parametrize(
    ("case", "faults", "settings"), RECOVERABLE, ids=[c[0] for c in RECOVERABLE]
)
def test_transient_faults_are_recovered(
    emulator: Emulator, config_for, run_target, case: str, faults: Faults, settings: dict
) -> None:
    emulator.faults = faults
    run = run_target(
        config_for(emulator, max_retries=8, batch_size_rows=10, **settings),
        [schema()] + [donor(i) for i in range(1, 31)],
    )
    assert run.returncode == 0, run.stderr
    assert [r["seq"] for r in run.rows] == list(range(1, 31))
    # A timed-out call may have written: its retry then updates. Never a second record.
    assert {r["outcome"] for r in run.rows} <= {"created", "updated"}
    assert len(one_constituent_per_email(emulator)) == 30
    attempts = sum(r["attempts"] for r in run.rows)
    assert attempts == emulator.calls["createOrUpdate"]
    retried = attempts - 30
    assert retried == 0 if case == "latency spikes" else retried > 0


def test_a_target_paced_below_the_throttle_is_never_throttled(
    emulator: Emulator, config_for, run_target
) -> None:
    emulator.faults = Faults(max_rps=40, methods=WRITES)
    run = run_target(
        config_for(emulator, max_concurrency=8, max_requests_per_second=30),
        [schema()] + [donor(i) for i in range(1, 31)],
    )
    assert run.returncode == 0, run.stderr
    assert {r["attempts"] for r in run.rows} == {1}
    assert emulator.faults_injected == {}


def test_faults_that_outlast_the_retries_are_failed_rows(emulator, config_for, run_target) -> None:
    emulator.faults = Faults(http_503_rate=1.0, methods=WRITES)
    run = run_target(
        config_for(emulator, max_retries=1, max_failure_rate=1.0),
        [schema()] + [donor(i) for i in range(1, 6)],
    )
    assert run.returncode == 0, run.stderr
    assert [(r["outcome"], r["attempts"]) for r in run.rows] == [("failed", 2)] * 5
    assert emulator.constituents() == []


def test_kill_9_then_rerun_from_the_last_state_loses_and_duplicates_nothing(
    emulator: Emulator, config_for, tmp_path: Path, ledger_url: str
) -> None:
    """As Meltano would: the tap resumes from the last STATE line the target printed; then
    the whole input once more, which the ledger knows Convio has: no write call."""
    emulator.faults = Faults(latency_ms=30, methods=WRITES)
    config = config_for(emulator, batch_size_rows=5, max_concurrency=4, ledger_url=ledger_url)
    (tmp_path / "config.json").write_text(json.dumps(config))

    def tap(after: int) -> str:
        messages = [schema()]
        for i in range(after + 1, 61):
            messages += [donor(i), state({"bookmarks": {"donors": {"id": i}}})]
        return singer_lines(messages)

    command = [EXE, "--config", str(tmp_path / "config.json")]
    with (tmp_path / "stderr.txt").open("w") as err:
        process = subprocess.Popen(
            command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, text=True
        )
        process.stdin.write(tap(0))
        process.stdin.close()
        printed = [process.stdout.readline(), process.stdout.readline()]
        process.send_signal(signal.SIGKILL)
        process.wait(10)
        printed += process.stdout.readlines()
        process.stdout.close()
    assert process.returncode == -signal.SIGKILL
    states = [json.loads(line) for line in printed if line.strip()]
    resume_after = states[-1]["bookmarks"]["donors"]["id"]
    assert resume_after < 60, "the run finished before it was killed"
    written_before_kill = len(emulator.constituents())

    rerun = subprocess.run(
        command, input=tap(resume_after), capture_output=True, text=True, timeout=60, check=False
    )
    assert rerun.returncode == 0, rerun.stderr
    assert len(one_constituent_per_email(emulator)) == 60
    assert written_before_kill > resume_after  # calls past the last STATE were made
    rows = [json.loads(line) for line in Path(config["results_path"]).read_text().splitlines()]
    ids_with_rows = {r["key"]["id"] for r in rows}
    assert ids_with_rows == set(range(1, 61))
    resumed = [r for r in rows if r["run_id"] == rows[-1]["run_id"]]
    # Settled and committed before the kill: unchanged; in flight then: sent again (updated).
    assert {r["outcome"] for r in resumed} <= {"created", "updated", "unchanged"}

    calls = emulator.calls["createOrUpdate"]
    full = subprocess.run(
        command, input=tap(0), capture_output=True, text=True, timeout=60, check=False
    )
    assert full.returncode == 0, full.stderr
    assert emulator.calls["createOrUpdate"] == calls
    states = [json.loads(line) for line in full.stdout.splitlines()]
    assert states[-1]["target_convio"]["summary"]["unchanged"] == 60
    assert len(one_constituent_per_email(emulator)) == 60


@pytest.mark.parametrize(
    ("canned", "message"),
    [
        (
            Canned(200, b"<!DOCTYPE html><html><body>Please log in</body></html>"),
            "not a Convio answer (root element 'html')",
        ),
        (Canned(200, b""), "not a Convio answer (empty answer)"),
        (Canned(200, b'{"listConsFieldsResponse": '), "not a Convio answer (invalid JSON"),
        (Canned(404, b"<html>Not Found</html>"), "HTTP 404: no SRConsAPI at api_url"),
        (
            Canned(
                200,
                b"<?xml version='1.0'?><!DOCTYPE x [<!ENTITY a 'aaaa'><!ENTITY b '&a;&a;'>]>"
                b"<listConsFieldsResponse>&b;</listConsFieldsResponse>",
            ),
            "invalid XML",
        ),
    ],
)
def test_a_server_that_is_not_convio_stops_the_run_clearly(
    config_for, run_target, emulator, canned: Canned, message: str
) -> None:
    with HostileServer(lambda n: canned) as server:
        config = {**config_for(emulator), "api_url": server.url, "max_retries": 1}
        started = time.monotonic()
        run = run_target(config, [schema(), donor(1)])
    assert run.returncode == 1
    assert len(run.errors) == 1, run.stderr
    assert "Cannot start: listUserFields failed" in run.errors[0]
    assert message in run.errors[0]
    assert run.states == []
    assert time.monotonic() - started < 30
