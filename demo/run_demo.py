"""The demo: start the emulator, `meltano run` donors into it, write the results back, report.

Run it with `make demo`, which first makes .venv (this project) and .venv-meltano (Meltano).
Run it twice: the emulator keeps its records in output/emulator-state.json and the target its
sync ledger in .target-convio/, so the second run finds the donors unchanged and writes nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import urllib.request
from collections import Counter
from pathlib import Path

from target_convio.outcomes import Outcome

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "output"
RESULTS = OUTPUT / "results.jsonl"
WRITEBACK = OUTPUT / "convio_results.duckdb"
COMPARE = OUTPUT / "compare.jsonl"
REPORT = OUTPUT / "report.html"
WRITES = ("createOrUpdate", "create", "update")
DEMO_PORT = 8766
# What an analyst asks the writeback table: the last run, by outcome and Convio code.
SAMPLE_QUERY = """
select outcome, coalesce(code, '-') as code, count(*) as records
from main.convio_results
where run_id = (select max(run_id) from main.convio_results)
group by all order by outcome, code
""".strip()
EMULATOR_STATE = OUTPUT / "emulator-state.json"
ADOPTED_SITE = OUTPUT / "adopted-site-state.json"  # a second site, holding the donors already
ADOPTED_LEDGER = OUTPUT / "adopted-ledger.sqlite"
ADOPTED = OUTPUT / "adopted.jsonl"


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def meltano(exe: str, *args: str, env: dict[str, str]) -> None:
    result = subprocess.run([exe, *args], cwd=ROOT, env=env, check=False)
    if result.returncode != 0:
        sys.exit(f"demo: `meltano {' '.join(args)}` failed with exit code {result.returncode}")


def start_emulator(
    latency_ms: int, state: Path = EMULATOR_STATE, ports: tuple[int, ...] = (DEMO_PORT, 0)
) -> tuple[subprocess.Popen[str], str]:
    """The emulator on DEMO_PORT, so its URL (which the sync ledger keys sites by) stays the
    same from run to run; on a free port if that one is taken."""
    exe = Path(sys.executable).with_name("convio-emulator")
    for port in ports:
        process = subprocess.Popen(
            [
                str(exe),
                "--port",
                str(port),
                "--latency-ms",
                str(latency_ms),
                "--state-file",
                str(state),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL if port else None,
            text=True,
        )
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        if url:
            return process, url
        process.wait(10)
        print(f"demo: port {port} is taken; the next run cannot find this one's ledger entries")
    sys.exit("demo: the emulator did not start")


def calls_made(api_url: str) -> Counter[str]:
    """The emulator's count of calls by method so far (its read-only inspection route)."""
    base = api_url.split("/", 3)
    state = f"{base[0]}//{base[2]}/_emulator/state"  # the emulator on loopback, http
    with urllib.request.urlopen(state, timeout=10) as answer:  # noqa: S310
        return Counter(json.load(answer)["calls"])


def write_calls(api_url: str) -> int:
    """The emulator's count of write calls so far."""
    calls = calls_made(api_url)
    return sum(calls[method] for method in WRITES)


def adopt(meltano_exe: str, env: dict[str, str], latency_ms: int) -> None:
    """A first sync of another site that already holds these donors, every tenth edited by
    staff since: with `first_contact: read` and a ledger of its own."""
    held = json.loads(EMULATOR_STATE.read_text(encoding="utf-8"))
    for constituent in held[::10]:
        constituent["fields"]["primary_address.city"] = "Springfield"
    ADOPTED_SITE.write_text(json.dumps(held), encoding="utf-8")
    ADOPTED_LEDGER.unlink(missing_ok=True)
    ADOPTED.unlink(missing_ok=True)
    emulator, url = start_emulator(latency_ms, ADOPTED_SITE, ports=(0,))
    try:
        meltano(
            meltano_exe,
            "run",
            "--no-state-update",  # another site: the demo pipeline's bookmark is not its own
            "tap-jsonl",
            "target-convio",
            env={
                **env,
                "TARGET_CONVIO_API_URL": url,
                "TARGET_CONVIO_FIRST_CONTACT": "read",
                "TARGET_CONVIO_LEDGER_URL": f"sqlite:///{ADOPTED_LEDGER}",
                "TARGET_CONVIO_RESULTS_PATH": str(ADOPTED),
            },
        )
        calls = calls_made(url)
    finally:
        emulator.terminate()
        emulator.wait(10)
    rows = [json.loads(line) for line in ADOPTED.read_text(encoding="utf-8").splitlines()]
    print(summary_table(rows))
    adopted = sum(row["message"].startswith("adopted:") for row in rows)
    print(
        f"\n{len(held):,} donors already on the site: {adopted:,} adopted without a write, "
        f"{sum(calls[m] for m in WRITES):,} written, after {calls['getUser']:,} reads "
        f"(rows: {ADOPTED.relative_to(ROOT)})"
    )


def query_table(sql: str) -> str:
    """The answer of a query to the writeback table, as text."""
    import duckdb  # noqa: PLC0415 - the demo's query only

    with duckdb.connect(str(WRITEBACK), read_only=True) as connection:
        relation = connection.sql(sql)
        rows = relation.fetchall()
        columns = relation.columns
    lines = [" ".join(f"{c:>10}" for c in columns)]
    lines += [" ".join(f"{v!s:>10}" for v in row) for row in rows]
    return "\n".join(lines)


def predictions_table(path: Path) -> str:
    """A compare dry run's predictions, counted."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    counts = Counter(row.get("predicted") or "unknown" for row in rows)
    lines = [f"{'would be':<10} {'records':>8}"] + [
        f"{name:<10} {count:>8,}" for name, count in sorted(counts.items())
    ]
    return "\n".join(lines)


def summary_table(rows: list[dict]) -> str:
    """Outcome by Convio code, as the demo prints it."""
    counts = Counter((row["outcome"], row["code"] or "-") for row in rows)
    lines = [f"{'outcome':<10} {'code':>5} {'records':>8}", "-" * 25]
    for outcome in (o.value for o in Outcome):
        for (name, code), count in sorted(counts.items()):
            if name == outcome:
                lines.append(f"{outcome:<10} {code:>5} {count:>8,}")
    lines += ["-" * 25, f"{'total':<10} {'':>5} {len(rows):>8,}"]
    return "\n".join(lines)


WHERE_THINGS_ARE = f"""
results file:  {RESULTS.relative_to(ROOT)} (one JSON row per donor and run)
as a table:    {WRITEBACK.relative_to(ROOT)} (DuckDB, one row per result row, every run's)
sync ledger:   .target-convio/ledger.sqlite (.venv/bin/target-convio-ledger counts)
run report:    {REPORT.relative_to(ROOT)} (open it in a browser)
Meltano state: .meltano/state (meltano state get dev:tap-jsonl-to-target-convio)
Run `make demo` again: the donors already loaded are unchanged, with no write call."""


def report_runs() -> None:
    """The demo ledger's latest runs, and the HTML report of them."""
    ledger_cli = Path(sys.executable).with_name("target-convio-ledger")
    subprocess.run([str(ledger_cli), "runs", "--last", "5"], cwd=ROOT, check=False)
    subprocess.run([str(ledger_cli), "report", "--output", str(REPORT)], cwd=ROOT, check=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--meltano", default=str(ROOT / ".venv-meltano" / "bin" / "meltano"))
    parser.add_argument("--latency-ms", type=int, default=20, help="emulated Convio latency")
    parser.add_argument("--rows", type=int, default=1000)
    args = parser.parse_args()
    if not (ROOT / ".env").exists():
        shutil.copy(ROOT / ".env.example", ROOT / ".env")
    OUTPUT.mkdir(exist_ok=True)

    step("Making the sample donors (demo/make_donors.py, fixed seed)")
    subprocess.run(
        [sys.executable, str(ROOT / "demo" / "make_donors.py"), "--rows", str(args.rows)],
        check=True,
    )

    step("Installing the Meltano plugins (cached after the first run)")
    env = {**os.environ, "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false"}
    meltano(args.meltano, "install", env=env)

    step(f"Starting the Convio emulator ({args.latency_ms} ms per call)")
    emulator, url = start_emulator(args.latency_ms)
    print(f"emulator at {url}", flush=True)
    try:
        step("Asking Convio what the load would do: a compare dry run (reads, no STATE line)")
        COMPARE.unlink(missing_ok=True)
        meltano(
            args.meltano,
            "run",
            "tap-jsonl",
            "target-convio",
            env={
                **env,
                "TARGET_CONVIO_API_URL": url,
                "TARGET_CONVIO_DRY_RUN": "compare",
                "TARGET_CONVIO_RESULTS_PATH": str(COMPARE),
            },
        )
        print(predictions_table(COMPARE))
        print("A dry run prints no STATE line: Meltano's bookmark for this pipeline did not move.")
        step("meltano run tap-jsonl target-convio")
        before = write_calls(url)
        meltano(
            args.meltano,
            "run",
            "tap-jsonl",
            "target-convio",
            env={**env, "TARGET_CONVIO_API_URL": url},
        )
        sent = write_calls(url) - before
    finally:
        emulator.terminate()
        emulator.wait(10)

    step("Writing the results back: meltano run tap-convio-results target-duckdb")
    meltano(args.meltano, "run", "tap-convio-results", "target-duckdb", env=env)

    every_run = [json.loads(line) for line in RESULTS.read_text(encoding="utf-8").splitlines()]
    rows = [row for row in every_run if row["run_id"] == every_run[-1]["run_id"]]
    step("What happened to each donor")
    print(summary_table(rows))
    problems = [row for row in rows if row["outcome"] in ("invalid", "rejected", "failed")]
    for row in problems[:5]:
        print(f"  donor {row['key']['id']}: {row['outcome']}: {row['message']}")
    print(f"\nConvio write calls this run: {sent:,}")
    step(f"The writeback table, asked in SQL ({WRITEBACK.relative_to(ROOT)})")
    print(SAMPLE_QUERY)
    print(query_table(SAMPLE_QUERY))

    step("Every run so far: target-convio-ledger runs, and a report")
    report_runs()

    step("Another site already holds these donors: a first sync with first_contact: read")
    adopt(args.meltano, env, args.latency_ms)

    print(WHERE_THINGS_ARE)


if __name__ == "__main__":
    main()
