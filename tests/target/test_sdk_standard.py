"""The Singer SDK's standard target tests, against a running emulator."""

from __future__ import annotations

import atexit
import json
import tempfile
from pathlib import Path

import singer_sdk.testing
from singer_sdk.testing import get_target_test_class

from target_convio.emulator import Emulator
from target_convio.target import TargetConvio
from tests.target.conftest import cli

# The suite takes its config when the class is built, so the emulator starts with the module.
_EMULATOR = Emulator().start()
atexit.register(_EMULATOR.stop)

CONFIG = {
    "api_url": _EMULATOR.api_url,
    "api_key": "demo-api-key",
    "login_name": "apiuser",
    "login_password": "apipass",
    "field_map": {"id": "member_id", "email": "primary_email"},
    # The suite's records are not constituents: most are refused, which is not the point.
    "max_failure_rate": 1.0,
    "ledger_url": f"sqlite:///{tempfile.mkdtemp()}/ledger.sqlite",
}
_Standard = get_target_test_class(
    TargetConvio,
    config=CONFIG,
    parse_env_config=False,  # a developer's .env must not redirect the suite
)


class TestTargetConvio(_Standard):  # type: ignore[misc,valid-type]
    """The standard suite, with one test replaced where our contract differs on purpose."""

    def test_target_record_missing_key_property(self, tmp_path) -> None:  # type: ignore[override]
        """The SDK's own input: a record without its key property. The SDK's test expects the
        run to end (MissingKeyPropertiesError); here the record gets an `invalid` row naming
        the property, as every bad record does, and the run goes on (docs/ledger.md, "What the
        ledger guarantees": a null or missing key would give every such record one identity)."""
        stream = Path(singer_sdk.testing.__file__).with_name("target_test_streams")
        lines = (stream / "record_missing_key_property.singer").read_text()
        config = tmp_path / "config.json"
        config.write_text(json.dumps({**CONFIG, "results_path": str(tmp_path / "rows.jsonl")}))
        result = cli("--config", str(config), stdin=lines)
        assert result.returncode == 0, result.stderr
        (row,) = [json.loads(line) for line in (tmp_path / "rows.jsonl").read_text().splitlines()]
        assert (row["outcome"], row["key"]) == ("invalid", {"id": None})
        assert row["errors"][0]["field"] == "id"
        assert row["errors"][0]["code"] == "required"
