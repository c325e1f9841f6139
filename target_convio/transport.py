"""Carrying one request body to SRConsAPI and its answer back: the client's HTTP seam.

`ConvioClient` speaks to a `Transport`. The real one is `HTTPTransport` (urllib3, one
keep-alive pool, verified TLS); a test can hand the client any object with the same `send`
to answer calls without a socket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

import certifi
import urllib3
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
    """POSTs to one SRConsAPI URL over a keep-alive pool of `max_connections` connections."""

    def __init__(self, api_url: str, max_connections: int, timeout_seconds: float) -> None:
        self._path = urlsplit(api_url).path
        tls = {"ca_certs": certifi.where()} if api_url.startswith("https:") else {}
        self._pool = urllib3.connection_from_url(
            api_url, maxsize=max_connections, block=True, headers=HEADERS, **tls
        )
        self._timeout = urllib3.Timeout(total=timeout_seconds)
        self._timeout_seconds = timeout_seconds

    def send(self, body: bytes) -> Response:
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
        except SSLError:
            raise TransportError("TLS verification of api_url failed", fatal=True) from None
        except (NewConnectionError, ConnectTimeoutError):  # kinds of TimeoutError: first
            where = f"{self._pool.host}:{self._pool.port}"
            raise TransportError(f"cannot connect to {where}", maybe_sent=False) from None
        except TimeoutError:
            raise TransportError(f"no answer within {self._timeout_seconds:g} s") from None
        except HTTPError as exc:
            raise TransportError(f"connection failed ({type(exc).__name__})") from None
        try:
            data = response.read(MAX_ANSWER_BYTES + 1)
        except TimeoutError:
            raise TransportError("the answer stopped arriving") from None
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
