"""Clients wired to a test server, with backoff short enough for tests."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from target_convio.convio.client import ClientSettings, ConvioClient
from target_convio.emulator import Emulator


def settings_for(url: str, **overrides: Any) -> ClientSettings:
    values: dict[str, Any] = {
        "api_url": url,
        "api_key": "demo-api-key",
        "login_name": "apiuser",
        "login_password": "apipass",
        "backoff_seconds": 0.001,
        "max_backoff_seconds": 0.01,
        "request_timeout_seconds": 5.0,
    }
    return ClientSettings(**{**values, **overrides})


@pytest.fixture
def make_client() -> Iterator[Any]:
    made: list[ConvioClient] = []

    def make(target: Emulator | str, **overrides: Any) -> ConvioClient:
        url = target if isinstance(target, str) else target.api_url
        client = ConvioClient(settings_for(url, **overrides))
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture(params=["xml", "json"])
def response_format(request: pytest.FixtureRequest) -> str:
    return request.param
