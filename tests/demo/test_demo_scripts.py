"""The demo's sample data and its report."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "demo"))

import make_donors
import run_demo


def test_sample_donors_are_the_same_every_time_with_every_kind_of_bad_row() -> None:
    rows = make_donors.rows(1000)
    assert rows == make_donors.rows(1000)
    assert len(rows) == 1000
    emails = [r["email"] for r in rows]
    bad = {
        "missing_email": sum(e is None for e in emails),
        "duplicate_email": len([e for e in emails if e]) - len({e for e in emails if e}),
        "long_name": sum(len(r["first_name"]) > 50 for r in rows),
        "unknown_gender": sum(r["gender"] in ("robot", "N/A", "f/m") for r in rows),
        "bad_date": sum(r["birth_date"] in ("1980-02-30", "31/12/1975", "someday") for r in rows),
        "control_character": sum("\x0b" in r["street"] for r in rows),
        "malformed_email": sum(
            bool(e) and (" at " in e or "@@" in e or e.endswith("example.")) for e in emails
        ),
    }
    assert all(count >= 2 for count in bad.values()), bad
    assert 20 <= sum(bad.values()) <= 50  # about 3%


def test_summary_table_counts_outcomes_by_code() -> None:
    rows = [{"outcome": "created", "code": None}] * 3 + [
        {"outcome": "rejected", "code": "22"},
        {"outcome": "rejected", "code": "35"},
        {"outcome": "invalid", "code": None},
    ]
    assert run_demo.summary_table(rows).splitlines() == [
        "outcome     code  records",
        "-" * 25,
        "created        -        3",
        "invalid        -        1",
        "rejected      22        1",
        "rejected      35        1",
        "-" * 25,
        "total                   6",
    ]
