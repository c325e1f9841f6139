"""The README's "In your own Meltano project" and "Scheduling it", followed to the letter in a
fresh `meltano init` project: its `meltano.yml` block (installing from this checkout by path,
with the postgres extra) and its shell commands, run by bash against the emulator.

Slow (about a minute and a half): `meltano install` builds and installs the target in a
virtual environment of its own, and every `meltano` command starts a new Python.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from target_convio.emulator import Emulator

ROOT = Path(__file__).resolve().parents[2]
MELTANO = os.environ.get("MELTANO") or str(ROOT / ".venv-meltano" / "bin" / "meltano")
ROWS = 30


def readme_section(title: str) -> str:
    readme = (ROOT / "README.md").read_text()
    return readme.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def blocks(section: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", section, re.DOTALL)


def bash(folder: Path, script: str, substitutions: dict[str, str]) -> tuple[str, str]:
    """Runs a README block as a user would paste it, with this test's tap and site."""
    for ours, theirs in substitutions.items():
        script = script.replace(ours, theirs)
    result = subprocess.run(
        ["bash", "-e", "-c", script],
        cwd=folder,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
        env={
            **os.environ,
            "PATH": f"{Path(MELTANO).parent}{os.pathsep}{os.environ['PATH']}",
            "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false",
        },
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout, result.stderr


def new_project(folder: Path) -> Path:
    subprocess.run(
        [MELTANO, "init", str(folder), "--no-usage-stats"],
        check=True,
        capture_output=True,
        timeout=120,
    )
    section = readme_section("In your own Meltano project")
    [block] = blocks(section, "yaml")
    [loader] = yaml.safe_load(block)["plugins"]["loaders"]
    from_checkout = re.search(r"# or, from a checkout: pip_url: (\S+)", block)
    assert from_checkout is not None
    loader["pip_url"] = from_checkout.group(1).replace("/path/to/target-convio", str(ROOT))
    demo = yaml.safe_load((ROOT / "meltano.yml").read_text())
    tap = next(p for p in demo["plugins"]["extractors"] if p["name"] == "tap-jsonl")
    tap["config"]["path"] = str(folder / "donors.jsonl")
    project = yaml.safe_load((folder / "meltano.yml").read_text())
    project["plugins"] = {"extractors": [tap], "loaders": [loader]}
    (folder / "meltano.yml").write_text(yaml.safe_dump(project, sort_keys=False))
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "demo" / "make_donors.py"),
            "--rows",
            str(ROWS),
            "--out",
            str(folder / "donors.jsonl"),
        ],
        check=True,
        capture_output=True,
    )
    return folder


def test_the_readmes_own_project_block_and_schedule_work_in_a_fresh_project(
    tmp_path: Path,
) -> None:
    folder = new_project(tmp_path / "my-pipeline")
    results_file = folder / "output" / "convio-results.jsonl"
    with Emulator() as emulator:
        site = {
            "https://secure2.convio.net/myorg/site/SRConsAPI": emulator.api_url,
            "your-api-key": "demo-api-key",
            "your-password": "apipass",
            "tap-postgres": "tap-jsonl",
        }
        [commands] = blocks(readme_section("In your own Meltano project"), "sh")
        bash(folder, commands, site)

        rows = [json.loads(line) for line in results_file.read_text().splitlines()]
        dry, real = rows[:ROWS], rows[ROWS:]
        assert [r["outcome"] for r in dry] == ["skipped"] * ROWS  # the compare dry run first
        assert {r["predicted"] for r in dry} == {"created"}
        assert [r["seq"] for r in real] == list(range(1, ROWS + 1))
        assert {r["outcome"] for r in real} == {"created"}
        assert emulator.calls.get("createOrUpdate") == ROWS
        assert len(emulator.constituents()) == ROWS
        saved, _ = bash(folder, "meltano state get dev:tap-jsonl-to-target-convio", {})
        ours = json.loads(saved)["singer_state"]["target_convio"]
        assert ours["summary"]["created"] == ROWS
        assert (folder / ".target-convio" / "ledger.sqlite").is_file()
        env = (folder / ".env").read_text()
        assert "TARGET_CONVIO_API_KEY=demo-api-key" in env
        assert "apipass" not in (folder / "meltano.yml").read_text()

        [schedule, _cron] = blocks(readme_section("Scheduling it"), "(?:sh)?")
        output = "".join(bash(folder, schedule, site))
        again = [json.loads(line) for line in results_file.read_text().splitlines()][2 * ROWS :]
        assert [r["outcome"] for r in again] == ["unchanged"] * ROWS
        assert emulator.calls.get("createOrUpdate") == ROWS  # the scheduled run wrote nothing
        assert "apipass" not in output
        assert "demo-api-key" not in output
