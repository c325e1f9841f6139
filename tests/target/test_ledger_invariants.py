"""One constituent, one key, case by case (docs/ledger.md, "What the ledger guarantees").

Each test is one way the ledger lost a person before (issue 16), on SQLite and on a real
PostgreSQL server, against the emulator over HTTP.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess

import pytest

from target_convio.emulator import Emulator, Faults
from tests.target.conftest import DONOR_SCHEMA, EXE, cli, donor, record, schema, singer_lines
from tests.target.test_ledger import LEDGER_EXE, writes

NULLABLE = {**DONOR_SCHEMA["properties"], "id": {"type": ["integer", "number", "string", "null"]}}
GROUPS = {**DONOR_SCHEMA["properties"], "monthly": {"type": ["boolean", "null"]}}


@pytest.fixture
def sync(emulator, config_for, run_target, ledger_url):
    """Run the target with the ledger: (run, write calls it made); the run must succeed."""

    def run(messages: list[dict], **settings):
        before = writes(emulator)
        outcome = run_target(config_for(emulator, ledger_url=ledger_url, **settings), messages)
        assert outcome.returncode == 0, outcome.stderr
        return outcome, writes(emulator) - before

    return run


def people(emulator: Emulator) -> dict[str, dict]:
    """The emulator's constituents by email."""
    return {c["fields"]["email.primary_address"]: c for c in emulator.constituents()}


def city(emulator: Emulator, cons_id: str) -> str:
    return emulator.store.get(cons_id).fields["primary_address.city"]


# -- 1 and 12: keys ---------------------------------------------------------------------------


def test_a_null_missing_or_blank_key_is_invalid_and_never_written(sync, emulator) -> None:
    keyed = schema(properties=NULLABLE)
    messages = [
        keyed,
        record({"id": None, "email": "a@example.org", "first_name": "A", "last_name": "L"}),
        record({"email": "b@example.org", "first_name": "B", "last_name": "L"}),
        record({"id": "  ", "email": "c@example.org", "first_name": "C", "last_name": "L"}),
    ]
    run, sent = sync(messages)
    assert sent == 0
    assert [r["outcome"] for r in run.rows] == ["invalid"] * 3
    for row in run.rows:
        assert row["errors"] == [
            {"field": "id", "code": "required", "message": "key property is null, missing or blank"}
        ]
    again, sent = sync(messages)
    assert (sent, [r["outcome"] for r in again.rows]) == (0, ["invalid"] * 3)
    assert emulator.constituents() == []


def test_numbers_that_are_equal_are_one_key_and_text_is_another(sync, emulator) -> None:
    keyed = schema(properties=NULLABLE)
    first, _ = sync([keyed, donor(1)])
    moved, sent = sync([keyed, donor(1.0, email="moved@example.org")])
    assert (sent, moved.rows[0]["outcome"]) == (1, "updated")
    assert moved.rows[0]["cons_id"] == first.rows[0]["cons_id"]
    again, sent = sync([keyed, donor(1.00, email="moved@example.org")])
    assert (sent, again.rows[0]["outcome"]) == (0, "unchanged")
    text, sent = sync([keyed, donor("1", email="moved@example.org")])
    assert (sent, text.rows[0]["outcome"]) == (0, "invalid")  # another key: already_used
    assert text.rows[0]["errors"][0]["code"] == "already_used"
    assert len(emulator.constituents()) == 1


# -- 2: a checkpoint's changes in input order ---------------------------------------------------


def test_accepted_failed_accepted_in_one_checkpoint_leaves_no_stale_replay(sync, emulator) -> None:
    emulator.faults = Faults(fail_values=frozenset({"Boston"}))
    run, _ = sync(
        [schema(), donor(1, city="Austin"), donor(1, city="Boston"), donor(1, city="Chicago")],
        max_retries=0,
    )
    assert [r["outcome"] for r in run.rows] == ["created", "failed", "updated"]
    emulator.faults = Faults()
    quiet, sent = sync([schema()])
    assert (quiet.rows, sent) == ([], 0)  # nothing queued: the newest record was accepted
    assert city(emulator, run.rows[0]["cons_id"]) == "Chicago"


def test_failed_accepted_failed_in_one_checkpoint_keeps_the_newest_failure(sync, emulator) -> None:
    emulator.faults = Faults(fail_values=frozenset({"Boston", "Denver"}))
    run, _ = sync(
        [schema(), donor(1, city="Boston"), donor(1, city="Chicago"), donor(1, city="Denver")],
        max_retries=0,
    )
    assert [r["outcome"] for r in run.rows] == ["failed", "created", "failed"]
    emulator.faults = Faults()
    replayed, sent = sync([schema()])
    assert sent == 1
    assert [(r["seq"], r["outcome"]) for r in replayed.rows] == [(None, "updated")]
    assert city(emulator, run.rows[1]["cons_id"]) == "Denver"


# -- 3: a key twice in one run ------------------------------------------------------------------


def test_a_known_key_twice_in_one_run_with_new_emails_stays_one_constituent(sync, emulator) -> None:
    first, _ = sync([schema(), donor(1)])
    run, sent = sync(
        [schema(), donor(1, email="second@example.org"), donor(1, email="third@example.org")]
    )
    assert (sent, [r["outcome"] for r in run.rows]) == (2, ["updated", "updated"])
    assert {r["cons_id"] for r in run.rows} == {first.rows[0]["cons_id"]}
    assert list(people(emulator)) == ["third@example.org"]


def test_a_new_key_twice_in_a_first_run_is_created_once(sync, emulator) -> None:
    run, _ = sync([schema(), donor(5, email="x@example.org"), donor(5, email="y@example.org")])
    assert [r["outcome"] for r in run.rows] == ["created", "updated"]
    assert run.rows[0]["cons_id"] == run.rows[1]["cons_id"]
    assert list(people(emulator)) == ["y@example.org"]


# -- 4: one constituent, one key ----------------------------------------------------------------


def test_an_email_of_another_keys_constituent_is_already_used(sync, emulator) -> None:
    shared = "household@example.org"
    first, _ = sync([schema(), donor(1, email=shared), donor(2, email=shared, first_name="Bo")])
    assert [r["outcome"] for r in first.rows] == ["created", "invalid"]
    (error,) = first.rows[1]["errors"]
    assert (error["field"], error["code"]) == ("primary_email", "already_used")
    assert 'another key ({"id": 1})' in error["message"]
    later, sent = sync([schema(), donor(2, email=shared, first_name="Bo")])  # a later night
    assert (sent, later.rows[0]["outcome"]) == (0, "invalid")
    assert people(emulator)[shared]["fields"]["name.first"] == "First1"  # not overwritten
    own, sent = sync([schema(), donor(1, email=shared), donor(2, email="bo@example.org")])
    assert [r["outcome"] for r in own.rows] == ["unchanged", "created"]
    assert {e: c["fields"]["name.first"] for e, c in people(emulator).items()} == {
        shared: "First1",
        "bo@example.org": "First2",
    }
    again, sent = sync([schema(), donor(1, email=shared), donor(2, email="bo@example.org")])
    assert (sent, [r["outcome"] for r in again.rows]) == (0, ["unchanged", "unchanged"])


def test_an_email_a_key_gave_up_is_free_for_another_key(sync, emulator) -> None:
    sync([schema(), donor(1, email="old@example.org")])
    moved, _ = sync([schema(), donor(1, email="new@example.org")])
    taken, sent = sync(
        [schema(), donor(2, email="old@example.org"), donor(3, email="new@example.org")]
    )
    assert [r["outcome"] for r in moved.rows + taken.rows] == ["updated", "created", "invalid"]
    assert taken.rows[1]["errors"][0]["code"] == "already_used"  # key 1 holds it now
    assert sent == 1
    assert sorted(people(emulator)) == ["new@example.org", "old@example.org"]


def test_a_member_id_of_another_key_is_already_used(sync, emulator) -> None:
    run, _ = sync([schema(), donor(1, member_id="M1"), donor(2, member_id="M1")])
    assert [r["outcome"] for r in run.rows] == ["created", "invalid"]
    assert run.rows[1]["errors"][0]["field"] == "member_id"
    assert len(emulator.constituents()) == 1


# -- 5 and 6: ledger faults ---------------------------------------------------------------------


def hold_the_ledger(ledger_url: str):
    """Another session holding the ledger's write lock (reads still go through)."""
    if ledger_url.startswith("sqlite"):
        connection = sqlite3.connect(ledger_url.removeprefix("sqlite:///"), isolation_level=None)
        connection.execute("BEGIN IMMEDIATE")
        return connection
    import psycopg  # noqa: PLC0415

    connection = psycopg.connect(ledger_url)
    connection.execute("LOCK TABLE target_convio_ledger IN EXCLUSIVE MODE")
    return connection


def test_a_ledger_that_cannot_be_written_stops_the_run_with_every_made_call_rowed(
    emulator, config_for, run_target, ledger_url, tmp_path
) -> None:
    emulator.faults = Faults(latency_ms=20)
    config = config_for(
        emulator, ledger_url=ledger_url, batch_size_rows=10, request_timeout_seconds=2
    )
    messages = [schema(), *(donor(i) for i in range(1, 61)), {"type": "STATE", "value": {"b": 1}}]
    run_target(config, [schema()])  # the ledger exists
    holder = hold_the_ledger(ledger_url)
    try:
        stopped = run_target(config, messages)
    finally:
        holder.close()
    assert stopped.returncode == 1
    assert len(stopped.errors) == 1, stopped.stderr
    assert "target-convio: Cannot write the ledger: OperationalError" in stopped.errors[0]
    assert "Traceback" not in stopped.stderr
    assert stopped.states == []  # no STATE passes a record the ledger did not keep
    rows = stopped.results
    assert writes(emulator) == sum(r["attempts"] for r in rows) > 0
    assert len({r["seq"] for r in rows}) == len(rows)
    history = json.loads(
        cli("--ledger-url", ledger_url, "runs", "--format", "json", exe=LEDGER_EXE).stdout
    )
    newest = history[0]["ended"]
    if ledger_url.startswith("postgresql"):  # its lock held the entries, not the run history
        assert newest == "ledger_error"
    else:  # SQLite's held the whole file: the stopped run could not even start its row
        assert newest == "finished"  # the run before
    again = run_target({**config, "request_timeout_seconds": 30}, messages)
    assert again.returncode == 0, again.stderr
    assert len(emulator.constituents()) == 60  # resent what the ledger missed, no duplicate
    assert len({r["seq"] for r in again.results[len(rows) :]}) == 60


def test_a_postgresql_host_that_never_answers_ends_the_run(
    emulator, config_for, run_target
) -> None:
    import socket  # noqa: PLC0415

    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen()
    port = silent.getsockname()[1]
    try:
        config = config_for(
            emulator,
            ledger_url=f"postgresql://u:pw@127.0.0.1:{port}/ledger",
            request_timeout_seconds=2,
        )
        run = run_target(config, [schema(), donor(1)])
    finally:
        silent.close()
    assert run.returncode == 1
    assert "target-convio: Cannot open the ledger (ledger_url): OperationalError" in run.errors[0]
    assert writes(emulator) == 0


def test_sigterm_while_a_postgresql_lock_is_held_ends_the_run(
    emulator, config_for, run_target, postgres_ledger_url, tmp_path
) -> None:
    import time  # noqa: PLC0415

    import psycopg  # noqa: PLC0415

    config = config_for(emulator, ledger_url=postgres_ledger_url, request_timeout_seconds=5)
    run_target(config, [schema()])
    holder = psycopg.connect(postgres_ledger_url)
    holder.execute("LOCK TABLE target_convio_ledger IN ACCESS EXCLUSIVE MODE")  # reads wait
    watcher = psycopg.connect(postgres_ledger_url, autocommit=True)
    path = tmp_path / "locked.json"
    path.write_text(json.dumps(config))
    process = subprocess.Popen(
        [EXE, "--config", str(path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdin is not None
        process.stdin.write(singer_lines([schema(), donor(1)]))
        process.stdin.flush()
        waiting = "SELECT count(*) FROM pg_locks WHERE NOT granted"
        deadline = time.monotonic() + 30
        while not watcher.execute(waiting).fetchone()[0]:  # the target waits on the lock
            assert time.monotonic() < deadline, "the target never waited on the ledger"
            time.sleep(0.05)
        signalled = time.monotonic()
        process.terminate()
        _, stderr = process.communicate(timeout=30)
        ended = time.monotonic() - signalled
    finally:
        holder.close()
        watcher.close()
        process.kill()
    assert ended < 5 + 2, stderr  # within request_timeout_seconds
    assert process.returncode == 143, stderr
    assert "Cannot read the ledger" in stderr
    assert "Traceback" not in stderr
    assert writes(emulator) == 0


# -- 7: memberships after code 16 ---------------------------------------------------------------


def test_a_constituent_made_anew_after_code_16_gets_every_membership(sync, emulator) -> None:
    keyed = schema(properties=GROUPS)
    first, _ = sync([keyed, donor(1, monthly=True)], group_map={"monthly": 1001})
    emulator.store.remove(first.rows[0]["cons_id"])  # merged away in Luminate
    again, _ = sync([keyed, donor(1, monthly=True, city="Austin")], group_map={"monthly": 1001})
    assert again.rows[0]["outcome"] == "created"
    (made,) = emulator.constituents()
    assert made["groups"] == [1001]
    quiet, sent = sync([keyed, donor(1, monthly=True, city="Austin")], group_map={"monthly": 1001})
    assert (sent, quiet.rows[0]["outcome"]) == (0, "unchanged")


# -- 8: stale replays ---------------------------------------------------------------------------


def test_a_newer_invalid_record_takes_its_keys_replay_out_of_the_queue(sync, emulator) -> None:
    emulator.faults = Faults(fail_values=frozenset({"Boston"}))
    sync([schema(), donor(1, city="Boston")], max_retries=0)
    emulator.faults = Faults()
    newer, sent = sync([schema(), donor(1, email="not an email")])
    assert (sent, [r["outcome"] for r in newer.rows]) == (0, ["invalid"])
    quiet, sent = sync([schema()])
    assert (quiet.rows, sent) == ([], 0)
    assert emulator.constituents() == []


def test_a_replay_queued_under_other_key_properties_is_not_sent(sync, emulator, ledger_url) -> None:
    emulator.faults = Faults(fail_values=frozenset({"Boston"}))
    sync([schema(), donor(1, city="Boston")], max_retries=0)
    emulator.faults = Faults()
    rekeyed = schema(keys=["email"])
    run, sent = sync([rekeyed, donor(1, city="Chicago")])
    assert sent == 0  # the email is the old key's until the stream is forgotten
    assert [(r["seq"], r["outcome"]) for r in run.rows] == [(1, "invalid"), (None, "skipped")]
    assert 'another key ({"id": 1})' in run.rows[0]["errors"][0]["message"]
    assert "queued under other key properties" in run.rows[1]["message"]
    assert "forgot 1 records" in ledger_tool("--ledger-url", ledger_url, "forget", "donors").stdout
    made, sent = sync([rekeyed, donor(1, city="Chicago")])
    assert (sent, [r["outcome"] for r in made.rows]) == (1, ["created"])
    assert city(emulator, made.rows[0]["cons_id"]) == "Chicago"
    quiet, sent = sync([rekeyed])
    assert (quiet.rows, sent) == ([], 0)


# -- 9, 10: URLs ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://convio:Kw0rd@x@127.0.0.1:54329/ledger",
        "postgresql://convio:Kw0rd:x@127.0.0.1:54329/ledger",
        "postgresql://convio:Kw0rd/x@127.0.0.1:54329/ledger",
    ],
)
def test_a_password_with_reserved_characters_is_refused_without_showing_it(
    emulator, config_for, run_target, url
) -> None:
    run = run_target(config_for(emulator, ledger_url=url), [schema(), donor(1)])
    assert run.returncode == 1
    assert "percent-encode it" in run.errors[0]
    assert "Kw0rd" not in run.stderr + run.stdout
    assert emulator.calls == {}
    tool = ledger_tool("--ledger-url", url, "counts")
    assert tool.returncode == 1
    assert "percent-encode it" in tool.stderr
    assert "Kw0rd" not in tool.stderr + tool.stdout


def test_a_percent_encoded_password_with_reserved_characters_works(
    emulator, config_for, run_target, postgres_server, postgres_ledger_url
) -> None:
    import psycopg  # noqa: PLC0415

    with psycopg.connect(postgres_server.get_uri(), autocommit=True) as connection:
        connection.execute("CREATE ROLE ledger_user LOGIN SUPERUSER PASSWORD 'p@ss:w/rd'")
    database = postgres_ledger_url.rsplit("/", 1)[1]
    host = postgres_ledger_url.split("@", 1)[1].rsplit("/", 1)[0]
    url = f"postgresql://ledger_user:p%40ss%3Aw%2Frd@{host}/{database}"
    run = run_target(config_for(emulator, ledger_url=url), [schema(), donor(1)])
    assert run.returncode == 0, run.stderr
    assert run.rows[0]["outcome"] == "created"
    assert "p@ss" not in run.stderr


@pytest.mark.parametrize("url", ["sqlite://", "sqlite:///:memory:"])
def test_an_in_memory_sqlite_ledger_is_refused_before_any_call(
    emulator, config_for, run_target, url
) -> None:
    run = run_target(config_for(emulator, ledger_url=url), [schema(), donor(1)])
    assert run.returncode == 1
    assert "in-memory SQLite database is gone when the run ends" in run.errors[0]
    assert emulator.calls == {}


# -- 11: nothing a server answers, and no stream name, makes a commit fail ----------------------


def test_long_stream_names_and_long_answers_are_kept(sync, emulator) -> None:
    long_stream = "s" * 3000
    long_cons_id = "9" * 3000
    emulator.store.add({"email.primary_address": "long@example.org"}, cons_id=long_cons_id)
    keyed = schema(stream=long_stream)
    messages = [keyed, record({"id": 1, "cons_id": long_cons_id, "first_name": "L"}, long_stream)]
    run, _ = sync(messages)
    assert [(r["outcome"], r["cons_id"]) for r in run.rows] == [("updated", long_cons_id)]
    again, sent = sync(messages)
    assert (sent, again.rows[0]["outcome"]) == (0, "unchanged")


# -- 12: the rest -------------------------------------------------------------------------------


def test_a_compare_dry_run_neither_creates_nor_upgrades_a_ledger(
    emulator, config_for, run_target, tmp_path
) -> None:
    path = tmp_path / "nowhere" / "ledger.sqlite"
    config = config_for(emulator, ledger_url=f"sqlite:///{path}", dry_run="compare")
    run = run_target(config, [schema(), donor(1)])
    assert run.returncode == 0, run.stderr
    assert not path.parent.exists()
    old = tmp_path / "old.sqlite"
    with sqlite3.connect(old) as connection:
        connection.executescript(
            "CREATE TABLE target_convio_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);"
            "INSERT INTO target_convio_meta VALUES ('schema_version', '2');"
        )
    run = run_target({**config, "ledger_url": f"sqlite:///{old}"}, [schema(), donor(1)])
    assert run.returncode == 0, run.stderr
    assert "does not upgrade it" in run.stderr
    with sqlite3.connect(old) as connection:
        assert connection.execute("SELECT value FROM target_convio_meta").fetchall() == [("2",)]


def test_a_damaged_entry_is_resent_not_a_failure(
    emulator, config_for, run_target, tmp_path
) -> None:
    path = tmp_path / "ledger.sqlite"
    config = config_for(emulator, ledger_url=f"sqlite:///{path}")
    messages = [schema(), donor(1), donor(2)]
    run_target(config, messages)
    with sqlite3.connect(path) as connection:
        connection.execute(
            "UPDATE target_convio_ledger SET confirmed_at = 'yesterday-ish' WHERE record_key LIKE "
            "'%1}'"
        )
        connection.execute(
            "UPDATE target_convio_ledger SET memberships = '{broken' WHERE record_key LIKE '%2}'"
        )
    again = run_target(config, messages)
    assert again.returncode == 0, again.stderr
    assert [r["outcome"] for r in again.rows] == ["updated", "updated"]
    assert [r["outcome"] for r in run_target(config, messages).rows] == ["unchanged"] * 2


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"group_map": {"a": 1001, "b": 1001}}, "group_map maps one id from two properties"),
        ({"group_map": {"a": 1001}, "add_group_ids": [1001]}, "add_group_ids adds every"),
        ({"add_group_ids": [12]}, "add_group_ids names groups below 1000"),
        ({"interest_map": {"a": 5, "b": 5}}, "interest_map maps one id from two properties"),
    ],
)
def test_conflicting_membership_settings_are_refused_before_any_call(
    emulator, config_for, run_target, settings, message
) -> None:
    run = run_target(config_for(emulator, **settings), [schema(), donor(1)])
    assert run.returncode == 1
    assert len(run.errors) == 1
    assert message in run.errors[0]
    assert emulator.calls == {}


def ledger_tool(*args: str) -> subprocess.CompletedProcess:
    return cli(*args, exe=LEDGER_EXE)


@pytest.mark.parametrize(("signum", "after"), [(15, 0.05), (2, 0.3), (15, 0.8), (2, 1.5)])
def test_a_signal_while_the_target_starts_is_a_clean_stop(signum, after, tmp_path) -> None:
    import time  # noqa: PLC0415

    config = tmp_path / "config.json"
    config.write_text(
        json.dumps({"api_url": "http://127.0.0.1:9/SRConsAPI", "api_key": "k"}).replace(
            "}", ', "login_name": "n", "login_password": "p"}'
        )
    )
    process = subprocess.Popen(
        [EXE, "--config", str(config)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    time.sleep(after)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=30)
    if process.returncode == -signum:
        # On a loaded machine the signal can come before Python runs the target's first line:
        # the system ends the process then, before it has done or printed anything.
        assert stderr == ""
        return
    assert "Traceback" not in stderr
    assert "KeyboardInterrupt" not in stderr
    assert process.returncode == 128 + signum, stderr


# -- the ledger tool stays honest -------------------------------------------------------------


def test_looking_at_a_ledger_that_is_not_there_creates_nothing(tmp_path) -> None:
    url = f"sqlite:///{tmp_path / 'none' / 'ledger.sqlite'}"
    for command in (["counts"], ["replays"], ["forget", "donors"]):
        result = ledger_tool("--ledger-url", url, *command)
        assert result.returncode == 1
        assert result.stderr == "target-convio-ledger: there is no ledger at --ledger-url\n"
    assert list(tmp_path.iterdir()) == []


def test_the_ledger_tools_output_survives_a_closed_pipe_and_escapes_names(
    ledger_url, tmp_path
) -> None:
    from target_convio.ledger import FAILED, Change, Ledger  # noqa: PLC0415

    ledger = Ledger.open(ledger_url, "https://example.org/site/SRConsAPI")
    stream = "donors\x1b[31m"
    queued = [
        Change(stream, f"{i:064d}", FAILED, "f" * 64, replay={"params": {}, "key": {"id": i}})
        for i in range(3000)
    ]
    ledger.commit(queued, "run-1")
    ledger.close()
    counts = ledger_tool("--ledger-url", ledger_url, "counts")
    assert "donors\\x1b[31m" in counts.stdout
    assert "\x1b" not in counts.stdout
    process = subprocess.Popen(
        [LEDGER_EXE, "--ledger-url", ledger_url, "replays"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    assert process.stdout.readline().startswith("donors\\x1b[31m  key {")
    process.stdout.close()  # as `| head -1` does
    assert process.stderr is not None
    stderr = process.stderr.read()
    process.stderr.close()
    assert process.wait(30) == 141
    assert stderr == ""
