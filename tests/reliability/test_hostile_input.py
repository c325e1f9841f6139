"""Hostile input, table-driven: every case ends in a documented result or one clear error.

Never a traceback, never a lost record: each record read gets a row, or the run stops with one
ERROR line after settling (with rows and STATE) everything read before the bad input.
"""

from __future__ import annotations

import json

import pytest

from target_convio.emulator import Emulator
from tests.target.conftest import donor, record, schema, state

MB = "x" * (1024 * 1024)
ANY = {"id": {"type": "integer"}, "email": {}, "first_name": {}, "last_name": {}}
NUMBERS = {
    "id": {"type": "integer"},
    "email": {"type": "string"},
    "first_name": {"type": "string"},
    "last_name": {"type": "string"},
    "custom_string1": {"type": "number"},
}

# (case, messages after the donors SCHEMA, expected outcomes in input order)
RESULTS = [
    ("wrong type: number for a string", [donor(1, first_name=123)], ["invalid"]),
    ("wrong type: boolean for a string", [donor(1, last_name=True)], ["invalid"]),
    ("wrong type: string for the integer key", [donor("abc")], ["invalid"]),
    ("wrong type: number for the email", [donor(1, email=42)], ["invalid"]),
    (
        "nulls everywhere",
        [record({"id": 1, "email": None, "first_name": None, "last_name": None, "gender": None})],
        ["invalid"],
    ),
    ("null email", [donor(1, email=None)], ["invalid"]),
    ("empty email", [donor(1, email="")], ["invalid"]),
    ("blank email", [donor(1, email="   ")], ["invalid"]),
    ("email with spaces around it", [donor(1, email="  Pad@Example.org ")], ["created"]),
    ("unicode names", [donor(1, first_name="Zoë Ñandú", last_name="李小龙")], ["created"]),
    ("emoji", [donor(1, first_name="🎉🦄", last_name="👩🏽‍💻")], ["created"]),
    ("XML-special characters", [donor(1, first_name="<b>&amp;\"'", last_name="]]>")], ["created"]),
    ("right-to-left text", [donor(1, first_name="שלום", last_name="مرحبا")], ["created"]),
    ("NUL character", [donor(1, first_name="Ada\x00")], ["rejected"]),
    ("escape character", [donor(1, last_name="\x1b[31mred")], ["rejected"]),
    (
        "lone surrogate",
        [
            '{"type": "RECORD", "stream": "donors", "record": {"id": 1, '
            '"email": "s@example.org", "first_name": "a\\ud800", "last_name": "L"}}'
        ],
        ["invalid"],
    ),
    ("1 MB string in a mapped field", [donor(1, first_name=MB)], ["invalid"]),
    ("1 MB string in an unmapped field", [donor(1, custom_string1=MB)], ["invalid"]),
    ("impossible date", [donor(1, birth_date="2020-13-45")], ["invalid"]),
    (
        "date-time where a date belongs",
        [donor(1, birth_date="1999-04-01T23:59:59+05:00")],
        ["created"],
    ),
    ("unknown gender", [donor(1, gender="robot")], ["invalid"]),
    ("gender in lower case", [donor(1, gender="female")], ["created"]),
    (
        "duplicate records in one checkpoint",
        [donor(1), donor(1), donor(1, city="Austin")],
        ["created", "updated", "updated"],
    ),
    (
        "the same email in different case",  # key 2 would overwrite key 1's constituent
        [donor(1, email="Case@Example.org"), donor(2, email="case@example.ORG")],
        ["created", "invalid"],
    ),
    (
        "properties the schema does not declare",
        [
            record(
                {
                    "id": 1,
                    "email": "u@example.org",
                    "first_name": "U",
                    "last_name": "V",
                    "shoe_size": 44,
                }
            )
        ],
        ["created"],
    ),
    (
        "SCHEMA change mid-stream",
        [
            donor(1),
            schema(
                properties={
                    **json.loads(json.dumps(schema()["schema"]["properties"])),
                    "nickname": {"type": ["string", "null"]},
                }
            ),
            donor(2, nickname="Bo"),
        ],
        ["created", "created"],
    ),
    (
        "key_properties change mid-stream",
        [donor(1), schema(keys=["email"]), donor(2)],
        ["created", "created"],
    ),
    (
        "two streams interleaved",
        [
            donor(1),
            record(
                {"id": 1, "email": "v@example.org", "first_name": "V", "last_name": "W"},
                "volunteers",
            ),
            donor(2),
        ],
        ["created", "created", "created"],
    ),
    (
        "a stream without key_properties",
        [
            schema("nokeys", keys=[]),
            record({"email": "k@example.org", "first_name": "K", "last_name": "L"}, "nokeys"),
        ],
        ["created"],
    ),
    ("state messages only", [state({"bookmarks": {}}), state({"bookmarks": {"a": 1}})], []),
    (
        "an object where a name belongs",
        [
            schema("loose", ANY),
            record(
                {
                    "id": 1,
                    "email": "o@example.org",
                    "first_name": {"given": "Ada"},
                    "last_name": "L",
                },
                "loose",
            ),
        ],
        ["invalid"],
    ),
    (
        "a list where a name belongs",
        [
            schema("loose", ANY),
            record(
                {"id": 1, "email": "l@example.org", "first_name": ["Ada"], "last_name": "L"},
                "loose",
            ),
        ],
        ["invalid"],
    ),
    (
        "a list where the email belongs",
        [
            schema("loose", ANY),
            record(
                {"id": 1, "email": ["a@example.org"], "first_name": "A", "last_name": "L"}, "loose"
            ),
        ],
        ["invalid"],
    ),
    (
        "NaN and Infinity in numbers",
        [
            schema("numbers", NUMBERS),
            '{"type": "RECORD", "stream": "numbers", "record": {"id": 1, '
            '"email": "n@example.org", "first_name": "N", '
            '"last_name": "M", "custom_string1": NaN}}',
            '{"type": "RECORD", "stream": "numbers", "record": {"id": 2, '
            '"email": "i@example.org", "first_name": "N", '
            '"last_name": "M", "custom_string1": Infinity}}',
        ],
        ["invalid", "invalid"],
    ),
    (
        "a decimal number into a text field",
        [
            schema("numbers", NUMBERS),
            record(
                {
                    "id": 1,
                    "email": "d@example.org",
                    "first_name": "D",
                    "last_name": "E",
                    "custom_string1": 12.50,
                },
                "numbers",
            ),
        ],
        ["created"],
    ),
]

# (case, messages after the donors SCHEMA, words in the one ERROR line, outcomes settled first)
ERRORS = [
    (
        "a line that is not JSON",
        [donor(1), '{"type": "RECORD", "stream": "donors", "rec', donor(2)],
        "input line 4 is not JSON",
        ["created"],
    ),
    (
        "a line that is JSON but not an object",
        [donor(1), "[1, 2, 3]"],
        "is not a Singer message",
        ["created"],
    ),
    (
        "a message without a type",
        [donor(1), {"stream": "donors", "record": {}}],
        "missing required type",
        ["created"],
    ),
    (
        "an unknown message type",
        [donor(1), {"type": "BANANA"}],
        "Unknown message type",
        ["created"],
    ),
    (
        "a record before its schema",
        [donor(1), record({"id": 9}, "ghosts")],
        "before a corresponding schema",
        ["created"],
    ),
    (
        "a schema that is not JSON Schema",
        [
            donor(1),
            {
                "type": "SCHEMA",
                "stream": "bad",
                "schema": {"properties": {"a": {"type": "banana"}}},
                "key_properties": [],
            },
        ],
        "",
        ["created"],
    ),
]


@pytest.mark.parametrize(("case", "messages", "outcomes"), RESULTS, ids=[c[0] for c in RESULTS])
def test_hostile_records_end_in_documented_results(
    emulator: Emulator, config_for, run_target, case: str, messages: list, outcomes: list
) -> None:
    config = config_for(
        emulator, field_map={**config_for(emulator)["field_map"], "nickname": "nickname"}
    )
    run = run_target(config, [schema(), schema("volunteers"), *messages])
    assert run.returncode == 0, run.stderr
    assert "Traceback" not in run.stderr
    assert [r["outcome"] for r in run.rows] == outcomes
    assert run.results == run.rows
    invalid = [r for r in run.rows if r["outcome"] == "invalid"]
    assert all(r["errors"] and r["errors"][0]["message"] for r in invalid)
    assert all(len(r["message"]) < 1000 for r in run.rows)  # a 1 MB value is never echoed
    stored = emulator.constituents()
    assert len(stored) == sum(r["outcome"] == "created" for r in run.rows)


def test_text_comes_back_from_convio_exactly_as_sent(emulator, config_for, run_target) -> None:
    names = ["Zoë Ñandú", "🎉🦄", "<b>&amp;\"'", "שלום", "a  b\ttab"]
    run = run_target(
        config_for(emulator),
        [schema()] + [donor(i, first_name=name) for i, name in enumerate(names, 1)],
    )
    assert run.returncode == 0, run.stderr
    stored = {
        r["fields"]["email.primary_address"]: r["fields"]["name.first"]
        for r in emulator.constituents()
    }
    assert [stored[f"donor{i}@example.org"] for i in range(1, 6)] == names


@pytest.mark.parametrize(
    ("case", "messages", "words", "outcomes"), ERRORS, ids=[c[0] for c in ERRORS]
)
def test_unreadable_input_stops_with_one_clear_line(
    emulator: Emulator,
    config_for,
    run_target,
    case: str,
    messages: list,
    words: str,
    outcomes: list,
) -> None:
    run = run_target(config_for(emulator), [schema(), state({"bookmarks": {"at": 0}}), *messages])
    assert run.returncode == 1
    assert "Traceback" not in run.stderr
    assert len(run.errors) == 1, run.stderr
    assert "target-convio: bad input:" in run.errors[0]
    assert words in run.errors[0]
    assert len(run.errors[0]) < 600
    # What was read before the bad input is settled, with its rows and a STATE line.
    assert [r["outcome"] for r in run.rows] == outcomes
    assert run.states[-1]["bookmarks"] == {"at": 0}
    assert len(emulator.constituents()) == outcomes.count("created")


def test_empty_input(emulator, config_for, run_target) -> None:
    run = run_target(config_for(emulator), [])
    assert run.returncode == 0, run.stderr
    assert [s["target_convio"]["checkpoint"] for s in run.states] == [1]
    assert emulator.calls == {}  # no stream, so no need to read the site's fields
