"""The README and `docs/` keep their promises: named tests exist, tables match the code, links
resolve, and the quick start works as written."""

from __future__ import annotations

import fnmatch
import json
import re
import subprocess
import sys
from pathlib import Path

from target_convio.emulator import Emulator

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def page(name: str) -> str:
    return (ROOT / name).read_text()


def section(text: str, heading: str) -> str:
    """The text under a heading, up to the next heading of any level."""
    return re.split(r"\n#+ ", text.split(f"\n{heading}\n", 1)[1], maxsplit=1)[0]


def test_every_test_named_in_the_readme_and_docs_exists() -> None:
    names: set[str] = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        names |= set(re.findall(r"^def (test_\w+)", path.read_text(), re.MULTILINE))
    text = "".join(path.read_text() for path in PAGES)
    referenced = re.findall(r"`(?:[\w.]+::)?(test_[\w*]+)`", text)
    assert len(referenced) > 30
    missing = [ref for ref in referenced if not fnmatch.filter(names, ref)]
    assert missing == []


def test_every_local_link_resolves_and_every_docs_page_is_linked_from_the_readme() -> None:
    for path in PAGES:
        for target in re.findall(r"\]\(([^)#:]+)(?:#[^)]*)?\)", path.read_text()):
            assert (path.parent / target).exists(), f"{path.name} links to {target}"
    readme = page("README.md")
    assert {p.name for p in PAGES[1:]} <= set(re.findall(r"\]\(docs/([\w-]+\.md)", readme))


def test_readme_opens_with_the_demo_and_the_test_command_that_ci_runs() -> None:
    readme = page("README.md")
    first_block = readme.split("```sh\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.splitlines()]
    assert commands == ["make demo", "make test"]
    assert "\nmake test\n" in page(".ci/run")


def test_every_setting_is_in_the_settings_page_and_the_key_ones_in_the_readme() -> None:
    from target_convio.settings import SETTING_NAMES  # noqa: PLC0415

    table = page("docs/settings.md").split("\n## ", 1)[0]
    assert set(SETTING_NAMES) <= set(re.findall(r"`(\w+)`", table))
    key_settings = section(page("README.md"), "## Key settings")
    assert {"api_url", "api_key", "field_map", "dry_run", "ledger_url"} <= set(
        re.findall(r"`(\w+)`", key_settings)
    )


def test_the_error_code_table_matches_codes_py() -> None:
    from target_convio.convio.codes import CODES, GLOBAL  # noqa: PLC0415

    text = page("docs/results.md")
    rows = re.findall(r"^\| ([\d, -]+) \| [^|]+ \| (\w+) \|([^|]*)\|$", text, re.MULTILINE)
    documented: dict[str, tuple[str, str | None, str]] = {}
    for codes, kind, errors in rows:
        match = re.match(r"`(\w+)`(?: \(`(\w+)`\))?", errors.strip())
        error, field = (match.group(1), match.group(2) or GLOBAL) if match else (None, GLOBAL)
        for part in codes.split(","):
            low, _, high = part.strip().partition("-")
            for code in range(int(low), int(high or low) + 1):
                documented[str(code)] = (kind, error, field)
    actual = {code: (c.kind.value, c.error, c.field) for code, c in CODES.items()}
    assert documented == actual


def test_every_outcome_is_explained_in_the_results_page() -> None:
    from target_convio.outcomes import Outcome  # noqa: PLC0415

    rows_and_state = page("docs/results.md").split("\n## ", 1)[0]
    explained = set(re.findall(r"`(\w+)`", rows_and_state))
    assert {outcome.value for outcome in Outcome} <= explained


def test_the_quick_start_works_as_written(tmp_path: Path) -> None:
    quick_start = section(page("README.md"), "## Quick start: five minutes, no Meltano")
    [config_text] = re.findall(r"```json\n(.*?)```", quick_start, re.DOTALL)
    singer = quick_start.split("<<'EOF'\n", 1)[1].split("\nEOF\n", 1)[0]
    target = Path(sys.executable).with_name("target-convio")
    with Emulator() as emulator:
        config = json.loads(config_text)
        assert config["api_url"] == "http://127.0.0.1:8765/demo/site/SRConsAPI"
        config["api_url"] = emulator.api_url  # the README's port may be taken here
        (tmp_path / "config.json").write_text(json.dumps(config))
        for _ in range(2):
            run = subprocess.run(
                [str(target), "--config", "config.json"],
                input=singer,
                cwd=tmp_path,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert run.returncode == 0, run.stderr
        results = (tmp_path / "output/results.jsonl").read_text()
        rows = [json.loads(line) for line in results.splitlines()]
        assert [(r["key"], r["outcome"]) for r in rows] == [
            ({"id": 1}, "created"),
            ({"id": 2}, "invalid"),
            ({"id": 1}, "unchanged"),
            ({"id": 2}, "invalid"),
        ]
        [stored] = emulator.constituents()
        assert stored["fields"]["name.first"] == "Ada"
        assert emulator.calls["createOrUpdate"] == 1
