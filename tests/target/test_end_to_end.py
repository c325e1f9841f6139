"""target-convio as a subprocess against the emulator: outcomes, codes, STATE, results file."""

from __future__ import annotations

import pytest

from target_convio.emulator import Emulator, Faults
from tests.conftest import site_with
from tests.target.conftest import donor, record, schema, state

SEEDS = [
    {"cons_id": "501", "fields": {"email.primary_address": "twin@example.org"}},
    {"cons_id": "502", "fields": {"email.primary_address": "twin@example.org"}},
    {"cons_id": "503", "member_id": "DUP", "fields": {"email.primary_address": "d1@example.org"}},
    {"cons_id": "504", "member_id": "DUP", "fields": {"email.primary_address": "d2@example.org"}},
    {
        "cons_id": "505",
        "fields": {"email.primary_address": "owner@example.org", "user_name": "taken"},
    },
    {"cons_id": "506", "member_id": "M506", "fields": {"email.primary_address": "m@example.org"}},
    {
        "cons_id": "507",
        "fields": {
            "email.primary_address": "update@example.org",
            "name.first": "Old",
            "name.last": "Name",
        },
    },
]

# (record fields beyond donor(i), expected outcome, expected code, expected errors[0] (field, code))
MIXED = [
    ({}, "created", None, None),
    ({"email": "update@example.org"}, "updated", None, None),
    ({"email": "twin@example.org"}, "rejected", "8", ("primary_email", "conflicting_data")),
    ({"member_id": "DUP"}, "rejected", "15", ("global_error", "conflicting_data")),
    ({"user_name": "taken"}, "rejected", "12", ("user_name", "already_exists")),
    (
        {"member_id": "M506", "email": "owner@example.org"},
        "rejected",
        "13",
        ("primary_email", "already_exists"),
    ),
    ({"cons_id": "999999", "email": None}, "rejected", "16", ("global_error", "not_found")),
    ({"last_name": None}, "rejected", "10", ("global_error", "required")),
    ({"user_name": "no spaces!"}, "rejected", "22", ("user_name", "invalid")),
    ({"email": "not-an-email"}, "invalid", None, ("email.primary_address", "invalid")),
    ({"first_name": "Bell\x07"}, "rejected", "35", ("global_error", "invalid")),
    ({"gender": "robot"}, "invalid", None, ("gender", "invalid")),
    ({"first_name": "x" * 51}, "invalid", None, ("name.first", "max_length")),
    ({"email": None}, "invalid", None, ("global_error", "required")),
    ({"birth_date": "31/31/2020"}, "invalid", None, ("birth_date", "invalid")),
    # Another key with donor 1's email would overwrite donor 1's constituent: not sent.
    (
        {"email": "donor1@example.org", "city": "Austin"},
        "invalid",
        None,
        ("primary_email", "already_used"),
    ),
]


@pytest.mark.parametrize("response_format", ["xml", "json"])
def test_mixed_stream_every_outcome_and_code(
    make_api, config_for, run_target, response_format: str
) -> None:
    emulator: Emulator = make_api(site_with(constituents=SEEDS)).emulator
    config = config_for(emulator, response_format=response_format, batch_size_rows=5)
    messages = [schema()] + [donor(i, **fields) for i, (fields, *_) in enumerate(MIXED, 1)]
    run = run_target(config, messages)
    assert run.returncode == 0, run.stderr
    rows = run.rows
    assert [r["seq"] for r in rows] == list(range(1, len(MIXED) + 1))
    for row, (_, outcome, code, error) in zip(rows, MIXED, strict=True):
        assert (row["seq"], row["outcome"], row["code"]) == (row["seq"], outcome, code)
        assert row["stream"] == "donors"
        assert row["key"] == {"id": row["seq"]}
        if error is None:
            assert row["errors"] == []
            assert row["cons_id"]
            assert row["attempts"] == 1
        else:
            assert (row["errors"][0]["field"], row["errors"][0]["code"]) == error
            assert row["errors"][0]["message"]
            assert row["cons_id"] is None
            assert row["attempts"] == (1 if outcome == "rejected" else 0)
    assert rows[1]["cons_id"] == "507"
    assert run.results == rows
    final = run.states[-1]["target_convio"]["summary"]
    assert final == {
        "created": 1,
        "updated": 1,
        "unchanged": 0,
        "invalid": 6,
        "rejected": 8,
        "failed": 0,
        "skipped": 0,
        "by_code": {"10": 1, "12": 1, "13": 1, "15": 1, "16": 1, "22": 1, "35": 1, "8": 1},
    }
    # Records refused before sending cost no call: 10 calls for 16 records.
    assert emulator.calls == {"listUserFields": 1, "createOrUpdate": 10}
    stored = {r["cons_id"]: r for r in emulator.constituents()}
    assert "primary_address.city" not in stored[rows[0]["cons_id"]]["fields"]
    assert stored["507"]["fields"]["name.first"] == "First2"


def test_state_lines_pass_tap_state_through_at_each_checkpoint(
    emulator, config_for, run_target
) -> None:
    messages = [
        schema(),
        state({"bookmarks": {"donors": {"v": 0}}}),
        donor(1),
        donor(2),
        state({"bookmarks": {"donors": {"v": 2}}}),
        donor(3),
        state({"bookmarks": {"donors": {"v": 3}}, "currently_syncing": "donors"}),
        donor(4),
        donor(5),
        state({"bookmarks": {"donors": {"v": 5}}}),
    ]
    run = run_target(config_for(emulator, batch_size_rows=2), messages)
    assert run.returncode == 0, run.stderr
    taps = [{k: v for k, v in s.items() if k != "target_convio"} for s in run.states]
    assert taps == [
        {"bookmarks": {"donors": {"v": 0}}},
        {"bookmarks": {"donors": {"v": 3}}, "currently_syncing": "donors"},
        {"bookmarks": {"donors": {"v": 5}}},
    ]
    ours = [s["target_convio"] for s in run.states]
    assert [o["checkpoint"] for o in ours] == [1, 2, 3]
    assert [[r["seq"] for r in o["results"]] for o in ours] == [[1, 2], [3, 4], [5]]
    assert [o["summary"]["created"] for o in ours] == [2, 4, 5]


def test_a_stream_without_tap_state_still_gets_state_lines(
    emulator, config_for, run_target
) -> None:
    run = run_target(
        config_for(emulator, batch_size_rows=3), [schema()] + [donor(i) for i in range(1, 8)]
    )
    assert run.returncode == 0, run.stderr
    assert [list(s) for s in run.states] == [["target_convio"]] * 3
    assert [len(s["target_convio"]["results"]) for s in run.states] == [3, 3, 1]


def test_no_records_at_all_still_ends_with_a_state_line(emulator, config_for, run_target) -> None:
    run = run_target(config_for(emulator), [schema(), state({"bookmarks": {"x": 1}})])
    assert run.returncode == 0, run.stderr
    assert run.states == [
        {
            "bookmarks": {"x": 1},
            "target_convio": {
                "checkpoint": 1,
                "summary": {
                    "created": 0,
                    "updated": 0,
                    "unchanged": 0,
                    "invalid": 0,
                    "rejected": 0,
                    "failed": 0,
                    "skipped": 0,
                    "by_code": {},
                },
                "results": [],
            },
        }
    ]


def test_one_result_per_record_over_many_checkpoints_and_streams(
    emulator, config_for, run_target
) -> None:
    messages = [schema("donors"), schema("volunteers")]
    for i in range(1, 121):
        messages.append(donor(i))
        messages.append(
            record(
                {"id": i, "email": f"vol{i}@example.org", "first_name": "V", "last_name": "L"},
                "volunteers",
            )
        )
    run = run_target(config_for(emulator, batch_size_rows=25, max_concurrency=8), messages)
    assert run.returncode == 0, run.stderr
    for stream in ("donors", "volunteers"):
        seqs = [r["seq"] for r in run.rows if r["stream"] == stream]
        assert sorted(seqs) == list(range(1, 121))
    assert len(run.results) == 240
    assert len(emulator.constituents()) == 240
    assert len(run.states) == 240 // 25 + 1


def test_transient_failures_that_outlast_retries_are_failed_rows(
    emulator, config_for, run_target
) -> None:
    emulator.faults = Faults(http_503_rate=1.0, methods=frozenset({"createOrUpdate"}))
    run = run_target(
        config_for(emulator, max_retries=1, max_failure_rate=1.0), [schema(), donor(1), donor(2)]
    )
    assert run.returncode == 0, run.stderr
    assert [(r["outcome"], r["code"], r["attempts"]) for r in run.rows] == [
        ("failed", None, 2),
        ("failed", None, 2),
    ]
    assert run.rows[0]["errors"] == [
        {"field": "global_error", "code": "unknown_error", "message": run.rows[0]["message"]}
    ]
    assert "HTTP 503" in run.rows[0]["message"]
    assert emulator.calls["createOrUpdate"] == 4


def test_transient_faults_are_recovered(emulator, config_for, run_target) -> None:
    emulator.faults = Faults(
        error_rate=0.3, reset_rate=0.1, seed=3, methods=frozenset({"createOrUpdate"})
    )
    run = run_target(
        config_for(emulator, max_retries=8), [schema()] + [donor(i) for i in range(1, 41)]
    )
    assert run.returncode == 0, run.stderr
    assert {r["outcome"] for r in run.rows} == {"created"}
    assert sum(r["attempts"] for r in run.rows) == emulator.calls["createOrUpdate"] > 40
    assert len(emulator.constituents()) == 40


def test_secrets_never_reach_stdout_stderr_or_results(make_api, config_for, run_target) -> None:
    key, password = "Sekr1t-K3y-☃", "P@ss&w=rd-☃"
    site = site_with(api_keys=[key], api_users=[{"login_name": "u", "login_password": password}])
    emulator = make_api(site).emulator
    emulator.faults = Faults(error_rate=0.3, seed=2, methods=frozenset({"createOrUpdate"}))
    config = config_for(
        emulator,
        api_key=key,
        login_name="u",
        login_password=password,
        max_retries=1,
        max_failure_rate=1.0,
    )
    messages = [schema()] + [donor(i) for i in range(1, 15)] + [donor(99, email="bad")]
    run = run_target(config, messages, env={"TARGET_CONVIO_LOGLEVEL": "DEBUG"})
    assert run.returncode == 0, run.stderr
    assert "retrying" in run.stderr
    wrong = run_target({**config, "login_password": password + "x"}, messages)
    assert wrong.returncode == 1
    for text in (run.stdout, run.stderr, str(run.results), wrong.stdout, wrong.stderr):
        for secret in (key, password, password + "x", "P%40ss", "Sekr1t-K3y-%E2"):
            assert secret not in text


def test_stream_maps_rename_instead_of_field_map(emulator, config_for, run_target) -> None:
    """The stream_maps example of docs/settings.md."""
    config = config_for(
        emulator,
        field_map={},
        stream_maps={
            "donors": {
                "name.first": "first_name",
                "name.last": "last_name",
                "primary_email": "email",
                "first_name": "__NULL__",
                "last_name": "__NULL__",
                "email": "__NULL__",
            }
        },
    )
    run = run_target(config, [schema(), donor(1)])
    assert run.returncode == 0, run.stderr
    assert run.rows[0]["outcome"] == "created"
    assert emulator.constituents()[0]["fields"]["name.first"] == "First1"
    assert "ignoring properties" in run.stderr  # id matches no field
    assert "first_name" not in run.stderr.split("ignoring properties")[1].splitlines()[0]


@pytest.mark.parametrize("flattening", [False, True])
def test_nested_objects_map_with_or_without_flattening(
    emulator, config_for, run_target, flattening: bool
) -> None:
    properties = {
        "id": {"type": "integer"},
        "primary_email": {"type": "string"},
        "name": {
            "type": "object",
            "properties": {"first": {"type": "string"}, "last": {"type": "string"}},
        },
    }
    config = config_for(
        emulator, field_map={}, flattening_enabled=flattening, flattening_max_depth=3
    )
    run = run_target(
        config,
        [
            schema(properties=properties),
            record(
                {
                    "id": 1,
                    "primary_email": "n@example.org",
                    "name": {"first": "Nested", "last": "Name"},
                }
            ),
        ],
    )
    assert run.returncode == 0, run.stderr
    assert run.rows[0]["outcome"] == "created"
    assert emulator.constituents()[0]["fields"]["name.first"] == "Nested"


def test_records_that_break_the_stream_schema_are_invalid_rows(
    emulator, config_for, run_target
) -> None:
    run = run_target(
        config_for(emulator),
        [schema(), donor(1, first_name=12), donor(2, birth_date=20200101), donor(3)],
    )
    assert run.returncode == 0, run.stderr
    assert [r["outcome"] for r in run.rows] == ["invalid", "invalid", "created"]
    assert run.rows[0]["errors"][0]["field"] == "first_name"
    assert "does not match the stream's schema" in run.rows[0]["errors"][0]["message"]
    assert "Traceback" not in run.stderr


def test_tap_state_numbers_pass_through_exactly(emulator, config_for, run_target) -> None:
    raw = (
        '{"type": "STATE", "value": {"bookmarks": {"donors": {"score": 1.50, '
        '"big": 12345678901234567890.123, "tiny": 1e-7, "n": 7, "t": "2026-11-01T00:00:00Z"}}}}'
    )
    run = run_target(config_for(emulator), [schema(), donor(1), raw])
    assert run.returncode == 0, run.stderr
    line = run.stdout.splitlines()[-1]
    assert line.startswith(
        '{"bookmarks":{"donors":{"score":1.50,"big":12345678901234567890.123,'
        '"tiny":1E-7,"n":7,"t":"2026-11-01T00:00:00Z"}},"target_convio":'
    )
