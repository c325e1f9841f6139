"""Sending calls concurrently, and stopping all of them for good when the run must end."""

from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from target_convio.answers import Reply
from target_convio.breaker import FailureBreaker
from target_convio.client import ConvioClient, describe
from target_convio.codes import Kind


class Dispatcher:
    """Runs client calls on `max_concurrency` threads.

    A future's result is None when the call was never made, or cut short, because the run is
    stopping (a fatal answer, or the failure breaker); that record has no result yet.
    """

    def __init__(self, client: ConvioClient, max_concurrency: int, breaker: FailureBreaker) -> None:
        self.client = client
        self.breaker = breaker
        self.stop_reason: str | None = None
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_concurrency, thread_name_prefix="convio-call")

    def submit(self, method: str, params: dict[str, Any]) -> Future[Reply | None]:
        return self._executor.submit(self._call, method, params)

    def _call(self, method: str, params: dict[str, Any]) -> Reply | None:
        if self.stop_reason:
            return None
        reply = self.client.call(method, params)
        if reply.kind is Kind.FATAL:
            self.stop(f"Convio refused {method} ({describe(reply)})")
            return None
        if self.stop_reason and reply.kind is Kind.TRANSIENT:
            return None  # its retries were cut short by the stop
        reason = self.breaker.observe(reply.kind is not Kind.OK)
        if reason:
            self.stop(reason)
        return reply

    def stop(self, reason: str) -> None:
        """No call starts after this; backoff waits end; calls in flight finish."""
        with self._lock:
            if self.stop_reason is None:
                self.stop_reason = reason
        self.client.close()

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        self.client.close()
