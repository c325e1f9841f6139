"""Fatal answers and the failure breaker stop a run; sync modes, write extras, dry run."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from target_convio.emulator import Emulator, Faults
from tests.conftest import site_with
from tests.target.conftest import EXE, donor, schema, singer_lines


def test_a_fatal_answer_mid_run_stops_at_once(emulator: Emulator, config_for, tmp_path) -> None:
    """The first checkpoint lands; then Convio says code 3: no more calls, no more STATE."""
    emulator.faults = Faults(latency_ms=20, methods=frozenset({"createOrUpdate"}))
    config = config_for(emulator, batch_size_rows=3, max_concurrency=1)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    stdin = singer_lines([schema()] + [donor(i) for i in range(1, 31)])
    with (tmp_path / "stderr.txt").open("w+") as err:
        process = subprocess.Popen(
            [EXE, "--config", str(path)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
        process.stdin.write(stdin)  # small enough for the pipe's buffer
        process.stdin.close()
        first = process.stdout.readline()
        emulator.faults = Faults(
            error_rate=1.0, error_code=3, methods=frozenset({"createOrUpdate"})
        )
        rest = process.stdout.read()
        process.stdout.close()
        process.wait(60)
        err.seek(0)
        stderr = err.read()
    assert process.returncode == 1
    states = [json.loads(line) for line in (first + rest).splitlines()]
    assert states[0]["target_convio"]["checkpoint"] == 1
    assert [r["seq"] for r in states[0]["target_convio"]["results"]] == [1, 2, 3]
    sent_ok = sum(len(s["target_convio"]["results"]) for s in states)
    results = [json.loads(line) for line in Path(config["results_path"]).read_text().splitlines()]
    assert len(results) >= sent_ok  # settled rows of the stopped checkpoint are kept too
    # One refused call, then nothing: every other call has a row.
    assert emulator.calls["createOrUpdate"] == len(results) + 1
    errors = [line for line in stderr.splitlines() if "| ERROR" in line]
    assert len(errors) == 1
    assert "code 3" in errors[0]
    assert "login_name/login_password" in errors[0]
    assert f"past checkpoint {len(states)}" in errors[0]
    assert "Traceback" not in stderr


def test_fatal_answer_before_any_checkpoint_writes_no_state(
    emulator, config_for, run_target
) -> None:
    emulator.faults = Faults(error_rate=1.0, error_code=14, methods=frozenset({"createOrUpdate"}))
    run = run_target(config_for(emulator), [schema()] + [donor(i) for i in range(1, 6)])
    assert run.returncode == 1
    assert run.states == []
    assert len(run.errors) == 1
    assert "code 14" in run.errors[0]
    assert emulator.calls["createOrUpdate"] == 1  # one in flight at the start; none after it


def test_the_failure_breaker_stops_a_failing_run(emulator, config_for, run_target) -> None:
    messages = [schema()] + [donor(i, user_name=f"bad name {i}") for i in range(1, 201)]
    run = run_target(config_for(emulator, max_failure_rate=0.5, max_concurrency=2), messages)
    assert run.returncode == 1
    assert len(run.errors) == 1
    assert "20 of the last 20 records sent were rejected or failed" in run.errors[0]
    assert "max_failure_rate=0.5" in run.errors[0]
    assert run.states == []
    assert 20 <= emulator.calls["createOrUpdate"] <= 22


def test_max_failure_rate_one_never_stops(emulator, config_for, run_target) -> None:
    messages = [schema()] + [donor(i, user_name=f"bad name {i}") for i in range(1, 41)]
    run = run_target(config_for(emulator, max_failure_rate=1.0), messages)
    assert run.returncode == 0, run.stderr
    assert [r["code"] for r in run.rows] == ["22"] * 40


def test_invalid_records_do_not_count_toward_the_breaker(emulator, config_for, run_target) -> None:
    messages = [schema()] + [donor(i, gender="robot") for i in range(1, 41)]
    run = run_target(config_for(emulator), messages)
    assert run.returncode == 0, run.stderr
    assert {r["outcome"] for r in run.rows} == {"invalid"}


def test_update_only(make_api, config_for, run_target) -> None:
    emulator = make_api(
        site_with(
            constituents=[
                {"cons_id": "700", "fields": {"email.primary_address": "donor1@example.org"}}
            ]
        )
    ).emulator
    run = run_target(
        config_for(emulator, sync_mode="update_only"),
        [schema(), donor(1), donor(2), donor(3, email=None)],
    )
    assert run.returncode == 0, run.stderr
    assert [(r["outcome"], r["code"]) for r in run.rows] == [
        ("updated", None),
        ("rejected", "16"),
        ("invalid", None),
    ]
    assert emulator.calls == {"listUserFields": 1, "update": 2}
    assert len(emulator.constituents()) == 1


def test_create_only(make_api, config_for, run_target) -> None:
    emulator = make_api(
        site_with(
            constituents=[
                {
                    "cons_id": "700",
                    "member_id": "M1",
                    "fields": {"email.primary_address": "old@example.org"},
                }
            ]
        )
    ).emulator
    run = run_target(
        config_for(emulator, sync_mode="create_only"),
        [
            schema(),
            donor(1),
            donor(2, email="old@example.org"),
            donor(3, member_id="M1"),
            donor(4, last_name=None),
            donor(5, email=None, member_id="M5"),
        ],
    )
    assert run.returncode == 0, run.stderr
    outcomes = [(r["outcome"], r["code"], [e["field"] for e in r["errors"]]) for r in run.rows]
    assert outcomes == [
        ("created", None, []),
        ("rejected", "13", ["primary_email"]),
        ("rejected", "11", ["global_error"]),
        ("invalid", None, ["name.last"]),
        ("invalid", None, ["primary_email"]),
    ]
    assert emulator.calls == {"listUserFields": 1, "create": 3}


def test_extras_are_sent_with_every_write(emulator, config_for, run_target) -> None:
    config = config_for(
        emulator,
        add_group_ids=[1001, 1002],
        add_interest_ids=[2],
        source="warehouse",
        no_welcome=False,
    )
    run = run_target(config, [schema(), donor(1), donor(1, city="Austin")])
    assert run.returncode == 0, run.stderr
    (stored,) = emulator.constituents()
    assert stored["groups"] == [1001, 1002]
    assert stored["interests"] == [2]
    assert stored["source"] == "warehouse"
    assert stored["welcome_sent"] is True


def test_no_welcome_is_the_default(emulator, config_for, run_target) -> None:
    run = run_target(config_for(emulator), [schema(), donor(1)])
    assert run.returncode == 0, run.stderr
    assert emulator.constituents()[0]["welcome_sent"] is False


def test_a_group_convio_keeps_to_itself_is_refused_before_any_call(
    emulator, config_for, run_target
) -> None:
    run = run_target(config_for(emulator, add_group_ids=[5]), [schema(), donor(1)])
    assert run.returncode == 1
    assert "add_group_ids names groups below 1000" in run.errors[0]
    assert emulator.calls == {}


def test_dry_run_checks_everything_and_writes_nothing(emulator, config_for, run_target) -> None:
    run = run_target(
        config_for(emulator, dry_run=True), [schema(), donor(1), donor(2, gender="robot"), donor(3)]
    )
    assert run.returncode == 0, run.stderr
    assert [r["outcome"] for r in run.results] == ["skipped", "invalid", "skipped"]
    assert run.results[0]["message"] == "dry run: not sent"
    assert run.states == []  # a dry run never moves the pipeline's bookmark
    assert "skipped            2" in run.stderr  # its counts: in the end-of-run table
    assert emulator.calls == {"listUserFields": 1}
    assert emulator.constituents() == []


@pytest.mark.parametrize(
    ("mode", "keys"),
    [
        ("records", {"checkpoint", "summary", "results"}),
        ("summary", {"checkpoint", "summary"}),
        ("none", {"checkpoint"}),
    ],
)
def test_results_in_state(emulator, config_for, run_target, mode: str, keys: set) -> None:
    run = run_target(config_for(emulator, results_in_state=mode), [schema(), donor(1)])
    assert run.returncode == 0, run.stderr
    assert set(run.states[-1]["target_convio"]) == keys
    assert len(run.results) == 1  # the results file is written whatever the mode


def test_without_results_path_no_file_is_written(
    emulator, config_for, run_target, tmp_path
) -> None:
    config = config_for(emulator)
    del config["results_path"]
    run = run_target(config, [schema(), donor(1)])
    assert run.returncode == 0, run.stderr
    assert list(tmp_path.glob("*.jsonl")) == []
    assert len(run.rows) == 1
