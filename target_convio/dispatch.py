"""Sending calls concurrently, and stopping all of them for good when the run must end."""

from __future__ import annotations

import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import Any

from target_convio.breaker import FailureBreaker
from target_convio.convio.answers import Reply, transient
from target_convio.convio.budget import BudgetError
from target_convio.convio.client import ConvioClient, describe
from target_convio.convio.codes import Kind

log = logging.getLogger(__name__)
MatchKey = tuple[str, str]


@dataclass
class Chain:
    """One key's writes in this run: sent one after another, each with the cons_id the one
    before it left (at first, the one the ledger remembers)."""

    cons_id: str | None = None


class Dispatcher:
    """Runs client calls on `max_concurrency` threads.

    Calls that could address the same constituent (a shared cons_id, member_id or email) run
    one after another, in input order, so a record repeated in the input is created once
    and then updated, never created twice by two calls racing.

    A future's result is None when the call was never made, or cut short, because the run is
    stopping (a fatal answer, the failure breaker, a signal); that record has no result yet.
    """

    def __init__(self, client: ConvioClient, max_concurrency: int, breaker: FailureBreaker) -> None:
        self.client = client
        self.breaker = breaker
        self.stop_reason: str | None = None
        self.exit_code = 1  # how a stopped run ends: 75 when the call budget is spent
        self._lock = threading.Lock()
        self._latest: dict[MatchKey, Future[Reply | None]] = {}
        self._executor = ThreadPoolExecutor(max_concurrency, thread_name_prefix="convio-call")

    def submit(
        self,
        method: str,
        params: dict[str, Any],
        *,
        chain: Chain | None = None,
        without_cons_id: dict[str, Any] | None = None,
        read_only: bool = False,
    ) -> Future[Reply | None]:
        """Send a call.

        `chain`: the key's earlier writes in this run; the call follows them and carries the
        cons_id they left, unless `params` has its own. `without_cons_id`: what to send
        instead if Convio answers 16 to that cons_id (deleted or merged in Luminate).
        `read_only` calls (a compare dry run's getUser) do not count for the breaker.
        """
        keys = match_keys(params)
        if chain is not None:
            keys.append(("chain", str(id(chain))))
        with self._lock:
            earlier = {self._latest[key] for key in keys if key in self._latest}
            future = self._executor.submit(
                self._call,
                method,
                params,
                earlier,
                chain=chain,
                without_cons_id=without_cons_id,
                read_only=read_only,
            )
            self._latest.update(dict.fromkeys(keys, future))
        future.add_done_callback(lambda done: self._forget(keys, done))
        return future

    def _forget(self, keys: list[MatchKey], done: Future[Reply | None]) -> None:
        with self._lock:
            for key in keys:
                if self._latest.get(key) is done:
                    del self._latest[key]

    def _call(
        self,
        method: str,
        params: dict[str, Any],
        earlier: set[Future[Reply | None]],
        *,
        chain: Chain | None,
        without_cons_id: dict[str, Any] | None,
        read_only: bool,
    ) -> Reply | None:
        # Earlier calls were queued first, so they have started: waiting cannot deadlock.
        wait(earlier)
        if self.stop_reason:
            return None
        supplied = chain.cons_id if chain is not None and not params.get("cons_id") else None
        try:
            reply = self.client.call(
                method, {**params, "cons_id": supplied} if supplied else params
            )
            if supplied and reply.code == "16" and not self.stop_reason:
                again = self.client.call(method, without_cons_id or params)
                attempts = reply.attempts + again.attempts
                reply = replace(again, attempts=attempts, without_cons_id=True)
        except BudgetError as exc:
            self.stop(str(exc), exit_code=exc.exit_code)
            return None
        except Exception as exc:  # a bug must cost one record a row, not the run its results
            log.warning("%s: internal error (%s); the record fails", method, type(exc).__name__)
            log.debug("Details of the internal error", exc_info=True)
            reply = transient(f"internal error ({type(exc).__name__})")
        if reply.kind is Kind.FATAL:
            self.stop(f"Convio refused {method} ({describe(reply)})")
            return None
        if chain is not None and reply.kind is Kind.OK and reply.cons_id:
            chain.cons_id = reply.cons_id
        elif chain is not None and reply.without_cons_id:
            chain.cons_id = None
        if self.stop_reason and reply.kind is Kind.TRANSIENT:
            return None  # its retries were cut short by the stop
        # A read's "no record matches" is an answer, not a failure: reads do not count.
        reason = None if read_only else self.breaker.observe(reply.kind is not Kind.OK)
        if reason:
            self.stop(reason)
        return reply

    def stop(self, reason: str, exit_code: int = 1) -> None:
        """No call starts after this; backoff waits end; calls in flight finish."""
        with self._lock:
            if self.stop_reason is None:
                self.stop_reason = reason
                self.exit_code = exit_code
        self.client.close()

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        self.client.close()


def match_keys(params: dict[str, Any]) -> list[MatchKey]:
    """The values by which Convio could match this record to a constituent."""
    keys = [(name, str(params[name])) for name in ("cons_id", "member_id") if params.get(name)]
    email = params.get("primary_email") or params.get("email.primary_address")
    if email:
        keys.append(("email", str(email).strip().lower()))
    return keys
