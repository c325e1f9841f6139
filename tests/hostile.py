"""A test server that answers whatever a test tells it to: the answers Convio should not give."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any


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
                canned = outer.answer(number)
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
