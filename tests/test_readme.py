"""The README's promises point at tests that exist."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_test_named_in_the_readme_exists() -> None:
    names: set[str] = set()
    for path in (ROOT / "tests").rglob("test_*.py"):
        names |= set(re.findall(r"^def (test_\w+)", path.read_text(), re.MULTILINE))
    referenced = re.findall(r"`(?:[\w.]+::)?(test_[\w*]+)`", (ROOT / "README.md").read_text())
    assert len(referenced) > 30
    missing = [ref for ref in referenced if not fnmatch.filter(names, ref)]
    assert missing == []


def test_readme_opens_with_the_demo_and_the_test_command_that_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```sh\n", 1)[1].split("```", 1)[0]
    commands = [line.split("#")[0].strip() for line in first_block.splitlines()]
    assert commands == ["make demo", "make test"]
    assert "\nmake test\n" in (ROOT / ".ci" / "run").read_text()


def test_every_setting_is_in_the_readme_settings_table() -> None:
    from target_convio.settings import SETTING_NAMES  # noqa: PLC0415

    readme = (ROOT / "README.md").read_text()
    table = readme.split("### Settings", 1)[1].split("###", 1)[0]
    documented = set(re.findall(r"`(\w+)`", table))
    assert set(SETTING_NAMES) <= documented


def test_the_error_code_table_matches_codes_py() -> None:
    from target_convio.codes import CODES, GLOBAL  # noqa: PLC0415

    readme = (ROOT / "README.md").read_text()
    rows = re.findall(r"^\| ([\d, -]+) \| [^|]+ \| (\w+) \|([^|]*)\|$", readme, re.MULTILINE)
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


def test_every_outcome_is_explained_in_the_readme() -> None:
    from target_convio.outcomes import Outcome  # noqa: PLC0415

    readme = (ROOT / "README.md").read_text()
    section = readme.split("### Results and STATE", 1)[1].split("###", 1)[0]
    explained = set(re.findall(r"`(\w+)`", section))
    assert {outcome.value for outcome in Outcome} <= explained
