"""The demo: start the emulator, `meltano run` donors into it, write the results back, report.

Run it with `make demo`, which first makes .venv (this project) and .venv-meltano (Meltano).
Run it twice: the emulator keeps its records in output/emulator-state.json, so the second run
updates what the first created.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

from target_convio.outcomes import Outcome

ROOT = Path(__file__).resolve().parents[1]
OUTPUT = ROOT / "output"
RESULTS = OUTPUT / "results.jsonl"
WRITEBACK = OUTPUT / "convio_results.csv"
EMULATOR_STATE = OUTPUT / "emulator-state.json"


def step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def meltano(exe: str, *args: str, env: dict[str, str]) -> None:
    result = subprocess.run([exe, *args], cwd=ROOT, env=env, check=False)
    if result.returncode != 0:
        sys.exit(f"demo: `meltano {' '.join(args)}` failed with exit code {result.returncode}")


def start_emulator(latency_ms: int) -> tuple[subprocess.Popen[str], str]:
    exe = Path(sys.executable).with_name("convio-emulator")
    process = subprocess.Popen(
        [
            str(exe),
            "--port",
            "0",
            "--latency-ms",
            str(latency_ms),
            "--state-file",
            str(EMULATOR_STATE),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    url = process.stdout.readline().strip()
    if not url:
        sys.exit("demo: the emulator did not start")
    return process, url


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
    RESULTS.unlink(missing_ok=True)  # this demo reports on one run at a time
    try:
        step("meltano run tap-jsonl target-convio")
        meltano(
            args.meltano,
            "run",
            "tap-jsonl",
            "target-convio",
            env={**env, "TARGET_CONVIO_API_URL": url},
        )
    finally:
        emulator.terminate()
        emulator.wait(10)

    step("Writing the results back: meltano run tap-convio-results target-csv")
    WRITEBACK.unlink(missing_ok=True)
    meltano(args.meltano, "run", "tap-convio-results", "target-csv", "--full-refresh", env=env)

    rows = [json.loads(line) for line in RESULTS.read_text(encoding="utf-8").splitlines()]
    step("What happened to each donor")
    print(summary_table(rows))
    problems = [row for row in rows if row["outcome"] in ("invalid", "rejected", "failed")]
    for row in problems[:5]:
        print(f"  donor {row['key']['id']}: {row['outcome']}: {row['message']}")
    print(f"\nresults file:  {RESULTS.relative_to(ROOT)} (one JSON row per donor)")
    print(f"as a table:    {WRITEBACK.relative_to(ROOT)}")
    print("Meltano state: .meltano/state (meltano state get dev:tap-jsonl-to-target-convio)")
    print("Run `make demo` again: the donors already loaded are updated, not created again.")


if __name__ == "__main__":
    main()
