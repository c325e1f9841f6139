"""The Meltano Hub definition (hub/target-convio.yml) says what `target-convio --about` says."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from tests.target.conftest import cli

ROOT = Path(__file__).resolve().parents[1]
HUB = ROOT / "hub" / "target-convio.yml"


def test_the_hub_definition_is_generated_from_about() -> None:
    generated = subprocess.run(
        [sys.executable, str(ROOT / "hub" / "generate.py")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert HUB.read_text() == generated, "run: .venv/bin/python hub/generate.py > " + str(HUB)


def test_every_setting_is_in_the_hub_definition_as_the_hub_wants_it() -> None:
    about = json.loads(cli("--about", "--format", "json").stdout)
    hub = yaml.safe_load(HUB.read_text())
    settings = {entry["name"]: entry for entry in hub["settings"]}
    assert list(settings) == list(about["settings"]["properties"])
    assert hub["capabilities"] == about["capabilities"]
    assert hub["settings_group_validation"] == [about["settings"]["required"]]
    for name, entry in settings.items():
        assert all(entry.get(field) for field in ("kind", "label", "description")), name
        secret = about["settings"]["properties"][name].get("secret", False)
        assert (entry["kind"] == "password") is secret, name
        assert entry.get("sensitive", False) is secret, name
    assert {"api_key", "login_password", "ledger_url"} <= {
        name for name, entry in settings.items() if entry.get("sensitive")
    }
    assert [o["value"] for o in settings["dry_run"]["options"]] == ["true", "false", "compare"]
