"""A test server that answers whatever a test tells it to: the answers Convio should not give."""

from __future__ import annotations

import html
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import unquote_plus


@dataclass
class Canned:
    """One answer: status, body and headers; `hang` seconds of silence first; with `trickle`,
    the whole answer (status line and headers too) goes out a byte every `trickle` seconds."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    hang: float = 0.0
    trickle: float = 0.0


class HostileServer:
    """Serves `answer(request_number)` on a free loopback port; records what it received."""

    def __init__(self, answer: Callable[[int], Canned]) -> None:
        self.answer = answer
        self.requests: list[tuple[str, str, bytes]] = []  # (HTTP method, path, body)
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with outer._lock:
                    outer.requests.append(("POST", self.path, body))
                    number = len(outer.requests)
                canned = echoing(outer.answer(number), body)
                time.sleep(canned.hang)
                self.send_response(canned.status)
                for name, value in canned.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(canned.body)))
                if not canned.trickle:
                    self.end_headers()
                    self.wfile.write(canned.body)
                    return
                self._headers_buffer.append(b"\r\n")
                whole = b"".join(self._headers_buffer) + canned.body
                self._headers_buffer = []
                try:
                    for byte in whole:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(canned.trickle)
                except OSError:
                    pass  # the client gave up

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/demo/site/SRConsAPI"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> HostileServer:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.server.shutdown()
        self.server.server_close()


def echoing(canned: Canned, request: bytes) -> Canned:
    """The answer with `{{request}}` replaced by the request body as it came (URL-encoded),
    and `{{json}}` and `{{xml}}` by its decoded text, escaped for JSON and XML."""
    if b"{{" not in canned.body:
        return canned
    decoded = unquote_plus(request.decode())
    body = canned.body.replace(b"{{request}}", request)
    body = body.replace(b"{{json}}", json.dumps(decoded)[1:-1].encode())
    body = body.replace(b"{{xml}}", html.escape(decoded).encode())
    return replace(canned, body=body)
