"""tap-convio-results: the results file read back, only what was appended since its last run."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

EXE = shutil.which("tap-convio-results") or str(
    Path(sys.executable).with_name("tap-convio-results")
)


def row(n: int, **fields: object) -> dict:
    return {
        "row_id": f"2026-11-30T02:00:00Z-ab12/donors/{n}",
        "run_id": "2026-11-30T02:00:00Z-ab12",
        "stream": "donors",
        "seq": n,
        "key": {"id": n},
        "outcome": "created",
        "cons_id": str(1000 + n),
        "code": None,
        "message": "New user added.",
        "errors": [],
        "attempts": 1,
        "at": "2026-11-30T02:00:01Z",
        **fields,
    }


def tap(folder: Path, state: dict | None = None) -> tuple[list[dict], dict | None, str]:
    """(records, the last state, stderr) of one run of the tap."""
    config = folder / "config.json"
    config.write_text(json.dumps({"path": str(folder / "results.jsonl")}))
    args = [EXE, "--config", str(config)]
    if state is not None:
        (folder / "state.json").write_text(json.dumps(state))
        args += ["--state", str(folder / "state.json")]
    done = subprocess.run(args, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    messages = [json.loads(line) for line in done.stdout.splitlines()]
    records = [m["record"] for m in messages if m["type"] == "RECORD"]
    states = [m["value"] for m in messages if m["type"] == "STATE"]
    return records, (states[-1] if states else None), done.stderr


def append(folder: Path, text: str) -> None:
    with (folder / "results.jsonl").open("a") as out:
        out.write(text)


def test_each_run_reads_only_what_was_appended_since(tmp_path: Path) -> None:
    append(tmp_path, "".join(json.dumps(row(n)) + "\n" for n in (1, 2)))
    first, state, _ = tap(tmp_path)
    assert [r["row_id"] for r in first] == [row(1)["row_id"], row(2)["row_id"]]
    assert first[0]["key_value"] == "1"
    assert first[0]["_sdc_offset"] == len(json.dumps(row(1))) + 1
    refused = row(
        3,
        outcome="invalid",
        cons_id=None,
        errors=[
            {"field": "gender", "code": "invalid", "message": "'robot' is not one of ..."},
            {"field": "name.first", "code": "max_length", "message": "..."},
        ],
    )
    torn = json.dumps(row(4))[:30]  # being written right now: no newline yet
    append(tmp_path, json.dumps(refused) + "\n" + torn)
    second, state, _ = tap(tmp_path, state)
    assert [r["seq"] for r in second] == [3]
    assert (second[0]["error_field"], second[0]["error_code"]) == ("gender", "invalid")
    assert len(second[0]["errors"]) == 2
    append(tmp_path, json.dumps(row(4))[30:] + "\n")
    third, state, _ = tap(tmp_path, state)
    assert [r["seq"] for r in third] == [4]
    nothing, _, _ = tap(tmp_path, state)
    assert nothing == []


def test_a_replaced_file_another_taps_state_and_old_rows_are_read_from_the_start(
    tmp_path: Path,
) -> None:
    old = {k: v for k, v in row(1, seq=None).items() if k != "row_id"}  # before row_id, a replay
    append(tmp_path, json.dumps(old) + "\n" + "not json\n" + json.dumps(row(2)) + "\n")
    foreign = {
        "bookmarks": {
            "convio_results": {
                "replication_key": "_sdc_last_modified",
                "replication_key_value": "2026-11-29T02:00:00+00:00",
            }
        }
    }
    records, state, stderr = tap(tmp_path, foreign)
    assert "The saved state is not this tap's" in stderr
    assert "is not JSON; skipped" in stderr
    assert records[0]["row_id"] == f"{old['run_id']}/donors/at-{len(json.dumps(old)) + 1}"
    assert [r["seq"] for r in records] == [None, 2]
    (tmp_path / "results.jsonl").write_text(json.dumps(row(9)) + "\n")  # replaced by hand
    again, _, stderr = tap(tmp_path, state)
    assert "shorter than where the last writeback stopped" in stderr
    assert [r["seq"] for r in again] == [9]


def test_no_results_file_yet_is_no_record(tmp_path: Path) -> None:
    records, _, stderr = tap(tmp_path)
    assert records == []
    assert "No results file at" in stderr
