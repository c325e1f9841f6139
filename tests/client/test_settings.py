"""Settings the client refuses, TLS verification, and secrets kept out of every text."""

from __future__ import annotations

import logging
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import trustme

from target_convio.convio.client import ClientSettings, ConfigError, ConvioClient, FatalCallError
from target_convio.convio.codes import Kind
from target_convio.emulator import Emulator, Faults
from tests.client.conftest import settings_for
from tests.conftest import PERSON, site_with

KEY, PASSWORD = "K3y-ü-Zx91", "pa$$&w0rd=ü"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://secure2.convio.net/myorg/site/SRConsAPI", "must use https://"),
        ("ftp://secure2.convio.net/myorg/site/SRConsAPI", "full https:// URL"),
        ("secure2.convio.net/myorg/site/SRConsAPI", "full https:// URL"),
        ("https://secure2.convio.net/myorg/site/SRConsAPI?api_key=x", "query string"),
        ("https://user:pw@secure2.convio.net/myorg/site/SRConsAPI", "must not carry a user"),
        ("https://secure2.convio.net/myorg/site/CRConsAPI", "end in /SRConsAPI"),
    ],
)
def test_bad_api_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ConvioClient(settings_for(url))


@pytest.mark.parametrize(
    "url",
    [
        "https://secure2.convio.net/myorg/site/SRConsAPI",
        "https://donate.example.org/site/SRConsAPI",
        "http://127.0.0.1:8765/demo/site/SRConsAPI",
        "http://localhost/site/SRConsAPI",
        "http://[::1]:80/site/SRConsAPI",
    ],
)
def test_good_api_urls_are_accepted(url: str) -> None:
    ConvioClient(settings_for(url)).close()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"response_format": "yaml"}, "response_format"),
        ({"api_key": ""}, "api_key is required"),
        ({"login_password": ""}, "login_password is required"),
        ({"max_concurrency": 0}, "max_concurrency"),
        ({"max_retries": -1}, "max_retries"),
        ({"request_timeout_seconds": 0}, "request_timeout_seconds"),
    ],
)
def test_bad_values_are_refused(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ConvioClient(settings_for("https://x.org/site/SRConsAPI", **overrides))


def test_settings_from_a_target_config() -> None:
    config = {
        "api_url": "https://x.org/site/SRConsAPI",
        "api_key": "k",
        "login_name": "n",
        "login_password": "p",
        "max_concurrency": 8,
        "max_requests_per_second": None,
        "field_map": {},
        "batch_size_rows": 500,
    }
    settings = ClientSettings.from_config(config)
    assert settings.max_concurrency == 8
    assert settings.max_requests_per_second is None
    assert settings.response_format == "xml"


# -- TLS ---------------------------------------------------------------------------------------


@pytest.fixture
def https_server() -> Iterator[str]:
    """An HTTPS server on loopback whose certificate no public CA signed."""
    authority = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    authority.issue_cert("127.0.0.1", "localhost").configure_cert(context)

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}/site/SRConsAPI"
    server.shutdown()
    server.server_close()
    thread.join()


def test_tls_verification_stays_on(https_server: str, make_client) -> None:
    client = make_client(https_server, max_retries=3)
    reply = client.create_or_update({"primary_email": "a@b.org"})
    assert (reply.kind, reply.attempts) == (Kind.FATAL, 1)
    assert reply.message == "TLS verification of api_url failed"
    with pytest.raises(FatalCallError, match="TLS verification"):
        client.list_user_fields()


def test_a_tls_handshake_cut_short_is_transient(make_client) -> None:
    """A server (or a middlebox) that drops the connection mid-handshake: retried, not fatal."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def drop_every_handshake() -> None:
        while True:
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            connection.recv(4096)  # the ClientHello, then the line closes
            connection.close()

    thread = threading.Thread(target=drop_every_handshake, daemon=True)
    thread.start()
    try:
        client = make_client(f"https://127.0.0.1:{port}/site/SRConsAPI", max_retries=2)
        reply = client.create_or_update({"primary_email": "a@b.org"})
    finally:
        listener.close()
    assert (reply.kind, reply.attempts) == (Kind.TRANSIENT, 3)
    assert reply.message.startswith("the TLS handshake broke off")


# -- secrets -------------------------------------------------------------------------------------


def test_no_secret_in_reprs_errors_replies_or_logs(
    make_api, make_client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    site = site_with(api_keys=[KEY], api_users=[{"login_name": "u", "login_password": PASSWORD}])
    emulator: Emulator = make_api(site).emulator
    texts: list[str] = []
    for fmt in ("xml", "json"):
        client = make_client(
            emulator,
            api_key=KEY,
            login_name="u",
            login_password=PASSWORD,
            response_format=fmt,
            max_retries=2,
        )
        texts += [repr(client), repr(client.settings), str(client.settings)]
        texts.append(repr(client.list_user_fields()))
        for faults in (
            Faults(),
            Faults(error_rate=1.0),
            Faults(http_503_rate=1.0),
            Faults(reset_rate=1.0),
        ):
            emulator.faults = faults
            texts.append(repr(client.create_or_update({"primary_email": "a@b.org", **PERSON})))
            texts.append(repr(client.create_or_update({"primary_email": "bad"})))
        emulator.faults = Faults()
        wrong = make_client(
            emulator,
            api_key=KEY,
            login_name="u",
            login_password=PASSWORD + "x",
            response_format=fmt,
        )
        with pytest.raises(FatalCallError) as caught:
            wrong.list_user_fields()
        texts += [str(caught.value), repr(caught.value), repr(caught.value.reply)]
    texts.append(caplog.text)
    everything = "\n".join(texts)
    assert "retrying" in everything  # the logs were captured
    for secret in (KEY, PASSWORD, PASSWORD + "x", "pa%24%24", "K3y-%C3%BC"):
        assert secret not in everything
