"""The command line: --about in every format, settings from the environment, bad settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.target.conftest import cli, donor, schema, singer_lines


def test_about_json_lists_every_setting_with_secrets_marked() -> None:
    result = cli("--about", "--format", "json")
    assert result.returncode == 0, result.stderr
    about = json.loads(result.stdout)
    settings = about["settings"]["properties"]
    for name in (
        "api_url",
        "api_key",
        "login_name",
        "login_password",
        "response_format",
        "field_map",
        "sync_mode",
        "max_concurrency",
        "max_requests_per_second",
        "request_timeout_seconds",
        "max_retries",
        "batch_size_rows",
        "results_path",
        "results_in_state",
        "max_failure_rate",
        "add_group_ids",
        "add_interest_ids",
        "source",
        "no_welcome",
        "dry_run",
    ):
        assert name in settings, name
    assert settings["api_key"]["secret"] is True
    assert settings["login_password"]["secret"] is True
    assert "secret" not in settings["login_name"]
    assert set(about["settings"]["required"]) == {
        "api_url",
        "api_key",
        "login_name",
        "login_password",
    }
    assert about["version"] == "0.1.0"


@pytest.mark.parametrize("fmt", ["markdown", "text"])
def test_about_text_formats(fmt: str) -> None:
    args = ("--about", "--format", fmt) if fmt != "text" else ("--about",)
    result = cli(*args)
    assert result.returncode == 0, result.stderr
    assert "login_password" in result.stdout
    assert "max_failure_rate" in result.stdout


def test_settings_from_the_environment(emulator, tmp_path: Path) -> None:
    env = {
        "TARGET_CONVIO_API_URL": emulator.api_url,
        "TARGET_CONVIO_API_KEY": "demo-api-key",
        "TARGET_CONVIO_LOGIN_NAME": "apiuser",
        "TARGET_CONVIO_LOGIN_PASSWORD": "apipass",
        "TARGET_CONVIO_FIELD_MAP": json.dumps(
            {"email": "primary_email", "first_name": "name.first", "last_name": "name.last"}
        ),
        "TARGET_CONVIO_RESULTS_IN_STATE": "summary",
    }
    stdin = singer_lines([schema(), donor(1)])
    result = cli("--config", "ENV", env=env, stdin=stdin, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (line,) = result.stdout.splitlines()
    assert json.loads(line)["target_convio"]["summary"]["created"] == 1
    assert "results" not in json.loads(line)["target_convio"]


def test_settings_from_a_dotenv_file_in_the_working_directory(emulator, tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        f"TARGET_CONVIO_API_URL={emulator.api_url}\nTARGET_CONVIO_API_KEY=demo-api-key\n"
        "TARGET_CONVIO_LOGIN_NAME=apiuser\nTARGET_CONVIO_LOGIN_PASSWORD=apipass\n"
        'TARGET_CONVIO_FIELD_MAP={"email": "primary_email", "first_name": "name.first", '
        '"last_name": "name.last"}\n'
    )
    stdin = singer_lines([schema(), donor(1)])
    result = cli("--config", "ENV", stdin=stdin, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["target_convio"]["summary"]["created"] == 1
    assert emulator.calls["createOrUpdate"] == 1


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"api_url": "http://example.org/site/SRConsAPI"}, "must use https://"),
        ({"api_url": "https://x.org/site/SRConsAPI?api_key=1"}, "query string"),
        (
            {"max_failure_rate": 0},
            "max_failure_rate must be a number above 0 and at most 1 (got 0)",
        ),
        ({"batch_size_rows": 0}, "batch_size_rows must be an integer of at least 1 (got 0)"),
        (
            {"max_concurrency": "abc"},
            "max_concurrency must be an integer from 1 to 256 (got 'abc')",
        ),
        (
            {"max_requests_per_second": 0},
            "max_requests_per_second must be a number above 0 (got 0)",
        ),
        ({"sync_mode": "merge"}, "sync_mode must be one of upsert, update_only, create_only"),
        ({"request_timeout_seconds": 1e300}, "request_timeout_seconds must be a number above 0"),
        ({"field_map": {"email": 5}}, "field_map must be an object whose values are text"),
        ({"add_group_ids": "1001"}, "add_group_ids must be a list of integers (got '1001')"),
        ({"field_map": {"email": "no_such_field"}}, "no_such_field"),
        (
            {"field_map": {"city": "primary_address.cty"}},
            "primary_address.cty (did you mean primary_address.city?)",
        ),
        ({"field_map": {"email": "primary_emial"}}, "(did you mean primary_email?)"),
        (
            {"max_concurency": 4},
            "Invalid setting: unknown setting 'max_concurency' (did you mean max_concurrency?)",
        ),
        ({"feild_map": {}}, "unknown setting 'feild_map' (did you mean field_map?)"),
        ({"dryrun": True}, "unknown setting 'dryrun' (did you mean dry_run?)"),
        ({"colour": "blue"}, "unknown setting 'colour'"),
        ({"dry_run": "yes"}, "dry_run must be one of true, false, compare (got 'yes')"),
        ({"api_key": "wrong"}, "Incorrect API key. (api_key is not the site's API key)"),
        ({"login_password": "wrong"}, "login_name/login_password"),
        ({"api_url": "http://127.0.0.1:9/site/SRConsAPI", "max_retries": 0}, "cannot connect"),
    ],
)
def test_bad_settings_end_in_one_clear_line(
    emulator, change: dict, message: str, tmp_path: Path
) -> None:
    config = {
        "api_url": emulator.api_url,
        "api_key": "demo-api-key",
        "login_name": "apiuser",
        "login_password": "apipass",
        **change,
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    stdin = singer_lines([schema(), donor(1)])
    result = cli("--config", str(path), stdin=stdin)
    assert result.returncode == 1
    assert result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if "| ERROR" in line]
    assert len(errors) == 1, result.stderr
    assert message in errors[0]
    assert "Traceback" not in result.stderr
    assert emulator.calls.get("createOrUpdate", 0) == 0


def test_an_unwritable_results_path_stops_before_any_call(emulator, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    config = {
        "api_url": emulator.api_url,
        "api_key": "demo-api-key",
        "login_name": "apiuser",
        "login_password": "apipass",
        "results_path": str(blocker / "results.jsonl"),
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    stdin = singer_lines([schema(), donor(1)])
    result = cli("--config", str(path), stdin=stdin)
    assert result.returncode == 1
    errors = [line for line in result.stderr.splitlines() if "| ERROR" in line]
    assert len(errors) == 1
    assert "Invalid setting: results_path" in errors[0]
    assert str(blocker) in errors[0]
    assert emulator.calls == {}
    assert "Traceback" not in result.stderr


def test_every_invalid_setting_is_named_before_any_input_is_read(emulator, tmp_path: Path) -> None:
    config = {
        "api_url": emulator.api_url,
        "api_key": 12345,
        "login_name": "apiuser",
        "max_requests_per_second": 0,
        "results_in_state": "all",
    }
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    result = cli("--config", str(path), stdin="this line is not JSON\n")
    assert result.returncode == 1
    assert result.stdout == ""
    errors = [line for line in result.stderr.splitlines() if "| ERROR" in line]
    assert len(errors) == 1, result.stderr
    assert errors[0].endswith(
        "target-convio: Invalid setting: api_key must be text; login_password is required; "
        "max_requests_per_second must be a number above 0 (got 0); "
        "results_in_state must be one of records, summary, none (got 'all')"
    )
    assert "12345" not in result.stderr  # a secret's value is never shown, even a wrong one
    assert "not JSON" not in result.stderr
    assert emulator.calls == {}


def test_the_sdks_and_meltanos_own_settings_are_accepted(emulator, config_for, run_target) -> None:
    config = config_for(
        emulator,
        stream_maps={},
        validate_records=True,
        add_record_metadata=True,
        load_method="upsert",
        flattening_enabled=False,
        _meltano_extra="kept by Meltano for itself",
    )
    run = run_target(config, [schema(), donor(1)])
    assert run.returncode == 0, run.stderr
    assert [r["outcome"] for r in run.rows] == ["created"]
    assert "load_method is ignored: sync_mode says what a write does" in run.stderr
    assert "add_record_metadata is ignored" in run.stderr


def test_about_describes_only_settings_that_do_something() -> None:
    about = json.loads(cli("--about", "--format", "json").stdout)
    assert not {"load_method", "add_record_metadata"} & set(about["settings"]["properties"])


def test_help_says_what_the_target_is_and_where_its_docs_are() -> None:
    result = cli("--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "Loads constituent records from any Singer tap into Convio / Blackbaud Luminate" in text
    assert "target-convio --about" in text
    assert "README.md" in text
    assert "docs/" in text
