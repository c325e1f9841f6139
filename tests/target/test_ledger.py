"""The sync ledger end to end: unchanged records cost no call, a key keeps its cons_id, failed
records come back. Every test runs against SQLite and against a real PostgreSQL server."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa

from target_convio.emulator import Emulator, Faults
from target_convio.ledger import ACCEPTED, ROWS_PER_INSERT, Change
from target_convio.rows import LedgerNote
from tests.target.conftest import DONOR_SCHEMA, EXE, cli, donor, record, schema, singer_lines, state

WRITES = ("createOrUpdate", "create", "update")


def writes(emulator: Emulator) -> int:
    return sum(emulator.calls.get(method, 0) for method in WRITES)


@pytest.fixture
def sync(emulator, config_for, run_target, ledger_url):
    """Run the target on messages with the ledger; returns (run, write calls it made)."""

    def run(messages: list[dict], **settings):
        before = writes(emulator)
        config = config_for(emulator, ledger_url=ledger_url, **settings)
        outcome = run_target(config, messages)
        assert outcome.returncode == 0, outcome.stderr
        return outcome, writes(emulator) - before

    return run


def test_an_unchanged_rerun_makes_no_write_call(sync) -> None:
    messages = [schema(), *(donor(i) for i in range(1, 6)), state({"bookmarks": {"x": 5}})]
    first, sent = sync(messages)
    assert sent == 5
    again, sent = sync(messages)
    assert sent == 0
    assert [r["outcome"] for r in again.rows] == ["unchanged"] * 5
    assert [r["cons_id"] for r in again.rows] == [r["cons_id"] for r in first.rows]
    assert all(r["attempts"] == 0 and r["message"].startswith("not sent:") for r in again.rows)
    assert again.states[-1]["target_convio"]["summary"]["unchanged"] == 5
    assert len({r["run_id"] for r in first.rows + again.rows}) == 2


def test_an_accepted_change_is_what_its_fields_by_name_make() -> None:
    """`Change.accepted` builds the tuple by position, for speed: each field in its place."""
    fields = {
        "cons_id": "1000001",
        "key": {"id": 1},
        "memberships": {"monthly": True},
        "claims": frozenset({"a" * 64}),
        "known": True,
        "new_constituent": False,
    }
    made = Change.accepted("donors", "i" * 64, "f" * 64, **fields)
    by_name = Change(
        "donors", "i" * 64, ACCEPTED, "f" * 64, keep_cons_id=False, confirmed=True, **fields
    )
    assert (type(made), made._asdict()) == (Change, by_name._asdict())


def test_a_sent_records_note_is_what_its_fields_by_name_make() -> None:
    """`LedgerNote.of_sent` builds the tuple by position, for speed: each field in its place."""
    fields = {
        "wanted": {"monthly": True},
        "confirmed": {"monthly": True, "weekly": False},
        "replayed": True,
        "claims": frozenset({"a" * 64}),
        "known": True,
    }
    made = LedgerNote.of_sent("i" * 64, "f" * 64, {"name.first": "A"}, {"id": 1}, **fields)
    by_name = LedgerNote("i" * 64, "f" * 64, {"name.first": "A"}, {"id": 1}, **fields)
    assert (type(made), made._asdict()) == (LedgerNote, by_name._asdict())


def test_a_checkpoint_of_more_records_than_one_insert_writes_keeps_each_of_them(sync) -> None:
    count = 2 * ROWS_PER_INSERT + 23  # two whole statements and the rest, one by one
    messages = [schema(), *(donor(i) for i in range(1, count + 1))]
    first, sent = sync(messages, batch_size_rows=500)
    assert (sent, {r["outcome"] for r in first.rows}) == (count, {"created"})
    again, sent = sync(messages, batch_size_rows=500)
    assert (sent, {r["outcome"] for r in again.rows}) == (0, {"unchanged"})
    assert [r["cons_id"] for r in again.rows] == [r["cons_id"] for r in first.rows]
    moved = [donor(i, first_name="Moved") if i % 3 == 0 else donor(i) for i in range(1, count)]
    taken = [donor(count + j, email=f"donor{j}@example.org") for j in (1, 60, count)]
    third, sent = sync([schema(), *moved, *taken], batch_size_rows=500)
    assert sent == (count - 1) // 3
    expected = ["updated" if i % 3 == 0 else "unchanged" for i in range(1, count)]
    assert [r["outcome"] for r in third.rows] == [*expected, "invalid", "invalid", "invalid"]
    assert [r["cons_id"] for r in third.rows[: count - 1]] == [
        r["cons_id"] for r in first.rows[: count - 1]
    ]
    held_by = [r["errors"][0] for r in third.rows[count - 1 :]]
    assert [(e["code"], e["field"]) for e in held_by] == [("already_used", "primary_email")] * 3
    holders = [e["message"].split("another key (")[1].split(")")[0] for e in held_by]
    assert holders == ['{"id": 1}', '{"id": 60}', f'{{"id": {count}}}']


def test_a_changed_email_updates_the_same_constituent(sync, emulator) -> None:
    first, _ = sync([schema(), donor(1), donor(2)])
    moved, sent = sync([schema(), donor(1, email="new-address@example.org"), donor(2)])
    assert sent == 1
    assert [r["outcome"] for r in moved.rows] == ["updated", "unchanged"]
    assert moved.rows[0]["cons_id"] == first.rows[0]["cons_id"]
    emails = sorted(c["fields"]["email.primary_address"] for c in emulator.constituents())
    assert emails == ["donor2@example.org", "new-address@example.org"]  # no second record


def test_a_rejected_record_is_not_resent_until_it_changes(sync) -> None:
    bad = donor(1, user_name="no spaces allowed")
    first, _ = sync([schema(), bad])
    assert (first.rows[0]["outcome"], first.rows[0]["code"]) == ("rejected", "22")
    again, sent = sync([schema(), bad])
    assert sent == 0
    row = again.rows[0]
    assert (row["outcome"], row["code"], row["attempts"]) == ("rejected", "22", 0)
    assert row["message"].startswith("not sent again: Convio refused these values before")
    assert row["errors"][0]["code"] == "invalid"
    forced, sent = sync([schema(), bad], resend_rejected=True)
    assert (sent, forced.rows[0]["attempts"]) == (1, 1)
    fixed, sent = sync([schema(), donor(1, user_name="fine_now")])
    assert (sent, fixed.rows[0]["outcome"]) == (1, "created")


def test_a_cons_id_convio_no_longer_has_is_forgotten_and_the_record_sent_once_more(
    sync, emulator
) -> None:
    first, _ = sync([schema(), donor(1)])
    emulator.store.remove(first.rows[0]["cons_id"])  # deleted or merged in Luminate
    again, sent = sync([schema(), donor(1, city="Austin")])
    row = again.rows[0]
    assert sent == 2  # with the remembered cons_id (16), then without it
    assert row["outcome"] == "created"
    assert row["cons_id"] != first.rows[0]["cons_id"]
    assert "Convio no longer has the cons_id the ledger kept" in row["message"]
    after, sent = sync([schema(), donor(1, city="Boston")])
    assert (sent, after.rows[0]["cons_id"]) == (1, row["cons_id"])  # the new one is kept


def summed(rows: list[dict]) -> list[tuple]:
    """(seq, key, outcome) of each row: the input's in order, then replays (queue order) by key."""
    replays = sorted((r for r in rows if r["seq"] is None), key=lambda r: r["key"]["id"])
    ordered = [r for r in rows if r["seq"] is not None] + replays
    assert rows[: len(rows) - len(replays)] == ordered[: len(rows) - len(replays)]
    return [(r["seq"], r["key"], r["outcome"]) for r in ordered]


def test_failed_records_come_back_until_max_replays(sync, emulator) -> None:
    emulator.faults = Faults(error_rate=1.0, methods=frozenset({"createOrUpdate"}))
    failed, _ = sync([schema(), donor(1), donor(2)], max_retries=0)
    assert [r["outcome"] for r in failed.rows] == ["failed", "failed"]
    # Still down: the next run's input lacks donor 1, which is replayed (seq null) and fails.
    down, _ = sync([schema(), donor(3)], max_retries=0, max_replays=2)
    assert summed(down.rows) == [
        (1, {"id": 3}, "failed"),
        (None, {"id": 1}, "failed"),
        (None, {"id": 2}, "failed"),
    ]
    emulator.faults = Faults()
    # Back up: donor 2 is in the input (the new record wins), 1 and 3 come from the queue.
    back, sent = sync([schema(), donor(2, city="Austin")], max_replays=2)
    assert summed(back.rows) == [
        (1, {"id": 2}, "created"),
        (None, {"id": 1}, "created"),
        (None, {"id": 3}, "created"),
    ]
    assert sent == 3
    quiet, sent = sync([schema()])
    assert (quiet.rows, sent) == ([], 0)  # the queue is empty


def test_a_record_failing_max_replays_times_gets_a_last_row(sync, emulator) -> None:
    emulator.faults = Faults(error_rate=1.0, methods=frozenset({"createOrUpdate"}))
    sync([schema(), donor(1)], max_retries=0)
    for _ in range(2):
        sync([schema()], max_retries=0, max_replays=2)
    last, sent = sync([schema()], max_retries=0, max_replays=2)
    assert sent == 0
    (row,) = last.rows
    assert (row["seq"], row["outcome"], row["attempts"]) == (None, "failed", 0)
    assert "not retried again (max_replays)" in row["message"]
    after, _ = sync([schema()], max_retries=0, max_replays=2)
    assert after.rows == []


def test_full_sync_and_resend_after_days_send_unchanged_records(sync, emulator, ledger_url) -> None:
    messages = [schema(), donor(1), donor(2)]
    sync(messages)
    full, sent = sync(messages, full_sync=True)
    assert (sent, [r["outcome"] for r in full.rows]) == (2, ["updated", "updated"])
    _, sent = sync(messages, resend_after_days=1)
    assert sent == 0
    engine = sa.create_engine(ledger_url.replace("postgresql://", "postgresql+psycopg://"))
    with engine.begin() as connection:
        connection.execute(
            sa.text("UPDATE target_convio_ledger SET confirmed_at = :then"),
            {"then": dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=3)},
        )
    engine.dispose()
    stale, sent = sync(messages, resend_after_days=2)
    assert (sent, [r["outcome"] for r in stale.rows]) == (2, ["updated", "updated"])


def test_create_only_skips_a_key_the_ledger_knows(sync) -> None:
    first, _ = sync([schema(), donor(1)], sync_mode="create_only")
    again, sent = sync([schema(), donor(1, city="Austin")], sync_mode="create_only")
    assert sent == 0
    row = again.rows[0]
    assert (row["outcome"], row["cons_id"]) == ("skipped", first.rows[0]["cons_id"])
    assert row["message"] == "exists; create_only does not update"


def test_streams_without_key_properties_are_tracked_by_member_id_or_email(sync) -> None:
    keyless = schema(stream="members", properties=DONOR_SCHEMA["properties"], keys=[])
    people = [
        record({"email": "a@example.org", "first_name": "A", "last_name": "L"}, "members"),
        record(
            {"member_id": "M2", "first_name": "B", "last_name": "L", "email": "b@x.org"}, "members"
        ),
        record({"member_id": "M3", "first_name": "C", "last_name": "L"}, "members"),
    ]
    first, _ = sync([keyless, *people])
    assert [r["outcome"] for r in first.rows] == ["created", "created", "rejected"]  # 10
    again, sent = sync([keyless, *people])
    assert sent == 0
    assert Counter(r["outcome"] for r in again.rows) == {"unchanged": 2, "rejected": 1}


def test_the_ledger_can_be_turned_off(emulator, config_for, run_target, tmp_path) -> None:
    config = config_for(emulator, ledger_url="none")
    run_target(config, [schema(), donor(1)])
    again = run_target(config, [schema(), donor(1)])
    assert again.rows[0]["outcome"] == "updated"
    assert not list(tmp_path.glob("*.sqlite"))


LEDGER_EXE = shutil.which("target-convio-ledger") or str(
    Path(sys.executable).with_name("target-convio-ledger")
)


def ledger_command(url: str, *args: str) -> str:
    result = cli("--ledger-url", url, *args, exe=LEDGER_EXE)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_the_ledger_console_script(sync, emulator, ledger_url) -> None:
    sync([schema()])  # the ledger is made, and holds nothing yet
    assert "(the ledger is empty)" in ledger_command(ledger_url, "counts")
    sync([schema(), donor(1), donor(2)])
    emulator.faults = Faults(error_rate=1.0, methods=frozenset({"createOrUpdate"}))
    sync([schema(), donor(3)], max_retries=0)
    emulator.faults = Faults()
    counts = ledger_command(ledger_url, "counts").splitlines()
    site = emulator.api_url
    assert [line.split() for line in counts[1:]] == [
        [site, "donors", "accepted", "2"],
        [site, "donors", "failed", "1"],
    ]
    (queued,) = ledger_command(ledger_url, "replays", "--stream", "donors").splitlines()
    assert queued.startswith('donors  key {"id": 3}  failed in 1 run(s), last ')
    assert "Unable to process request." in queued
    assert ledger_command(ledger_url, "forget", "donors") == "forgot 3 records of stream 'donors'\n"
    again, sent = sync([schema(), donor(1), donor(2)])
    assert (sent, [r["outcome"] for r in again.rows]) == (2, ["updated", "updated"])


def test_the_console_script_names_a_ledger_it_cannot_open(tmp_path) -> None:
    url = "postgresql://nobody:s3cret@127.0.0.1:9/x"
    result = cli("--ledger-url", url, "counts", exe=LEDGER_EXE)
    assert result.returncode == 1
    assert result.stderr.startswith("target-convio-ledger: Cannot open the ledger (ledger_url)")
    assert "s3cret" not in result.stderr
    assert "Traceback" not in result.stderr


def test_two_partitions_at_once_share_one_postgresql_ledger(
    emulator, config_for, postgres_ledger_url, tmp_path
) -> None:
    """As a team would run them under an orchestrator: one stream split with stream_maps."""
    emulator.faults = Faults(latency_ms=5)
    stdin = singer_lines([schema(), *(donor(i) for i in range(1, 201))])

    def partitions() -> list[list[dict]]:
        processes = []
        for part in (0, 1):
            (tmp_path / f"results{part}.jsonl").unlink(missing_ok=True)
            config = config_for(
                emulator,
                ledger_url=postgres_ledger_url,
                results_path=str(tmp_path / f"results{part}.jsonl"),
                stream_maps={"donors": {"__filter__": f"id % 2 == {part}"}},
                batch_size_rows=20,
            )
            path = tmp_path / f"config{part}.json"
            path.write_text(json.dumps(config))
            processes.append(
                subprocess.Popen(
                    [EXE, "--config", str(path)],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        for process in processes:
            assert process.stdin is not None
            process.stdin.write(stdin)
            process.stdin.close()
        for process in processes:
            stderr = process.stderr.read() if process.stderr else ""
            assert process.wait(120) == 0, stderr
            if process.stderr:
                process.stderr.close()
        return [
            [
                json.loads(line)
                for line in (tmp_path / f"results{part}.jsonl").read_text().splitlines()
            ]
            for part in (0, 1)
        ]

    first = partitions()
    assert sorted(r["key"]["id"] for rows in first for r in rows) == list(range(1, 201))
    assert {r["outcome"] for rows in first for r in rows} == {"created"}
    emails = Counter(c["fields"]["email.primary_address"] for c in emulator.constituents())
    assert len(emails) == 200
    assert set(emails.values()) == {1}
    counts = ledger_command(postgres_ledger_url, "counts").splitlines()[1:]
    assert [line.split()[2:] for line in counts] == [["accepted", "200"]]  # no entry lost
    calls = writes(emulator)
    second = partitions()
    assert writes(emulator) == calls
    assert [len(rows) for rows in second] == [100, 100]
    assert {r["outcome"] for rows in second for r in rows} == {"unchanged"}


def test_a_ledger_that_cannot_be_opened_stops_the_run_before_any_call(
    emulator, config_for, tmp_path
) -> None:
    config = config_for(emulator, ledger_url="postgresql://convio:s3cret-pw@127.0.0.1:9/ledger")
    (tmp_path / "config.json").write_text(json.dumps(config))
    result = cli(
        "--config", str(tmp_path / "config.json"), stdin=singer_lines([schema(), donor(1)])
    )
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "| ERROR" in line]
    assert len(errors) == 1, result.stderr
    assert "target-convio: Cannot open the ledger (ledger_url): OperationalError" in errors[0]
    assert "s3cret-pw" not in result.stderr + result.stdout
    assert emulator.calls == {}
    about = json.loads(cli("--about", "--format", "json").stdout)
    assert about["settings"]["properties"]["ledger_url"]["secret"] is True


def test_update_only_with_the_ledger(sync, emulator) -> None:
    first, _ = sync([schema(), donor(1)])  # made by an upsert run
    again, sent = sync([schema(), donor(1, email="moved@example.org")], sync_mode="update_only")
    assert (sent, again.rows[0]["outcome"]) == (1, "updated")
    assert again.rows[0]["cons_id"] == first.rows[0]["cons_id"]  # found by the ledger's cons_id
    quiet, sent = sync([schema(), donor(1, email="moved@example.org")], sync_mode="update_only")
    assert (sent, quiet.rows[0]["outcome"]) == (0, "unchanged")


def test_a_key_sent_twice_in_one_run_is_not_taken_for_unchanged(sync, emulator) -> None:
    sync([schema(), donor(1, city="Austin")])
    run, sent = sync([schema(), donor(1, city="Boston"), donor(1, city="Austin")])
    assert (sent, [r["outcome"] for r in run.rows]) == (2, ["updated", "updated"])
    (stored,) = emulator.constituents()
    assert stored["fields"]["primary_address.city"] == "Austin"
    again, sent = sync([schema(), donor(1, city="Austin")])
    assert (sent, again.rows[0]["outcome"]) == (0, "unchanged")


def test_a_postgresql_ledger_without_its_driver_names_the_extra(
    emulator, config_for, run_target, tmp_path
) -> None:
    """As on an install without the `postgres` extra: psycopg cannot be imported."""
    fake = tmp_path / "no-driver" / "psycopg"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError(\"No module named 'psycopg'\")\n")
    config = config_for(emulator, ledger_url="postgresql://convio:s3cret@127.0.0.1:9/ledger")
    run = run_target(config, [schema(), donor(1)], env={"PYTHONPATH": str(tmp_path / "no-driver")})
    assert run.returncode == 1
    assert len(run.errors) == 1, run.stderr
    assert (
        "Cannot open the ledger (ledger_url): PostgreSQL needs the postgres extra"
        in (run.errors[0])
    )
    assert "pip install 'target-convio[postgres]'" in run.errors[0]
    assert "s3cret" not in run.stderr
    assert emulator.calls == {}


def test_a_ledger_copied_to_another_backend_keeps_every_record_unchanged(
    emulator, config_for, run_target, postgres_ledger_url, tmp_path
) -> None:
    """Moving from SQLite to PostgreSQL and back resends nothing."""
    sqlite_url = f"sqlite:///{tmp_path / 'first.sqlite'}"
    messages = [schema(), donor(1), donor(2, city="Austin")]
    first = run_target(config_for(emulator, ledger_url=sqlite_url), messages)
    assert [r["outcome"] for r in first.rows] == ["created", "created"]
    copied = ledger_command(sqlite_url, "copy", "--to", postgres_ledger_url)
    assert copied == "copied 2 entries and 4 claims to the ledger at --to\n"
    before = writes(emulator)
    on_postgres = run_target(config_for(emulator, ledger_url=postgres_ledger_url), messages)
    assert [r["outcome"] for r in on_postgres.rows] == ["unchanged", "unchanged"]
    back_url = f"sqlite:///{tmp_path / 'back' / 'again.sqlite'}"
    ledger_command(postgres_ledger_url, "copy", "--to", back_url)
    back = run_target(config_for(emulator, ledger_url=back_url), messages)
    assert [r["outcome"] for r in back.rows] == ["unchanged", "unchanged"]
    assert writes(emulator) == before
    assert [r["cons_id"] for r in back.rows] == [r["cons_id"] for r in first.rows]


def test_an_entry_copied_over_another_still_releases_what_both_claimed(
    emulator, config_for, run_target, tmp_path
) -> None:
    """The target's claim rows of a key stay after a copy: the entry lists them, so the key's
    next accepted write gives them up."""
    source, target = (f"sqlite:///{tmp_path / name}" for name in ("a.sqlite", "b.sqlite"))
    run_target(config_for(emulator, ledger_url=source), [schema(), donor(1, email="a@x.org")])
    run_target(config_for(emulator, ledger_url=target), [schema(), donor(1, email="b@x.org")])
    ledger_command(source, "copy", "--to", target)
    config = config_for(emulator, ledger_url=target)
    moved = run_target(config, [schema(), donor(1, email="z@x.org")])
    others = run_target(config, [schema(), donor(2, email="a@x.org"), donor(3, email="b@x.org")])
    assert [r["outcome"] for r in moved.rows] == ["updated"]
    assert [r["outcome"] for r in others.rows] == ["created", "updated"]  # none already_used
