"""Sending calls concurrently, and stopping all of them for good when the run must end."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from target_convio.breaker import FailureBreaker
from target_convio.convio.answers import Reply, transient
from target_convio.convio.budget import BudgetError
from target_convio.convio.client import ConvioClient, describe
from target_convio.convio.codes import Kind

log = logging.getLogger(__name__)
MatchKey = tuple[str, str]
T = TypeVar("T")


@dataclass
class Chain:
    """One key's writes in this run: sent one after another, each with the cons_id the one
    before it left (at first, the one the ledger remembers)."""

    cons_id: str | None = None


class Session:
    """The calls of one task: reads, and writes along its key's chain. Each returns None once
    the run is stopping; then the record gets no row."""

    def __init__(self, dispatcher: Dispatcher, chain: Chain | None) -> None:
        self._dispatcher = dispatcher
        self.chain = chain

    def read(self, method: str, params: dict[str, Any]) -> Reply | None:
        """A read: its failures do not count for the failure breaker."""
        return self._dispatcher.send(method, params)

    def write(
        self,
        method: str,
        params: dict[str, Any],
        *,
        without_cons_id: dict[str, Any] | None = None,
    ) -> Reply | None:
        """A write, with the cons_id the chain holds unless `params` has its own; resent as
        `without_cons_id` if Convio no longer knows that cons_id (code 16)."""
        dispatcher, chain = self._dispatcher, self.chain
        supplied = chain.cons_id if chain is not None and not params.get("cons_id") else None
        reply = dispatcher.send(method, {**params, "cons_id": supplied} if supplied else params)
        if reply is not None and supplied and reply.code == "16":
            again = dispatcher.send(method, without_cons_id or params)
            if again is None:
                return None
            reply = replace(again, attempts=reply.attempts + again.attempts, without_cons_id=True)
        if reply is None:
            return None
        if chain is not None and reply.kind is Kind.OK and reply.cons_id:
            chain.cons_id = reply.cons_id
        elif chain is not None and reply.without_cons_id:
            chain.cons_id = None
        reason = dispatcher.breaker.observe(reply.kind is not Kind.OK)
        if reason:
            dispatcher.stop(reason, kind="breaker")
        return reply


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
        self.stop_kind: str | None = None
        self._lock = threading.Lock()
        self._latest: dict[MatchKey, Future[Any]] = {}
        self._executor = ThreadPoolExecutor(max_concurrency, thread_name_prefix="convio-call")

    def submit(
        self,
        method: str,
        params: dict[str, Any],
        *,
        chain: Chain | None = None,
        without_cons_id: dict[str, Any] | None = None,
    ) -> Future[Reply | None]:
        """Send a write.

        `chain`: the key's earlier writes in this run; the call follows them and carries the
        cons_id they left, unless `params` has its own. `without_cons_id`: what to send
        instead if Convio answers 16 to that cons_id (deleted or merged in Luminate).
        """
        return self.submit_task(
            params,
            lambda session: session.write(method, params, without_cons_id=without_cons_id),
            chain=chain,
        )

    def submit_task(
        self, params: dict[str, Any], task: Callable[[Session], T | None], *, chain: Chain | None
    ) -> Future[T | None]:
        """Run `task`, which reads and writes through its Session, after every earlier task
        that could address the same constituent as `params` (or shares its `chain`)."""
        keys = match_keys(params)
        if chain is not None:
            keys.append(("chain", str(id(chain))))
        with self._lock:
            earlier = {self._latest[key] for key in keys if key in self._latest}
            future: Future[T | None] = self._executor.submit(self._run, task, earlier, chain)
            self._latest.update(dict.fromkeys(keys, future))
        future.add_done_callback(lambda done: self._forget(keys, done))
        return future

    def _forget(self, keys: list[MatchKey], done: Future[Any]) -> None:
        with self._lock:
            for key in keys:
                if self._latest.get(key) is done:
                    del self._latest[key]

    def _run(
        self, task: Callable[[Session], T | None], earlier: set[Future[Any]], chain: Chain | None
    ) -> T | None:
        # Earlier tasks were queued first, so they have started: waiting cannot deadlock.
        wait(earlier)
        if self.stop_reason:
            return None
        return task(Session(self, chain))

    def send(self, method: str, params: dict[str, Any]) -> Reply | None:
        """One call; None if the run is stopping (or stops because of its answer)."""
        if self.stop_reason:
            return None
        try:
            reply = self.client.call(method, params)
        except BudgetError as exc:
            self.stop(str(exc), exit_code=exc.exit_code, kind="budget")
            return None
        except Exception as exc:  # a bug must cost one record a row, not the run its results
            log.warning("%s: internal error (%s); the record fails", method, type(exc).__name__)
            log.debug("Details of the internal error", exc_info=True)
            reply = transient(f"internal error ({type(exc).__name__})")
        if reply.kind is Kind.FATAL:
            self.stop(f"Convio refused {method} ({describe(reply)})")
            return None
        if reply.kind is Kind.TRANSIENT and (self.stop_reason or self.client.closed):
            # Cut short by the stop; a fatal answer closes the client before its call returns
            # here to stop the run, so a call turned away meanwhile is no failure either.
            return None
        return reply

    def stop(self, reason: str, exit_code: int = 1, *, kind: str = "fatal") -> None:
        """No call starts after this; backoff waits end; calls in flight finish. `kind`: how
        the run history says it ended (fatal, breaker, budget, signal, ledger_error)."""
        with self._lock:
            if self.stop_reason is None:
                self.stop_reason = reason
                self.exit_code = exit_code
                self.stop_kind = kind
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
