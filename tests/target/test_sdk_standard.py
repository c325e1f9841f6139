"""The Singer SDK's standard target tests, against a running emulator."""

from __future__ import annotations

import atexit
import tempfile

from singer_sdk.testing import get_target_test_class

from target_convio.emulator import Emulator
from target_convio.target import TargetConvio

# The suite takes its config when the class is built, so the emulator starts with the module.
_EMULATOR = Emulator().start()
atexit.register(_EMULATOR.stop)

TestTargetConvio = get_target_test_class(
    TargetConvio,
    config={
        "api_url": _EMULATOR.api_url,
        "api_key": "demo-api-key",
        "login_name": "apiuser",
        "login_password": "apipass",
        "field_map": {"id": "member_id", "email": "primary_email"},
        # The suite's records are not constituents: most are refused, which is not the point.
        "max_failure_rate": 1.0,
        "ledger_url": f"sqlite:///{tempfile.mkdtemp()}/ledger.sqlite",
    },
    parse_env_config=False,  # a developer's .env must not redirect the suite
)
