"""docs/guarantees.md's promises under hostile answers, hostile input and crashes, case by case."""

from __future__ import annotations

import json
import os
import resource
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from target_convio.emulator import Emulator, Faults, Site
from tests.conftest import site_with
from tests.hostile import Canned, HostileServer
from tests.target.conftest import DONOR_MAP, EXE, cli, donor, record, schema, singer_lines, state

CREATES = frozenset({"create"})
LOST_ANSWERS = {
    "answer past the timeout": (
        Faults(slow_rate=1.0, slow_ms=1500, methods=CREATES),
        {"request_timeout_seconds": 0.5},
    ),
    "reset after the write": (Faults(lost_rate=1.0, methods=CREATES), {}),
}


@pytest.mark.parametrize("unique_email", [False, True], ids=["duplicate emails", "unique email"])
@pytest.mark.parametrize("case", list(LOST_ANSWERS))
def test_a_create_whose_answer_is_lost_is_looked_up_never_sent_twice(
    make_api, config_for, run_target, case: str, unique_email: bool
) -> None:
    faults, settings = LOST_ANSWERS[case]
    emulator: Emulator = make_api(site_with(unique_email=unique_email), faults=faults).emulator
    messages = [schema(), donor(1), donor(2, member_id="M2"), donor(3)]
    config = config_for(emulator, sync_mode="create_only", max_retries=3, **settings)
    run = run_target(config, messages)
    assert run.returncode == 0, run.stderr
    stored = {r["fields"]["email.primary_address"]: r["cons_id"] for r in emulator.constituents()}
    assert Counter(r["fields"]["email.primary_address"] for r in emulator.constituents()) == {
        f"donor{i}@example.org": 1 for i in (1, 2, 3)
    }
    assert [(r["outcome"], r["code"], r["cons_id"]) for r in run.rows] == [
        ("created", None, stored[f"donor{i}@example.org"]) for i in (1, 2, 3)
    ]
    assert all("the answer to create was lost" in r["message"] for r in run.rows)
    assert emulator.calls["create"] == 3  # each sent once, then found with getUser
    assert emulator.calls["getUser"] == 3


def test_no_empty_checkpoint_trails_a_full_one(emulator, config_for, run_target) -> None:
    messages = [schema()]
    for i in range(1, 5):
        messages += [donor(i), state({"bookmarks": {"donors": {"id": i}}})]
    run = run_target(config_for(emulator, batch_size_rows=2), messages)
    assert run.returncode == 0, run.stderr
    assert [len(s["target_convio"]["results"]) for s in run.states] == [2, 2, 0]
    assert run.states[-1]["bookmarks"] == {"donors": {"id": 4}}  # the newer tap state
    quiet = run_target(config_for(emulator, batch_size_rows=2), [schema(), *messages[1::2]])
    assert [len(s["target_convio"]["results"]) for s in quiet.states] == [2, 2]


def test_text_utf8_cannot_carry_gets_an_invalid_row_and_the_run_goes_on(
    emulator, config_for, tmp_path
) -> None:
    properties = {"id": {"type": "string"}, "email": {"type": "string"}}
    properties |= {"first_name": {"type": "string"}, "last_name": {"type": "string"}}
    names = {"first_name": "A", "last_name": "B"}
    lines = [
        json.dumps(schema(properties=properties)).encode(),
        json.dumps(record({"id": "\ud800", "email": "a@example.org", **names})).encode(),
        b'{"type": "RECORD", "stream": "donors", "record": {"id": "2", "email": "caf\xe9@x.org"}}',
        json.dumps(record({"id": "3", "email": "c@example.org", **names})).encode(),
    ]
    config = config_for(emulator)
    (tmp_path / "config.json").write_text(json.dumps(config))
    locales = [{"LC_ALL": "C"}, {"LC_ALL": "C.UTF-8", "PYTHONIOENCODING": "utf-8:strict"}]
    for env, outcome in zip(locales, ["created", "unchanged"], strict=True):
        Path(config["results_path"]).unlink(missing_ok=True)
        result = subprocess.run(
            [EXE, "--config", str(tmp_path / "config.json")],
            input=b"\n".join(lines) + b"\n",
            capture_output=True,
            env={**os.environ, **env},
            timeout=60,
            check=False,
        )
        stderr = result.stderr.decode(errors="replace")
        assert result.returncode == 0, stderr
        rows = [json.loads(line) for line in Path(config["results_path"]).read_text().splitlines()]
        assert [(r["key"], r["outcome"]) for r in rows] == [
            ({"id": "\\ud800"}, "invalid"),
            ({"id": "2"}, "invalid"),
            ({"id": "3"}, outcome),
        ]
        assert "not valid Unicode" in rows[0]["message"]
        assert rows[1]["errors"][0]["field"] == "email.primary_address"
        (state_line,) = result.stdout.decode().splitlines()
        assert [r["key"] for r in json.loads(state_line)["target_convio"]["results"]] == [
            r["key"] for r in rows
        ]


def test_a_results_file_torn_by_kill_9_is_repaired_before_appending(
    emulator, config_for, tmp_path
) -> None:
    # Slow: 40,000 records, so that a kill -9 can land while their rows are being appended.
    config = config_for(emulator, dry_run=True, batch_size_rows=50_000)
    (tmp_path / "config.json").write_text(json.dumps(config))
    results = Path(config["results_path"])
    stdin = singer_lines([schema(), *(donor(i) for i in range(40_000))])
    for _ in range(10):  # kill -9 while the checkpoint's rows are being appended
        results.unlink(missing_ok=True)
        process = subprocess.Popen(
            [EXE, "--config", str(tmp_path / "config.json")],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert process.stdin is not None
        process.stdin.write(stdin)
        process.stdin.close()
        while process.poll() is None and not (results.exists() and results.stat().st_size):
            pass
        process.kill()
        process.wait()
        torn = results.read_bytes()
        if torn and not torn.endswith(b"\n"):
            break
    assert torn
    assert not torn.endswith(b"\n"), "no kill landed inside the append"
    whole_rows = torn.count(b"\n")
    rerun = subprocess.run(
        [EXE, "--config", str(tmp_path / "config.json")],
        input=singer_lines([schema(), donor(1)]),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert rerun.returncode == 0, rerun.stderr
    lines = results.read_text().splitlines()
    rows = [json.loads(line) for line in lines]  # every line is a whole row again
    assert len(rows) == whole_rows + 1
    assert rows[-1]["key"] == {"id": 1}
    (aside,) = results.parent.glob("results.jsonl.torn-*")
    assert torn.endswith(aside.read_bytes())
    assert "partial row" in rerun.stderr


def limit_memory() -> None:
    gigabyte = 1024**3
    resource.setrlimit(resource.RLIMIT_AS, (gigabyte, gigabyte))


def test_numbers_that_would_expand_to_millions_of_digits_are_invalid(
    emulator, config_for, tmp_path
) -> None:
    properties = {"id": {"type": "integer"}, "email": {"type": "string"}}
    properties |= {"first_name": {"type": "string"}, "last_name": {"type": "string"}}
    properties["amount"] = {"type": ["number", "null"]}
    donor_text = '"email": "d{0}@x.org", "first_name": "A", "last_name": "B"'
    amounts = ["1e-999999999", "1e999999999", "9" * 5000, "12.50", "1E+2", "0.000001"]
    lines = [json.dumps(schema(properties=properties))] + [
        f'{{"type": "RECORD", "stream": "donors", "record": {{"id": {i}, '
        f'{donor_text.format(i)}, "amount": {amount}}}}}'
        for i, amount in enumerate(amounts, 1)
    ]
    config = config_for(emulator, field_map={**DONOR_MAP, "amount": "custom_string1"})
    (tmp_path / "config.json").write_text(json.dumps(config))
    result = subprocess.run(
        [EXE, "--config", str(tmp_path / "config.json")],
        input="\n".join(lines) + "\n",
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=limit_memory,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    rows = [json.loads(line) for line in Path(config["results_path"]).read_text().splitlines()]
    assert [r["outcome"] for r in rows] == ["invalid"] * 3 + ["created"] * 3
    assert all(r["errors"][0]["field"] == "custom_string1" for r in rows[:3])
    assert all("digits" in r["message"] for r in rows[:3]), [r["message"] for r in rows]
    stored = sorted(c["fields"].get("custom_string1") for c in emulator.constituents())
    assert stored == ["0.000001", "100", "12.50"]


BATCH = {
    "type": "BATCH",
    "stream": "donors",
    "encoding": {"format": "jsonl", "compression": "gzip"},
    "manifest": ["file:///tmp/donors-batch-1.json.gz"],
}


@pytest.mark.parametrize(
    ("message", "error"),
    [
        (BATCH, "BATCH messages are not supported"),
        ({**BATCH, "stream": "nope"}, "BATCH messages are not supported"),
        (
            {"type": "ACTIVATE_VERSION", "stream": "nope", "version": 1},
            "ACTIVATE_VERSION for stream 'nope' before its SCHEMA",
        ),
    ],
    ids=["batch", "batch for an unknown stream", "activate_version for an unknown stream"],
)
def test_messages_the_target_cannot_load_stop_it_after_what_came_before(
    emulator, config_for, run_target, message: dict, error: str
) -> None:
    run = run_target(config_for(emulator), [schema(), donor(1), donor(2), message, donor(3)])
    assert run.returncode == 1
    assert len(run.errors) == 1, run.stderr
    assert error in run.errors[0]
    assert "Traceback" not in run.stderr
    assert [(r["seq"], r["outcome"]) for r in run.results] == [(1, "created"), (2, "created")]
    assert [r["seq"] for r in run.rows] == [1, 2]  # and their STATE line is out
    assert emulator.calls["createOrUpdate"] == 2


FIELDS_JSON = json.dumps(
    {
        "listConsFieldsResponse": {
            "field": [
                {"name": name, "valueType": "TEXT"}
                for name in ("name.first", "name.last", "email.primary_address")
            ]
        }
    }
).encode()


ECHOES = {
    "url-encoded": b'{"errorResponse": {"code": "%s", "message": "Bad request: {{request}}"}}',
    "json-escaped": b'{"errorResponse": {"code": "%s", "message": "Bad request: {{json}}"}}',
    "xml-escaped": b"<errorResponse><code>%s</code><message>Bad: {{xml}}</message></errorResponse>",
}


@pytest.mark.parametrize("echo", list(ECHOES))
@pytest.mark.parametrize("status", [403, 500])
def test_a_server_that_echoes_the_request_leaks_no_secret(
    config_for, run_target, emulator, echo: str, status: int
) -> None:
    code = b"22" if status == 403 else b"1"

    def answer(number: int) -> Canned:
        if number == 1:
            return Canned(200, FIELDS_JSON)
        return Canned(status, ECHOES[echo] % code)

    secrets = {"api_key": 'k\u00e9y+/"&<x>', "login_password": "pa ss%w&rd<\u00fc>"}
    with HostileServer(answer) as server:
        config = {
            **config_for(emulator, response_format="json", max_retries=1, field_map={}),
            "api_url": server.url,
            **secrets,
        }
        messages = [schema(), *(donor(i, email=None, member_id=f"M{i}") for i in (1, 2))]
        run = run_target(config, messages)  # which checks every output for the secrets
    assert run.returncode == 0, run.stderr
    assert [r["outcome"] for r in run.rows] == (
        ["rejected"] * 2 if status == 403 else ["failed"] * 2
    )
    assert "[redacted]" in run.rows[0]["message"]
    assert "apiuser" in run.rows[0]["message"]  # what is not secret is left alone


def test_a_results_file_on_a_full_disk_stops_with_one_clear_line(
    emulator, config_for, tmp_path
) -> None:
    config = config_for(emulator, results_path="/dev/full")  # reads as endless zeros
    (tmp_path / "config.json").write_text(json.dumps(config))
    run = cli("--config", str(tmp_path / "config.json"), stdin=singer_lines([schema(), donor(1)]))
    assert run.returncode == 1
    errors = [line for line in run.stderr.splitlines() if "| ERROR" in line]
    assert len(errors) == 1, run.stderr
    assert "Cannot write results: " in errors[0]
    assert "No space left on device" in errors[0]
    assert "Traceback" not in run.stderr
    assert run.stdout == ""


@pytest.mark.parametrize("value", [5, "bookmarks", [1, 2], None])
def test_a_tap_state_that_is_not_an_object_is_ignored_with_a_warning(
    emulator, config_for, run_target, value: object
) -> None:
    messages = [schema(), state({"bookmarks": {"donors": 1}}), donor(1)]
    messages += [{"type": "STATE", "value": value}, donor(2)]
    run = run_target(config_for(emulator), messages)
    assert run.returncode == 0, run.stderr
    assert [r["outcome"] for r in run.rows] == ["created", "created"]
    assert run.states[-1]["bookmarks"] == {"donors": 1}  # the last state that was an object
    assert "STATE message whose value is not an object" in run.stderr


def test_stdout_closed_early_loses_no_row(emulator, config_for, tmp_path) -> None:
    config = config_for(emulator, batch_size_rows=2)
    (tmp_path / "config.json").write_text(json.dumps(config))
    process = subprocess.Popen(
        [EXE, "--config", str(tmp_path / "config.json")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdout.close()  # the reader of STATE lines is gone before the first one
    _, stderr = process.communicate(singer_lines([schema(), *(donor(i) for i in range(1, 11))]))
    assert process.returncode == 1
    rows = [json.loads(line) for line in Path(config["results_path"]).read_text().splitlines()]
    assert [r["seq"] for r in rows] == list(range(1, 11))
    errors = [line for line in stderr.splitlines() if "| ERROR" in line]
    assert len(errors) == 1, stderr
    assert "stdout was closed" in errors[0]
    assert "Traceback" not in stderr
    assert "BrokenPipeError" not in stderr


@pytest.mark.parametrize("email", ["not-an-email", "a@b", "a b@c.org", "@x.org", "a@@b.org"])
def test_an_impossible_email_is_invalid_without_a_call(
    emulator, config_for, run_target, email: str
) -> None:
    run = run_target(config_for(emulator), [schema(), donor(1, email=email), donor(2)])
    assert run.returncode == 0, run.stderr
    assert next((r["outcome"], r["errors"][:1]) for r in run.rows) == (
        "invalid",
        [
            {
                "field": "email.primary_address",
                "code": "invalid",
                "message": f"'{email}' is not an email address",
            }
        ],
    )
    assert run.rows[1]["outcome"] == "created"
    assert emulator.calls["createOrUpdate"] == 1


RECORDED = Path(__file__).resolve().parents[1] / "data" / "listUserFields-recorded-2011.xml"


@pytest.mark.parametrize("response_format", ["xml", "json"])
def test_a_real_sites_field_listing_works(config_for, run_target, response_format: str) -> None:
    site = Site.default().with_listing(RECORDED)
    with Emulator(site) as emulator:
        config = config_for(emulator, sync_mode="create_only", response_format=response_format)
        messages = [
            schema(),
            donor(1),
            donor(2, user_name="ada_l"),
            donor(3, user_name="bad name!"),
        ]
        messages.append(donor(4, gender="anything"))  # TEXT(20) on this site, not a choice
        run = run_target(config, messages)
        stored = len(emulator.constituents())
    assert run.returncode == 0, run.stderr
    outcomes = [(r["outcome"], r["code"]) for r in run.rows]
    assert outcomes == [("created", None), ("created", None), ("rejected", "22"), ("created", None)]
    assert run.rows[2]["errors"][0]["field"] == "user_name"
    assert run.rows[2]["message"].startswith(
        'One or more attributes failed validation: "User Name" Invalid characters in User Name'
    )
    assert stored == 3
    warnings = [line for line in run.stderr.splitlines() if "sign-up form" in line]
    assert len(warnings) == 1
    assert "user_name and user_password" in warnings[0]
