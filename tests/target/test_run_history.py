"""The run history: one row per run in the ledger however the run ends, `target-convio-ledger
runs`, and the HTML report's charts holding the same numbers."""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

import pytest

from target_convio.emulator import Emulator, Faults
from target_convio.history import Run
from target_convio.report import render_report
from tests.target.conftest import EXE, cli, donor, schema, singer_lines, state
from tests.target.test_ledger import LEDGER_EXE

SVG = "{http://www.w3.org/2000/svg}"


def runs(url: str) -> list[dict]:
    result = cli("--ledger-url", url, "runs", "--format", "json", exe=LEDGER_EXE)
    assert result.returncode == 0, result.stderr
    found: list[dict] = json.loads(result.stdout)
    return found


def test_a_finished_run_is_kept_with_its_counts_codes_and_calls(
    emulator, config_for, run_target, ledger_url
) -> None:
    config = config_for(emulator, ledger_url=ledger_url)
    bad = donor(3, email="taken@example.org")
    emulator.store.add({"email.primary_address": "taken@example.org"})
    emulator.store.add({"email.primary_address": "taken@example.org"})  # twice: code 8
    messages = [schema(), donor(1), donor(2), bad, donor(4, gender="robot")]
    first = run_target(config, messages)
    second = run_target(config, messages)
    assert (first.returncode, second.returncode) == (0, 0)
    (newest, oldest) = runs(ledger_url)
    assert oldest["run_id"] == first.rows[0]["run_id"]
    assert newest["run_id"] == second.rows[0]["run_id"]
    assert oldest["ended"] == "finished"
    assert oldest["streams"] == ["donors"]
    assert oldest["records"] == 4
    assert oldest["counts"] == {
        "created": 2,
        "updated": 0,
        "unchanged": 0,
        "invalid": 1,
        "rejected": 1,
        "failed": 0,
        "skipped": 0,
    }
    assert oldest["by_code"] == {"8": 1}
    assert oldest["by_field"] == {"gender": 1, "primary_email": 1}
    assert oldest["reasons"] == {
        "gender: invalid": 1,  # a check before sending: its field and code
        "The request for a single constituent matched several records. Several constituents "
        "have that primary_email.": 1,  # Convio's own message
    }
    assert oldest["calls"] == {"listUserFields": 1, "createOrUpdate": 3}
    assert newest["calls"] == {"listUserFields": 1}  # the ledger settled every record
    assert newest["counts"]["unchanged"] == 2
    assert oldest["records_per_second"] > 0
    assert oldest["replay_queue"] == 0
    started = dt.datetime.fromisoformat(oldest["started_at"].replace("Z", "+00:00"))
    ended = dt.datetime.fromisoformat(oldest["ended_at"].replace("Z", "+00:00"))
    assert started <= ended

    table = cli("--ledger-url", ledger_url, "runs", "--last", "1", exe=LEDGER_EXE).stdout
    header, line = table.splitlines()
    assert header.split()[:4] == ["started", "(UTC)", "ended", "seconds"]
    assert line.split()[2] == "finished"
    assert line.split()[4:12] == ["4", "0", "0", "2", "1", "1", "0", "0"]  # the newest run


@pytest.mark.parametrize(
    ("ended", "code", "settings", "input_lines"),
    [
        ("fatal", 1, {}, None),
        ("breaker", 1, {"max_failure_rate": 0.5, "max_concurrency": 2}, None),
        ("budget", 75, {"max_calls_per_day": 3}, None),
        ("input_error", 1, {}, ["{not json"]),
    ],
)
def test_a_stopped_run_says_how_it_ended(
    emulator, config_for, run_target, tmp_path, ended, code, settings, input_lines
) -> None:
    if ended == "fatal":
        emulator.faults = Faults(
            error_rate=1.0, error_code=14, methods=frozenset({"createOrUpdate"})
        )
    records = [
        donor(i, user_name=f"bad name {i}" if ended == "breaker" else None) for i in range(1, 41)
    ]
    run = run_target(config_for(emulator, **settings), [schema(), *records, *(input_lines or [])])
    assert run.returncode == code, run.stderr
    (kept,) = runs(config_for(emulator)["ledger_url"])
    assert kept["ended"] == ended
    assert kept["ended_at"] is not None
    assert kept["records"] == len(run.results)


def test_a_signalled_run_and_a_killed_one(emulator: Emulator, config_for, tmp_path) -> None:
    emulator.faults = Faults(latency_ms=100, methods=frozenset({"createOrUpdate"}))
    config = config_for(emulator, batch_size_rows=2, max_concurrency=2)
    (tmp_path / "config.json").write_text(json.dumps(config))
    messages = [schema()]
    for i in range(1, 41):
        messages += [donor(i), state({"bookmarks": {"donors": {"id": i}}})]
    for stop in (signal.SIGTERM, signal.SIGKILL):
        process = subprocess.Popen(
            [EXE, "--config", str(tmp_path / "config.json")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.write(singer_lines(messages))
        process.stdin.close()
        process.stdout.readline()  # a first checkpoint: the run is under way
        process.send_signal(stop)
        process.stdout.read()
        process.stdout.close()
        process.wait(30)
    killed, signalled = runs(config["ledger_url"])
    assert signalled["ended"] == "signal"
    assert signalled["records"] >= 2
    assert (killed["ended"], killed["ended_at"]) == ("unfinished", None)


def run_at(day: int, counts: dict, **fields) -> Run:
    started = dt.datetime(2026, 11, day, 2, 0, tzinfo=dt.timezone.utc)
    return Run(
        f"2026-11-{day:02d}T02:00:00Z-00{day:02d}",
        "https://secure2.convio.net/org/site/SRConsAPI",
        started,
        started + dt.timedelta(minutes=5),
        "finished",
        ["donors"],
        counts=counts,
        **fields,
    )


def bars_of(html: str, title: str) -> dict[str, dict[str, float]]:
    """{column: {key: value}} of the chart titled `title` in the page."""
    for chunk in html.split("<svg")[1:]:
        svg = ET.fromstring("<svg" + chunk.split("</svg>")[0] + "</svg>")
        if svg.findtext(f"{SVG}title") == title:
            found: dict[str, dict[str, float]] = defaultdict(dict)
            for rect in svg.iter(f"{SVG}rect"):
                if "data-column" in rect.attrib:
                    found[rect.attrib["data-column"]][rect.attrib["data-key"]] = float(
                        rect.attrib["data-value"]
                    )
            return dict(found)
    raise AssertionError(f"no chart titled {title!r}")


def test_the_report_charts_hold_the_runs_numbers() -> None:
    history = [  # newest first, as the ledger gives them
        run_at(
            3,
            {"created": 2, "unchanged": 40, "rejected": 3},
            by_code={"13": 3},
            by_field={"primary_email": 3},
            reasons={"<script>alert(1)</script> in use": 3},
            calls={"listUserFields": 1, "createOrUpdate": 5},
            replay_queue=4,
        ),
        run_at(2, {"created": 40, "invalid": 2}, by_field={"gender": 2}, replay_queue=1),
    ]
    now = dt.datetime(2026, 11, 3, 12, 0, tzinfo=dt.timezone.utc)
    page = render_report(history, now, stale_hours=36)
    assert bars_of(page, "records by outcome") == {
        "2026-11-02 02:00": {"created": 40, "invalid": 2},
        "2026-11-03 02:00": {"created": 2, "unchanged": 40, "rejected": 3},
    }
    assert bars_of(page, "refused records by code") == {"2026-11-03 02:00": {"13": 3}}
    assert bars_of(page, "refused records by field") == {
        "2026-11-02 02:00": {"gender": 2},
        "2026-11-03 02:00": {"primary_email": 3},
    }
    assert bars_of(page, "records waiting to be replayed") == {
        "2026-11-02 02:00": {"records waiting to be replayed": 1},
        "2026-11-03 02:00": {"records waiting to be replayed": 4},
    }
    assert bars_of(page, "API calls")["2026-11-03 02:00"] == {"API calls": 6}
    assert bars_of(page, "seconds")["2026-11-02 02:00"] == {"seconds": 300}
    assert '<p class="fresh" data-hours="9.9">' in page  # ended 02:05, seen at 12:00
    assert "<script>" not in page  # a message is text, never markup
    assert "&lt;script&gt;alert(1)&lt;/script&gt; in use</td><td>3</td>" in page
    assert "http" not in page.replace("http://www.w3.org/2000/svg", "").replace(
        "https://secure2.convio.net/org/site/SRConsAPI", ""
    )  # nothing fetched from the network

    later = render_report(history, now + dt.timedelta(days=2), stale_hours=36)
    assert '<p class="stale" data-hours="57.9">' in later
    assert "more than 36 hours ago" in later
    assert '<p class="stale">No run has finished yet.</p>' in render_report([], now, 36)


def test_runs_and_report_on_a_ledger_without_history(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'none.sqlite'}"
    result = cli("--ledger-url", url, "runs", exe=LEDGER_EXE)
    assert result.returncode == 1
    assert "there is no ledger" in result.stderr
