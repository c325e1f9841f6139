"""The emulator's HTTP side: routes, request parsing, injected faults, the inspection route."""

from __future__ import annotations

import ipaddress
import json
import logging
import re
import socket
import struct
import threading
import time
from collections import Counter
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from target_convio.emulator.api import Answer, answer, error_answer
from target_convio.emulator.errors import ApiError
from target_convio.emulator.faults import Decision, FaultInjector, Faults
from target_convio.emulator.methods import Methods
from target_convio.emulator.render import render
from target_convio.emulator.site import Site
from target_convio.emulator.store import Store

log = logging.getLogger("convio_emulator")

INSPECT_PATH = "/_emulator/state"
MAX_BODY_BYTES = 16 * 1024 * 1024
_HTML = "text/html;charset=UTF-8"
_SECRET = re.compile(r"(api_key|login_password)=[^&\s\"]*")


class EmulatorServer(ThreadingHTTPServer):
    """A threading HTTP server holding one site's state, call counts and faults."""

    daemon_threads = True
    request_queue_size = 256

    def __init__(self, address: tuple[str, int], site: Site, faults: Faults) -> None:
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, RequestHandler)
        self.site = site
        self.store = Store()
        for seed in site.constituents:
            self.store.add(**seed)
        self.methods = Methods(site, self.store)
        self.injector = FaultInjector(faults)
        self.calls: Counter[str] = Counter()
        self.faults_injected: Counter[str] = Counter()
        self.connections = 0
        self.counts_lock = threading.Lock()
        self.verbose = False
        self.inspect_networks = [ipaddress.ip_network("127.0.0.0/8"), ipaddress.ip_network("::1")]

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.counts_lock:
            self.connections += 1
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        # A connection marked for reset (SO_LINGER 0) must close without a FIN first.
        linger = request.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8)
        if struct.unpack("ii", linger)[0]:
            self.close_request(request)
        else:
            super().shutdown_request(request)


class RequestHandler(BaseHTTPRequestHandler):
    """Routes `/{org}/site/SRConsAPI`, `/site/SRConsAPI` and the inspection route."""

    server: EmulatorServer
    protocol_version = "HTTP/1.1"
    server_version = "ConvioEmulator/1.0"
    # Buffered writes: headers and body leave in one send, flushed after each request.
    wbufsize = 64 * 1024

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def handle_one_request(self) -> None:
        try:
            super().handle_one_request()
        except ConnectionError:  # reset while waiting for the next request (a killed client)
            self.close_connection = True

    def do_GET(self) -> None:
        self._guarded("GET")

    def do_POST(self) -> None:
        self._guarded("POST")

    def _guarded(self, http_method: str) -> None:
        try:
            self._route(http_method)
        except ConnectionError:  # the client went away (a reset, a timeout): nothing to answer
            self.close_connection = True
        except Exception:
            # An emulator bug: say so on stderr, answer like a failing server would.
            log.exception("emulator error on %s %s", http_method, urlsplit(self.path).path)
            self.close_connection = True
            self._send_html(500)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            log.info("%s %s", self.address_string(), _SECRET.sub(r"\1=***", format % args))

    def _route(self, http_method: str) -> None:
        parts = urlsplit(self.path)
        body = self._read_body()
        if body is None:
            return
        if parts.path == INSPECT_PATH:
            self._inspect(http_method)
        elif parts.path in (f"/{self.server.site.org}/site/SRConsAPI", "/site/SRConsAPI"):
            params = dict(parse_qsl(parts.query, keep_blank_values=True))
            params.update(parse_qsl(body, keep_blank_values=True))
            self._api(params, http_method)
        else:
            self._send_html(404)

    def _read_body(self) -> str | None:
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY_BYTES:
            self.close_connection = True
            self._send_html(413)
            return None
        return self.rfile.read(length).decode("utf-8", errors="replace")

    def _api(self, params: dict[str, str], http_method: str) -> None:
        method = params.get("method", "")
        with self.server.counts_lock:
            self.server.calls[method] += 1
        decision = self.server.injector.draw(method, params.values())
        if decision.kind:
            with self.server.counts_lock:
                self.server.faults_injected[decision.kind] += 1
        if decision.kind == "throttle":
            self._send_html(429, {"Retry-After": str(decision.retry_after_s)})
            return
        if decision.kind == "reset":
            self._reset()
            return
        capacity = self.server.injector.capacity
        if capacity is None:
            result = self._decide(params, http_method, decision)
            time.sleep(decision.delay_s)
        else:
            with capacity.serving() as admitted:
                if admitted:
                    result = self._decide(params, http_method, decision)
                    time.sleep(decision.delay_s)
            if not admitted:
                self._refuse(params)
                return
        if decision.kind == "lost":  # carried out, then the connection drops: no answer
            self._reset()
        elif isinstance(result, Answer):
            payload, content_type = render(result.root, result.body, result.fmt)
            self._send(result.status, payload, content_type)
        else:
            self._send_html(result)

    def _refuse(self, params: dict[str, str]) -> None:
        """Over capacity: turned away at once, as an overloaded site does."""
        refusal = self.server.injector.faults.capacity_refusal
        with self.server.counts_lock:
            self.server.faults_injected["over_capacity"] += 1
        if refusal == "http_503":
            self._send_html(503)
        else:
            result = error_answer(params, ApiError(1))
            payload, content_type = render(result.root, result.body, result.fmt)
            self._send(result.status, payload, content_type)

    def _decide(self, params: dict[str, str], http_method: str, decision: Decision) -> Answer | int:
        if decision.kind == "http_500":
            return 500
        if decision.kind == "http_503":
            return 503
        if decision.kind and decision.kind.startswith("code_"):
            return error_answer(params, ApiError(int(decision.kind.removeprefix("code_"))))
        return answer(self.server.methods, params, http_method, self.client_address[0])

    def _reset(self) -> None:
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True

    def _inspect(self, http_method: str) -> None:
        client = ipaddress.ip_address(self.client_address[0])
        if not any(client in network for network in self.server.inspect_networks):
            self._send_html(403)
        elif http_method != "GET":
            self._send_html(405)
        else:
            payload = json.dumps(snapshot(self.server), ensure_ascii=False).encode("utf-8")
            self._send(200, payload, "application/json;charset=UTF-8")

    def _send_html(self, status: int, headers: dict[str, str] | None = None) -> None:
        page = f"<html><body><h1>{status} {HTTPStatus(status).phrase}</h1></body></html>"
        self._send(status, page.encode(), _HTML, headers)

    def _send(
        self,
        status: int,
        payload: bytes,
        content_type: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)


def snapshot(server: EmulatorServer) -> dict[str, Any]:
    """Stored constituents, call counts per method and injected faults, as plain data."""
    with server.counts_lock:
        calls, faults = dict(server.calls), dict(server.faults_injected)
        connections = server.connections
    return {
        "constituents": [record.snapshot() for record in server.store.all()],
        "calls": calls,
        "faults": faults,
        "connections": connections,
    }


class Emulator:
    """A running emulator on a free port, for tests and scripts: use it as a context manager."""

    def __init__(
        self,
        site: Site | None = None,
        faults: Faults | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        self.server = EmulatorServer((host, port), site or Site.default(), faults or Faults())
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        name = host.decode() if isinstance(host, bytes) else str(host)
        name = f"[{name}]" if ":" in name else name
        return f"http://{name}:{port}"

    @property
    def api_url(self) -> str:
        return f"{self.url}/{self.server.site.org}/site/SRConsAPI"

    @property
    def site(self) -> Site:
        return self.server.site

    @property
    def store(self) -> Store:
        return self.server.store

    @property
    def faults(self) -> Faults:
        return self.server.injector.faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        self.server.injector = FaultInjector(faults)

    @property
    def calls(self) -> dict[str, int]:
        calls: dict[str, int] = snapshot(self.server)["calls"]
        return calls

    @property
    def faults_injected(self) -> dict[str, int]:
        faults: dict[str, int] = snapshot(self.server)["faults"]
        return faults

    @property
    def connections(self) -> int:
        """TCP connections accepted so far."""
        return self.server.connections

    def constituents(self) -> list[dict[str, Any]]:
        stored: list[dict[str, Any]] = snapshot(self.server)["constituents"]
        return stored

    def start(self) -> Emulator:
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join()
            self._thread = None
        self.server.server_close()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
