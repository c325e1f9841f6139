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


def test_readme_opens_with_the_test_command_that_ci_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    first_block = readme.split("```sh\n", 1)[1].split("```", 1)[0]
    assert first_block.splitlines()[0].startswith("make test")
    assert "make test" in (ROOT / ".ci" / "run").read_text()
