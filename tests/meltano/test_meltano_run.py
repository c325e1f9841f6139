"""`meltano run` of a small sample into the emulator: the state Meltano saved, the results file.

Meltano lives in its own environment (`make test` makes .venv-meltano and passes its path in
$MELTANO). The project is a copy of the repository's meltano.yml in a temporary folder, with
target-convio installed from this checkout.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import yaml

from target_convio.emulator import Emulator

ROOT = Path(__file__).resolve().parents[2]
MELTANO = os.environ.get("MELTANO") or str(ROOT / ".venv-meltano" / "bin" / "meltano")
STATE_ID = "dev:tap-jsonl-to-target-convio"


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert Path(MELTANO).exists(), f"Meltano not found at {MELTANO}: run the tests with make test"
    folder = tmp_path_factory.mktemp("meltano-project")
    config = yaml.safe_load((ROOT / "meltano.yml").read_text())
    for loader in config["plugins"]["loaders"]:
        if loader["name"] == "target-convio":
            loader["pip_url"] = f"-e {ROOT}"
    (folder / "meltano.yml").write_text(yaml.safe_dump(config, sort_keys=False))
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "demo" / "make_donors.py"),
            "--rows",
            "60",
            "--out",
            str(folder / "demo" / "data" / "donors.jsonl"),
        ],
        check=True,
        capture_output=True,
    )
    meltano(folder, "install")
    return folder


def meltano(folder: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [MELTANO, *args],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false", **(env or {})},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


def credentials(emulator: Emulator) -> dict[str, str]:
    return {
        "TARGET_CONVIO_API_URL": emulator.api_url,
        "TARGET_CONVIO_API_KEY": "demo-api-key",
        "TARGET_CONVIO_LOGIN_NAME": "apiuser",
        "TARGET_CONVIO_LOGIN_PASSWORD": "apipass",
    }


def test_meltano_run_saves_state_and_writes_results(project: Path, emulator: Emulator) -> None:
    # Slow: three `meltano run`s, each starting Meltano, a tap and a target (after an install).
    run = meltano(project, "run", "tap-jsonl", "target-convio", env=credentials(emulator))
    results = [
        json.loads(line) for line in (project / "output" / "results.jsonl").read_text().splitlines()
    ]
    assert [r["seq"] for r in results] == list(range(1, 61))
    assert {r["stream"] for r in results} == {"donors"}
    outcomes = {r["outcome"] for r in results}
    assert "created" in outcomes
    assert outcomes <= {"created", "updated", "invalid", "rejected"}
    saved = json.loads((project / ".meltano" / "state" / STATE_ID / "state.json").read_text())
    state = saved["completed"]["singer_state"]
    assert state["bookmarks"]["donors"]["replication_key"] == "_sdc_last_modified"
    ours = state["target_convio"]
    assert ours["checkpoint"] >= 1
    counted = {
        o: sum(r["outcome"] == o for r in results)
        for o in ("created", "updated", "invalid", "rejected")
    }
    assert {o: ours["summary"][o] for o in counted} == counted
    created = [r for r in results if r["outcome"] == "created"]
    stored = {c["cons_id"]: c for c in emulator.constituents()}
    assert {r["cons_id"] for r in created} <= set(stored)
    first = next(r for r in created if r["key"]["id"] == 1)
    assert stored[first["cons_id"]]["fields"]["custom_string3"] == "1"  # id -> Warehouse ID
    assert stored[first["cons_id"]]["source"] == "meltano-demo"
    assert "Checkpoint 1:" in run.stderr + run.stdout
    assert "apipass" not in run.stderr + run.stdout

    writeback = meltano(project, "run", "tap-convio-results", "target-duckdb", "--full-refresh")
    assert writeback.returncode == 0
    with duckdb.connect(str(project / "output" / "convio_results.duckdb")) as database:
        table = database.sql(
            "select seq, key, outcome, run_id from main.convio_results order by seq"
        ).fetchall()
    assert [row[0] for row in table] == list(range(1, 61))  # every row, the first included
    assert json.loads(table[0][1]) == {"id": 1}
    assert {row[2] for row in table} == outcomes
    assert {row[3] for row in table} == {results[0]["run_id"]}

    # A dry run, without --no-state-update: the state Meltano saved stays as it was.
    saved_file = project / ".meltano" / "state" / STATE_ID / "state.json"
    before = saved_file.read_text()
    dry = {**credentials(emulator), "TARGET_CONVIO_DRY_RUN": "compare"}
    dry_run = meltano(project, "run", "tap-jsonl", "target-convio", env=dry)
    assert saved_file.read_text() == before
    assert "the pipeline's bookmark stays put" in dry_run.stderr
    rows = [
        json.loads(line) for line in (project / "output" / "results.jsonl").read_text().splitlines()
    ]
    assert {r["outcome"] for r in rows[60:120]} <= {"skipped", "invalid"}
    assert sum("predicted" in r for r in rows[60:120]) == 60

    # The same donors again: the sync ledger (in the project's folder) knows them.
    meltano(project, "run", "tap-jsonl", "target-convio", env=credentials(emulator))
    rerun = [
        json.loads(line) for line in (project / "output" / "results.jsonl").read_text().splitlines()
    ][120:]
    assert {r["outcome"] for r in rerun} <= {"unchanged", "invalid", "rejected"}
    assert (
        sum(r["outcome"] == "unchanged" for r in rerun) == counted["created"] + counted["updated"]
    )
    assert all(r["attempts"] == 0 for r in rerun)
    assert (project / ".target-convio" / "ledger.sqlite").is_file()
