"""Ten nights of a warehouse sync against the emulator, then the run report and its picture.

Each night sends the donors of the night before, some edited, ten new ones and a few bad
rows; on two nights Convio fails one city's records (they are replayed the next night).
Writes output/nights/report.html and, where Chromium is installed, docs/report.png (the
README's picture). Usage: .venv/bin/python demo/report_picture.py
"""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

from target_convio.emulator import Emulator, Faults

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "output" / "nights"
BIN = Path(sys.executable).parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
SCHEMA = {
    "type": "SCHEMA",
    "stream": "donors",
    "key_properties": ["id"],
    "schema": {
        "properties": {
            "id": {"type": "integer"},
            "email": {"type": "string"},
            "first_name": {"type": "string"},
            "last_name": {"type": "string"},
            "city": {"type": "string"},
            "gender": {"type": ["string", "null"]},
        }
    },
}


def night(number: int, draw: random.Random) -> list[dict]:
    """The donors the warehouse holds on night `number`."""
    rows = []
    for i in range(1, 140 + 10 * number):
        city = draw.choice(["Austin", "Boston", "Denver"]) if draw.random() < 0.08 else "Austin"
        email = "shared@example.org" if i % 97 == 0 else f"donor{i}@example.org"
        gender = "robot" if draw.random() < 0.01 else None
        rows.append(
            {"id": i, "email": email, "first_name": "Donor", "last_name": f"N{i}"}
            | {"city": city, "gender": gender}
        )
    return rows


def main() -> None:
    shutil.rmtree(FOLDER, ignore_errors=True)
    FOLDER.mkdir(parents=True)
    draw = random.Random(20261130)  # noqa: S311 - repeatable nights, not secret
    ledger = f"sqlite:///{FOLDER / 'ledger.sqlite'}"
    with Emulator() as emulator:
        for i in (1, 2):  # two constituents share an email: Convio refuses it (code 8)
            emulator.store.add(
                {"email.primary_address": "shared@example.org", "name.first": f"S{i}"}
            )
        config = {
            "api_url": emulator.api_url,
            "api_key": "demo-api-key",
            "login_name": "apiuser",
            "login_password": "apipass",
            "field_map": {"email": "email.primary_address", "first_name": "name.first"}
            | {"last_name": "name.last", "city": "primary_address.city"},
            "ledger_url": ledger,
            "results_path": str(FOLDER / "results.jsonl"),
            "max_retries": 0,
        }
        (FOLDER / "config.json").write_text(json.dumps(config))
        for number in range(1, 11):
            failing = {"Denver"} if number in (4, 7) else set()
            emulator.faults = Faults(fail_values=frozenset(failing))
            lines = [SCHEMA] + [
                {"type": "RECORD", "stream": "donors", "record": row} for row in night(number, draw)
            ]
            subprocess.run(
                [BIN / "target-convio", "--config", FOLDER / "config.json"],
                input="".join(json.dumps(line) + "\n" for line in lines),
                text=True,
                capture_output=True,
                check=False,
            )
    report = FOLDER / "report.html"
    subprocess.run(
        [BIN / "target-convio-ledger", "--ledger-url", ledger, "report", "--output", report],
        check=True,
    )
    if CHROMIUM is None:
        print("Chromium is not installed: no picture (apt-get install chromium)")
        return
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={FOLDER / 'chromium'}",
            "--window-size=800,1250",
            f"--screenshot={ROOT / 'docs' / 'report.png'}",
            report.as_uri(),
        ],
        check=True,
        capture_output=True,
    )
    print(f"wrote {report} and docs/report.png")


if __name__ == "__main__":
    main()
