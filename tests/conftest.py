"""Shared fixtures: a fresh emulator per test, and a plain HTTP caller for it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
import xmltodict

from target_convio.emulator import Emulator, Site
from target_convio.emulator.site import default_site_data

CREDENTIALS = {"api_key": "demo-api-key", "login_name": "apiuser", "login_password": "apipass"}


class Caller:
    """Sends SRConsAPI calls to one emulator over real HTTP and decodes the answers."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self.session = requests.Session()
        self.session.trust_env = False

    def raw(
        self, method: str | None, *, http: str = "POST", url: str | None = None, **params: Any
    ) -> requests.Response:
        data = {**CREDENTIALS, "v": "1.0", **({"method": method} if method else {}), **params}
        data = {k: v for k, v in data.items() if v is not None}
        target = url or self.emulator.api_url
        if http == "GET":
            return self.session.get(target, params=data, timeout=10)
        return self.session.post(target, data=data, timeout=10)

    def json(self, method: str | None, **params: Any) -> tuple[int, dict[str, Any]]:
        """(HTTP status, decoded JSON answer) of a call with response_format=json."""
        response = self.raw(method, response_format="json", **params)
        return response.status_code, response.json()

    def xml(self, method: str | None, **params: Any) -> tuple[int, dict[str, Any]]:
        """(HTTP status, xmltodict of the answer) of a call in the default format."""
        response = self.raw(method, **params)
        return response.status_code, xmltodict.parse(response.content)

    def ok(self, method: str, **params: Any) -> dict[str, Any]:
        """The body under the root of a successful JSON answer."""
        status, answer = self.json(method, **params)
        assert status == 200, answer
        (root,) = answer
        return answer[root]

    def error(self, method: str | None, **params: Any) -> tuple[str, str]:
        """(code, message) of an errorResponse answered with HTTP 403."""
        status, answer = self.json(method, **params)
        assert status == 403, answer
        return answer["errorResponse"]["code"], answer["errorResponse"]["message"]


def site_with(**changes: Any) -> Site:
    """The default site with some keys of its site file replaced."""
    return Site.from_dict({**default_site_data(), **changes})


PERSON = {"name.first": "Ada", "name.last": "Lovelace"}


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator() as emu:
        yield emu


@pytest.fixture
def api(emulator: Emulator) -> Caller:
    return Caller(emulator)


@pytest.fixture
def make_api() -> Iterator[Any]:
    """Start an emulator for a given site (and faults) and return a Caller for it."""
    started: list[Emulator] = []

    def make(site: Site | None = None, **kwargs: Any) -> Caller:
        emu = Emulator(site, **kwargs).start()
        started.append(emu)
        return Caller(emu)

    yield make
    for emu in started:
        emu.stop()
