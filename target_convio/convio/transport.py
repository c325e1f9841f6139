"""Carrying one request body to SRConsAPI and its answer back: the client's HTTP seam.

`ConvioClient` speaks to a `Transport`. The real one is `HTTPTransport` (urllib3, one
keep-alive pool, verified TLS); a test can hand the client any object with the same `send`
to answer calls without a socket.
"""

from __future__ import annotations

import builtins
import io
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

import certifi
import urllib3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.exceptions import (
    ConnectTimeoutError,
    HTTPError,
    NewConnectionError,
    SSLError,
    TimeoutError,
)

MAX_ANSWER_BYTES = 8 * 1024 * 1024
HEADERS = {
    "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8",
    "Accept": "text/xml, application/json",
    "User-Agent": "target-convio",
}


@dataclass(frozen=True)
class Response:
    """An HTTP answer: status, body (at most MAX_ANSWER_BYTES + 1) and its Retry-After."""

    status: int
    body: bytes
    retry_after: str | None = None


class TransportError(Exception):
    """No answer came back; the message says why and holds no secret.

    `fatal` is set when retrying cannot help (the server's certificate is not trusted);
    `maybe_sent` unless the request certainly never reached the server (no connection).
    """

    def __init__(self, message: str, *, fatal: bool = False, maybe_sent: bool = True) -> None:
        super().__init__(message)
        self.message = message
        self.fatal = fatal
        self.maybe_sent = maybe_sent


class Transport(Protocol):
    def send(self, body: bytes) -> Response:
        """POST a form-encoded body; TransportError when no answer arrived."""
        ...

    def close(self) -> None:
        """Drop pooled connections."""
        ...


class HTTPTransport:
    """POSTs to one SRConsAPI URL over a keep-alive pool of `max_connections` connections.

    Each call, from connecting to the last byte of its answer, ends within `timeout_seconds`:
    every read waits only for what is left of that time, so an answer that trickles in a
    byte at a time cannot hold a call (or a stopping run) for longer.
    """

    def __init__(self, api_url: str, max_connections: int, timeout_seconds: float) -> None:
        self._path = urlsplit(api_url).path
        tls = {"ca_certs": certifi.where()} if api_url.startswith("https:") else {}
        self._pool = urllib3.connection_from_url(
            api_url, maxsize=max_connections, block=True, headers=HEADERS, **tls
        )
        self._pool.ConnectionCls = _HTTPSConnection if tls else _HTTPConnection
        self._timeout = urllib3.Timeout(total=timeout_seconds)
        self._timeout_seconds = timeout_seconds

    def send(self, body: bytes) -> Response:
        _call.deadline = time.monotonic() + self._timeout_seconds
        try:
            return self._send(body)
        finally:
            _call.deadline = None

    def _send(self, body: bytes) -> Response:
        try:
            response = self._pool.urlopen(
                "POST",
                self._path,
                body=body,
                retries=False,
                timeout=self._timeout,
                preload_content=False,
                assert_same_host=False,
            )
        except SSLError as exc:
            cause = exc.args[0] if exc.args else exc
            if isinstance(cause, (ssl.SSLCertVerificationError, ssl.CertificateError)):
                raise TransportError("TLS verification of api_url failed", fatal=True) from None
            raise TransportError(f"the TLS handshake broke off ({type(cause).__name__})") from None
        except (NewConnectionError, ConnectTimeoutError):  # kinds of TimeoutError: first
            where = f"{self._pool.host}:{self._pool.port}"
            raise TransportError(f"cannot connect to {where}", maybe_sent=False) from None
        except TimeoutError:
            raise TransportError(f"no full answer within {self._timeout_seconds:g} s") from None
        except HTTPError as exc:
            raise TransportError(f"connection failed ({type(exc).__name__})") from None
        try:
            data = response.read(MAX_ANSWER_BYTES + 1)
        except TimeoutError:
            raise TransportError(f"no full answer within {self._timeout_seconds:g} s") from None
        except HTTPError as exc:
            raise TransportError(f"the answer broke off ({type(exc).__name__})") from None
        else:
            if len(data) > MAX_ANSWER_BYTES:
                response.close()  # the rest is not wanted; this connection is not reused
        finally:
            response.release_conn()
        return Response(response.status, data, response.headers.get("Retry-After"))

    def close(self) -> None:
        self._pool.close()


_call = threading.local()  # `deadline`: when the call this thread is making must end


class _DeadlineReader(io.RawIOBase):
    """Reads a socket, each read waiting only until the current call's deadline."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        deadline: float | None = getattr(_call, "deadline", None)
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                raise builtins.TimeoutError("the call's time is up")
            self._sock.settimeout(left)
        return self._sock.recv_into(buffer)


class _DeadlineSocket:
    """A connected socket whose answers are read through a _DeadlineReader."""

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock

    def makefile(self, mode: str = "rb", *args: Any, **kwargs: Any) -> io.BufferedReader:
        return io.BufferedReader(_DeadlineReader(self._sock))

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


class _ReadsAgainstDeadline:
    """Connects as its connection class does, then reads through a _DeadlineSocket."""

    sock: Any

    def connect(self) -> None:
        super().connect()  # type: ignore[misc]
        self.sock = _DeadlineSocket(self.sock)


class _HTTPConnection(_ReadsAgainstDeadline, HTTPConnection):
    pass


class _HTTPSConnection(_ReadsAgainstDeadline, HTTPSConnection):
    pass
