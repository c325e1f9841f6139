"""max_calls_per_day: every HTTP request counted per site and UTC day in the ledger (SQLite and
a real PostgreSQL server), the run stopped in order with exit 75 when the budget is spent, and
the next day's run resuming it."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import threading
import time

import pytest
import sqlalchemy as sa

from target_convio.convio.budget import BLOCK, BudgetSpentError, CallBudget
from target_convio.emulator import Faults
from target_convio.ledger import Ledger
from tests.target.conftest import EXE, donor, schema, singer_lines

SITE = "https://example.invalid/site/SRConsAPI"
TODAY = dt.datetime(2026, 11, 30, 23, 59, tzinfo=dt.timezone.utc)


def counted(ledger: Ledger, day: str = "2026-11-30") -> int:
    with ledger.engine.connect() as connection:
        found = connection.execute(
            sa.text("SELECT calls FROM target_convio_calls WHERE day = :day"), {"day": day}
        ).scalar()
    return int(found or 0)


def test_two_budgets_sharing_a_ledger_never_pass_it_together(ledger_url) -> None:
    ledgers = [Ledger.open(ledger_url, SITE, timeout=10) for _ in range(2)]
    budgets = [CallBudget(130, ledger, now=lambda: TODAY) for ledger in ledgers]
    taken = [0, 0]

    def spend(i: int) -> None:
        try:
            while True:
                budgets[i].take()
                taken[i] += 1
                time.sleep(0.001)  # a call's worth of time: the two interleave
        except BudgetSpentError:
            pass

    threads = [threading.Thread(target=spend, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sum(taken) == 130
    assert min(taken) >= BLOCK  # both got their share of blocks
    for budget in budgets:
        budget.close()
    assert counted(ledgers[0]) == 130
    with pytest.raises(BudgetSpentError, match=r"it renews at 2026-12-01T00:00:00Z"):
        CallBudget(130, ledgers[0], now=lambda: TODAY).take()
    for ledger in ledgers:
        ledger.close()


def test_unused_reserved_calls_are_given_back_and_a_new_day_starts_afresh(ledger_url) -> None:
    ledger = Ledger.open(ledger_url, SITE, timeout=10)
    clock = [TODAY]
    budget = CallBudget(100, ledger, now=lambda: clock[0])
    for _ in range(3):
        budget.take()
    assert counted(ledger) == BLOCK  # a block is reserved at once
    clock[0] = TODAY + dt.timedelta(minutes=2)  # past midnight: the unused calls go back
    budget.take()
    assert counted(ledger) == 3
    assert counted(ledger, "2026-12-01") == BLOCK
    budget.close()
    assert counted(ledger, "2026-12-01") == 1
    ledger.close()


def test_without_a_ledger_the_budget_counts_this_run_alone() -> None:
    budget = CallBudget(2, now=lambda: TODAY)
    budget.take()
    budget.take()
    with pytest.raises(BudgetSpentError) as raised:
        budget.take()
    assert raised.value.exit_code == 75
    assert "2 calls by this run today (UTC; without a ledger" in str(raised.value)


def test_a_spent_budget_stops_the_run_in_order_with_exit_75_and_the_next_day_resumes(
    emulator, config_for, run_target, ledger_url
) -> None:
    emulator.faults = Faults(latency_ms=5)
    config = config_for(emulator, ledger_url=ledger_url, max_calls_per_day=40, batch_size_rows=10)
    messages = [schema(), *(donor(i) for i in range(1, 61))]
    run = run_target(config, messages)
    assert run.returncode == 75, run.stderr
    assert sum(emulator.calls.values()) == 40  # listUserFields and 39 writes, not one more
    [error] = run.errors
    assert re.search(
        r"Stopped: the daily call budget is spent: max_calls_per_day=40, 40 calls to this site "
        r"today \(UTC\), 40 of them by this run; it renews at \d{4}-\d\d-\d\dT00:00:00Z\. No "
        r"STATE was written past checkpoint \d",
        error,
    )
    assert {r["outcome"] for r in run.results} == {"created"}
    written = [r["key"]["id"] for r in run.rows]  # STATE holds whole checkpoints, in order
    assert written == list(range(1, len(written) + 1))
    assert len(written) in (10, 20, 30)
    assert len(run.results) == 39  # every write made has its row; the rest have none

    ledger = Ledger.open(ledger_url, emulator.api_url, timeout=10)
    with ledger.engine.begin() as connection:  # the next day
        connection.execute(sa.text("UPDATE target_convio_calls SET day = '2000-01-01'"))
    ledger.close()
    again = run_target(config, messages)
    assert again.returncode == 0, again.stderr
    assert sum(emulator.calls.values()) == 40 + 1 + 60 - len(run.results)
    assert len(emulator.constituents()) == 60
    outcomes = {r["key"]["id"]: r["outcome"] for r in again.results[len(run.results) :]}
    assert {i for i, o in outcomes.items() if o == "created"} == set(range(1, 61)) - {
        r["key"]["id"] for r in run.results
    }


def test_a_budget_spent_before_the_first_record_exits_75_at_once(
    emulator, config_for, run_target
) -> None:
    config = config_for(emulator, max_calls_per_day=1, ledger_url="none")
    run = run_target(config, [schema(), donor(1)])
    assert run.returncode == 75
    assert "max_calls_per_day counts this run's calls alone" in run.stderr
    assert emulator.calls == {"listUserFields": 1}
    [error] = run.errors
    assert "Stopped: the daily call budget is spent: max_calls_per_day=1" in error


def test_two_partitions_share_one_budget_on_postgresql(
    emulator, config_for, postgres_ledger_url, tmp_path
) -> None:
    emulator.faults = Faults(latency_ms=5)
    processes = []
    for part in (0, 1):
        config = config_for(
            emulator,
            ledger_url=postgres_ledger_url,
            results_path=str(tmp_path / f"results{part}.jsonl"),
            max_calls_per_day=50,
            batch_size_rows=10,
        )
        path = tmp_path / f"config{part}.json"
        path.write_text(json.dumps(config))
        stdin = singer_lines([schema(), *(donor(i) for i in range(part * 100, part * 100 + 60))])
        processes.append(
            subprocess.Popen(
                [EXE, "--config", str(path)],
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
        assert processes[-1].stdin is not None
        processes[-1].stdin.write(stdin)
        processes[-1].stdin.close()
    for process in processes:
        assert process.stderr is not None
        stderr = process.stderr.read()
        process.stderr.close()
        assert process.wait(120) == 75, stderr
    assert sum(emulator.calls.values()) == 50  # each wanted 61 calls: 50 in all were allowed
    ledger = Ledger.open(postgres_ledger_url, emulator.api_url, timeout=10)
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    assert counted(ledger, today) == 50
    ledger.close()


def test_a_version_3_ledger_gains_the_call_count_in_place(
    emulator, config_for, run_target, ledger_url
) -> None:
    config = config_for(emulator, ledger_url=ledger_url)
    assert run_target(config, [schema(), donor(1)]).returncode == 0
    ledger = Ledger.open(ledger_url, emulator.api_url, timeout=10)
    with ledger.engine.begin() as connection:  # as the release before the budget left it
        connection.execute(sa.text("DROP TABLE target_convio_calls"))
        connection.execute(sa.text("UPDATE target_convio_meta SET value = '3'"))
    run = run_target({**config, "max_calls_per_day": 10}, [schema(), donor(1), donor(2)])
    assert run.returncode == 0, run.stderr
    assert [r["outcome"] for r in run.rows] == ["unchanged", "created"]
    with ledger.engine.connect() as connection:
        version = connection.execute(sa.text("SELECT value FROM target_convio_meta")).scalar()
    today = dt.datetime.now(dt.timezone.utc).date().isoformat()
    assert (version, counted(ledger, today)) == ("7", 2)  # listUserFields and one write
    ledger.close()
