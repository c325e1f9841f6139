"""The convio-emulator command: start, serve, inject faults, load a site file, stop."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from target_convio.emulator import Site
from target_convio.emulator.site import default_site_data
from tests.conftest import CREDENTIALS, PERSON

EXE = shutil.which("convio-emulator") or str(Path(sys.executable).with_name("convio-emulator"))


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([EXE, *args], capture_output=True, text=True, timeout=10, check=False)


class Running:
    def __init__(self, process: subprocess.Popen[str], url: str) -> None:
        self.process, self.url = process, url

    def call(self, method: str, **params: str) -> requests.Response:
        data = {**CREDENTIALS, "v": "1.0", "method": method, "response_format": "json", **params}
        return requests.post(self.url, data=data, timeout=10)


@pytest.fixture
def start() -> Iterator:
    processes: list[subprocess.Popen[str]] = []

    def run(*args: str) -> Running:
        process = subprocess.Popen(
            [EXE, "--port", "0", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        processes.append(process)
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:"), process.stderr.read() if process.stderr else ""
        return Running(process, url)

    yield run
    for process in processes:
        if process.poll() is None:
            process.kill()
        process.communicate(timeout=5)  # closes the pipes


def test_prints_its_url_serves_and_stops_on_sigterm(start) -> None:
    emulator = start()
    assert emulator.url.endswith("/demo/site/SRConsAPI")
    response = emulator.call("createOrUpdate", primary_email="cli@example.org", **PERSON)
    assert response.json()["createOrUpdateConsResponse"]["message"] == "New user added."
    emulator.process.send_signal(signal.SIGTERM)
    assert emulator.process.wait(5) == 0
    stdout, stderr = emulator.process.communicate()
    assert stdout == ""  # only the URL line goes to stdout
    assert "Traceback" not in stderr


def test_sigint_stops_it_cleanly(start) -> None:
    emulator = start()
    emulator.process.send_signal(signal.SIGINT)
    assert emulator.process.wait(15) == 0
    assert "Traceback" not in emulator.process.communicate()[1]


def test_fault_flags(start) -> None:
    emulator = start("--latency-ms", "150", "--error-rate", "1", "--seed", "1")
    started = time.monotonic()
    response = emulator.call("createOrUpdate", primary_email="a@example.org", **PERSON)
    assert time.monotonic() - started >= 0.15
    assert response.json()["errorResponse"]["code"] == "1"


def test_fault_methods_flag(start) -> None:
    emulator = start("--http-503-rate", "1", "--fault-methods", "create,update")
    assert emulator.call("listUserFields").status_code == 200
    assert emulator.call("create", primary_email="a@example.org", **PERSON).status_code == 503


def test_throttle_flag(start) -> None:
    emulator = start("--max-rps", "2")
    statuses = [emulator.call("listUserFields").status_code for _ in range(8)]
    assert statuses[:2] == [200, 200]
    assert 429 in statuses


def test_capacity_flags(start) -> None:
    emulator = start("--capacity", "1", "--capacity-refusal", "code_1", "--latency-ms", "400")
    with ThreadPoolExecutor(3) as pool:
        answers = list(pool.map(lambda _: emulator.call("listUserFields"), range(3)))
    refused = [a for a in answers if a.status_code == 403]
    assert [a.json()["errorResponse"]["code"] for a in refused] == ["1"]
    assert sorted(a.status_code for a in answers) == [200, 200, 403]


def test_site_file(start, tmp_path: Path) -> None:
    site = default_site_data()
    site.update(
        org="myorg",
        api_keys=["k2"],
        unique_email=False,
        constituents=[{"cons_id": "77", "fields": {"email.primary_address": "S@x.org"}}],
    )
    path = tmp_path / "site.json"
    path.write_text(json.dumps(site))
    emulator = start("--site", str(path))
    assert "/myorg/site/SRConsAPI" in emulator.url
    answer = emulator.call("getUser", api_key="k2", primary_email="s@x.org").json()
    assert answer["getConsResponse"]["cons_id"] == "77"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json", "cannot read site file"),
        ('{"fields": [{"name": "x", "valueType": "NUMBER"}]}', "valueType must be one of"),
        ('{"colour": "red"}', "unknown keys in site file"),
        ('{"constituents": [{"email": "a@b.org"}]}', "unknown keys in a seeded constituent"),
        ("[]", "must hold a JSON object"),
    ],
)
def test_bad_site_file_is_a_clear_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "site.json"
    path.write_text(content)
    result = run_cli("--site", str(path))
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_site_file_is_a_clear_error(tmp_path: Path) -> None:
    result = run_cli("--site", str(tmp_path / "nope.json"))
    assert result.returncode == 2
    assert "cannot read site file" in result.stderr


def test_bad_fault_value_is_a_clear_error() -> None:
    result = run_cli("--error-rate", "2")
    assert result.returncode == 2
    assert "error_rate must be between 0 and 1" in result.stderr


def test_print_site_is_a_usable_site_file(tmp_path: Path) -> None:
    result = run_cli("--print-site")
    assert result.returncode == 0
    site = Site.from_dict(json.loads(result.stdout))
    assert site.fields == Site.default().fields


def test_verbose_logs_requests_to_stderr_without_secrets(start) -> None:
    emulator = start("--verbose")
    query = (
        "method=listUserFields&v=1.0&api_key=demo-api-key&login_name=apiuser&login_password=apipass"
    )
    assert requests.get(f"{emulator.url}?{query}", timeout=10).status_code == 200
    emulator.process.send_signal(signal.SIGTERM)
    stdout, stderr = emulator.process.communicate(timeout=5)
    assert "GET /demo/site/SRConsAPI?method=listUserFields" in stderr
    assert "apipass" not in stderr
    assert "demo-api-key" not in stderr
    assert stdout == ""


def test_state_file_keeps_constituents_across_restarts(start, tmp_path: Path) -> None:
    state_file = tmp_path / "emulator-state.json"
    first = start("--state-file", str(state_file))
    created = first.call(
        "createOrUpdate", primary_email="keep@example.org", add_group_ids="1001", **PERSON
    ).json()["createOrUpdateConsResponse"]
    first.process.send_signal(signal.SIGTERM)
    assert first.process.wait(5) == 0
    saved = json.loads(state_file.read_text())
    assert [r["cons_id"] for r in saved] == [created["cons_id"]]
    second = start("--state-file", str(state_file))
    again = second.call("createOrUpdate", primary_email="keep@example.org", **PERSON).json()
    assert again["createOrUpdateConsResponse"] == {
        "cons_id": created["cons_id"],
        "message": "User updated.",
    }
    groups = second.call("getUserGroups", primary_email="keep@example.org").json()
    assert groups["getConsGroupsResponse"]["group"]["id"] == "1001"
    new = second.call("create", primary_email="new@example.org", **PERSON).json()
    assert new["createConsResponse"]["cons_id"] != created["cons_id"]


def test_a_broken_state_file_is_a_clear_error(tmp_path: Path) -> None:
    state_file = tmp_path / "emulator-state.json"
    state_file.write_text('[{"nonsense": 1}]')
    result = run_cli("--state-file", str(state_file))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr


def test_a_recorded_field_listing_replaces_the_sites_fields() -> None:
    recorded = Path(__file__).resolve().parents[1] / "data" / "listUserFields-recorded-2011.xml"
    process = subprocess.Popen(
        [EXE, "--port", "0", "--fields-listing", str(recorded)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        url = process.stdout.readline().strip()
        answer = requests.post(
            url,
            data={**CREDENTIALS, "v": "1.0", "method": "listUserFields", "response_format": "json"},
            timeout=10,
        ).json()
    finally:
        process.terminate()
        process.communicate(timeout=10)
    fields = answer["listConsFieldsResponse"]["field"]
    assert len(fields) == 49
    assert all({"group", "choices", "subGroup"}.isdisjoint(field) for field in fields)
    by_name = {f["name"]: f for f in fields}
    assert by_name["gender"] == {
        "name": "gender",
        "label": "Gender",
        "valueType": "TEXT",
        "maxChars": "20",
        "required": "false",
        "isUserModifiable": "true",
    }
    assert by_name["user_name"]["required"] == "true"
