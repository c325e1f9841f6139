"""`meltano run` of a small sample into the emulator: the state Meltano saved, the results file.

Meltano lives in its own environment (`make test` makes .venv-meltano and passes its path in
$MELTANO). The project is a copy of the repository's meltano.yml in a temporary folder, with
target-convio installed from this checkout.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import duckdb
import psycopg
import pytest
import yaml

from target_convio.emulator import Emulator

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
MELTANO = os.environ.get("MELTANO") or str(ROOT / ".venv-meltano" / "bin" / "meltano")
STATE_ID = "dev:tap-jsonl-to-target-convio"
# One worker runs them all (make test deals out groups whole): the project is installed once.
pytestmark = pytest.mark.xdist_group("meltano-project")


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    assert Path(MELTANO).exists(), f"Meltano not found at {MELTANO}: run the tests with make test"
    folder = tmp_path_factory.mktemp("meltano-project")
    config = yaml.safe_load((ROOT / "meltano.yml").read_text())
    for plugin in config["plugins"]["loaders"] + config["plugins"]["extractors"]:
        if plugin["name"] in ("target-convio", "tap-convio-results"):
            plugin["pip_url"] = f"-e {ROOT}"
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

    writeback(project)
    table = writeback_table(project, "seq, key, outcome, run_id, key_value, error_field")
    assert [row[0] for row in table] == list(range(1, 61))  # every row, the first included
    assert json.loads(table[0][1]) == {"id": 1}
    assert {row[2] for row in table} == outcomes
    assert {row[3] for row in table} == {results[0]["run_id"]}
    assert table[0][4] == "1"  # joins to the source table's id as text
    refused = [row for row in table if row[2] in ("invalid", "rejected")]
    assert all(row[5] for row in refused)  # the first error's field, a plain column

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
    writeback(project)  # only the 60 new rows are read; the table holds each row once
    assert len(writeback_table(project, "row_id")) == 120

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

    first = writeback(project)
    again = writeback(project)  # nothing new: nothing read
    assert '"record_count","value":60' in first.stderr + first.stdout
    assert '"record_count","value":0' in again.stderr + again.stdout
    ids = [row[0] for row in writeback_table(project, "row_id")]
    assert len(ids) == len(set(ids)) == 180  # one table row per result row, three runs on
    assert set(ids) == {r["row_id"] for r in rows + rerun}


def writeback(project: Path) -> subprocess.CompletedProcess:
    """The README's writeback: the rows not yet loaded, upserted by row_id."""
    return meltano(project, "run", "tap-convio-results", "target-duckdb")


def writeback_table(project: Path, columns: str) -> list[tuple]:
    with duckdb.connect(str(project / "output" / "convio_results.duckdb")) as database:
        return database.sql(
            f"select {columns} from main.convio_results order by run_id, seq"
        ).fetchall()


def test_the_writeback_into_postgresql_holds_each_result_once(
    project: Path, emulator: Emulator, postgres_ledger_url: str
) -> None:
    # Slow: installs target-postgres, then two runs each followed by its writeback.
    config = yaml.safe_load((project / "meltano.yml").read_text())
    if not any(p["name"] == "target-postgres" for p in config["plugins"]["loaders"]):
        config["plugins"]["loaders"].append(
            {
                "name": "target-postgres",
                "namespace": "target_postgres",
                "pip_url": "meltanolabs-target-postgres==0.8.1",
                "settings": [{"name": "sqlalchemy_url", "kind": "string", "sensitive": True}],
                "config": {"default_target_schema": "convio"},
            }
        )
        (project / "meltano.yml").write_text(yaml.safe_dump(config, sort_keys=False))
        meltano(project, "install", "loader", "target-postgres")
    results = project / "output" / "postgres-writeback.jsonl"
    url = postgres_ledger_url.replace("postgresql://", "postgresql+psycopg://")
    env = {
        **credentials(emulator),
        "TARGET_CONVIO_RESULTS_PATH": str(results),
        "TAP_CONVIO_RESULTS_PATH": str(results),
        "TARGET_POSTGRES_SQLALCHEMY_URL": url,
    }
    for _ in range(2):  # the second writeback adds the second run's rows, nothing twice
        meltano(project, "run", "--no-state-update", "tap-jsonl", "target-convio", env=env)
        meltano(project, "run", "tap-convio-results", "target-postgres", env=env)
    rows = [json.loads(line) for line in results.read_text().splitlines()]
    assert len(rows) == 120
    with psycopg.connect(postgres_ledger_url) as connection:
        counted = connection.execute(
            "select count(*), count(distinct row_id), count(distinct run_id) "
            "from convio.convio_results"
        ).fetchone()
        types = dict(
            connection.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = 'convio' and table_name = 'convio_results'"
            ).fetchall()
        )
        refused = connection.execute(
            "select count(*) from convio.convio_results "
            "where outcome in ('invalid', 'rejected') and error_field is not null"
        ).fetchone()
        # The README's query, joining the results back to the source table by key.
        source = (project / "demo" / "data" / "donors.jsonl").read_text()
        donors = [json.loads(line) for line in source.splitlines()]
        connection.execute("create table public.donors (id integer primary key, email text)")
        with connection.cursor() as cursor:
            cursor.executemany(
                "insert into public.donors values (%s, %s)",
                [(d["id"], d["email"]) for d in donors],
            )
        [query] = re.findall(r"```sql\n(.*?)```", README.read_text(), re.DOTALL)
        joined = connection.execute(query).fetchall()
    last_run = [r for r in rows if r["run_id"] == rows[-1]["run_id"]]
    failing = {
        r["key"]["id"] for r in last_run if r["outcome"] in ("invalid", "rejected", "failed")
    }
    assert {row[0] for row in joined} == failing
    assert all(row[1] == next(d["email"] for d in donors if d["id"] == row[0]) for row in joined)
    assert counted == (120, 120, 2)  # one table row per result row, after two writebacks
    assert refused == (sum(r["outcome"] in ("invalid", "rejected") for r in rows),)
    assert types["errors"] == "jsonb"  # one JSON array, not a Postgres array of jsonb
    assert types["key"] == "jsonb"
    assert types["key_value"] in ("text", "character varying")
