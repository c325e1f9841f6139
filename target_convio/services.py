"""What one run shares, built in one place: client, field catalogue, dispatcher, checkpoints."""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from target_convio.breaker import FailureBreaker
from target_convio.checkpoints import Checkpointer
from target_convio.commit import AppendResults, CommitStep, PrintState, RecordInLedger
from target_convio.convio.budget import CallBudget
from target_convio.convio.client import ConvioClient
from target_convio.convio.transport import Transport
from target_convio.dispatch import Dispatcher
from target_convio.fields import Catalogue
from target_convio.history import Run, finish_run, start_run
from target_convio.ledger import Ledger
from target_convio.ledger_schema import SCHEMA_VERSION, LedgerError
from target_convio.rows import new_run_id
from target_convio.settings import Settings
from target_convio.sync import Gate


@dataclass
class Services:
    """The run's shared parts. The catalogue is read from the site when first needed."""

    settings: Settings
    run_id: str
    client: ConvioClient
    dispatcher: Dispatcher
    checkpointer: Checkpointer
    state_lines: PrintState
    gate: Gate
    ledger: Ledger | None = None  # written by this run: it keeps the run history
    started_at: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.timezone.utc))
    _history_broken: bool = False
    _catalogue: Catalogue | None = None
    _catalogue_lock: threading.Lock = field(default_factory=threading.Lock)
    _seq: Counter[str] = field(default_factory=Counter)

    def next_seq(self, stream: str) -> int:
        """The next record's 1-based position in its stream (a stream's sinks share it)."""
        self._seq[stream] += 1
        return self._seq[stream]

    @property
    def catalogue(self) -> Catalogue:
        """The site's writable fields (listUserFields); ConvioError if the site refuses."""
        with self._catalogue_lock:
            if self._catalogue is None:
                self._catalogue = Catalogue.from_listing(self.client.list_user_fields())
            return self._catalogue

    @property
    def stop_reason(self) -> str | None:
        """Why the run is stopping (a fatal answer, the breaker, a signal), or None."""
        return self.dispatcher.stop_reason

    def stop(self, reason: str) -> None:
        """A signal: start no call from now on; the calls in flight finish."""
        self.dispatcher.stop(reason, kind="signal")

    def close(self) -> None:
        """After the last checkpoint: end the call threads and connections."""
        self.dispatcher.close()

    def start_history(self, logger: logging.Logger) -> None:
        """The run's row in the run history, `unfinished` for now; never raises."""
        if self.ledger is not None:
            try:
                start_run(self.ledger, self.run_id, self.started_at)
            except Exception as exc:  # the first commit will say it, and stop the run
                self._history_failed(exc, logger)

    def record_run(self, ended: str, logger: logging.Logger, *, signalled: bool = False) -> None:
        """The run's row in the run history, as it ended (history.py); never raises.

        Not tried when the history could not be written at the start, nor after a signal
        when the ledger failed in this run: another wait of `request_timeout_seconds` would
        only delay the end the signal asked for.
        """
        if self.ledger is None or self._history_broken or (signalled and self.ledger_failed):
            return
        summary = self.checkpointer.summary
        ended_at = dt.datetime.now(dt.timezone.utc)
        seconds = (ended_at - self.started_at).total_seconds()
        run = Run(
            self.run_id,
            self.ledger.site,
            self.started_at,
            ended_at,
            ended,
            list(self.gate.streams),
            counts={o.value: n for o, n in summary.outcomes.items()},
            by_code=dict(summary.by_code),
            by_field=dict(summary.by_field),
            reasons=dict(summary.reasons),
            calls=dict(self.client.calls),
            records_per_second=summary.total / seconds if seconds > 0 else 0.0,
        )
        try:
            finish_run(self.ledger, run)
        except Exception as exc:  # the run's own outcome matters more than its history
            self._history_failed(exc, logger)
        finally:
            self.ledger.close()

    @property
    def ledger_failed(self) -> bool:
        """The ledger could not be read or written in this run."""
        return (
            self._history_broken
            or isinstance(self.checkpointer.error, LedgerError)
            or self.dispatcher.stop_kind == "ledger_error"
        )

    def _history_failed(self, exc: BaseException, logger: logging.Logger) -> None:
        self._history_broken = True
        if self.ledger is not None:
            failure = self.ledger.failure("write", exc)
            logger.warning("The run history could not be written: %s", failure)


@runtime_checkable
class HasServices(Protocol):
    """What a sink needs of its target."""

    @property
    def services(self) -> Services: ...


def open_services(
    settings: Settings,
    poll: Callable[[], object],
    logger: logging.Logger,
    transport: Transport | None = None,
) -> Services:
    """Everything a run needs but the site's fields (OSError: results_path; LedgerError)."""
    run_id = new_run_id()
    steps: list[CommitStep] = []
    if settings.results_path:  # opened first: an unwritable path stops the run now
        steps.append(AppendResults(settings.results_path, logger))
    ledger = None
    timeout = settings.client.request_timeout_seconds
    history_ledger = None
    if settings.ledger_url and not settings.dry_run:
        ledger = history_ledger = Ledger.open(
            settings.ledger_url, settings.client.api_url, timeout=timeout
        )
        steps.append(RecordInLedger(ledger, run_id, logger))
    elif settings.ledger_url and settings.compare:  # only reads the ledger's cons_ids
        ledger = Ledger.find(settings.ledger_url, settings.client.api_url, timeout=timeout)
        if ledger is not None and ledger.version != SCHEMA_VERSION:
            logger.warning(
                "The ledger was written by an older target-convio; a compare dry run does not "
                "upgrade it, so it compares without it (a real run upgrades it)"
            )
            ledger.close()
            ledger = None
    state_lines = PrintState(settings.results_in_state)
    if settings.dry_run:
        # Meltano saves the tap's state from any STATE line: the next real run would skip
        # the records this dry run saw.
        logger.info("Dry run: no STATE line is printed, so the pipeline's bookmark stays put")
    else:
        steps.append(state_lines)
    budget = None
    if settings.max_calls_per_day:
        shared = ledger if ledger is not None and not settings.dry_run else None
        if shared is None:
            logger.warning(
                "max_calls_per_day counts this run's calls alone: without a ledger (or in a "
                "dry run), the calls of other runs are not known"
            )
        budget = CallBudget(settings.max_calls_per_day, shared)
    client = ConvioClient(settings.client, transport, budget, close_on_fatal=True)
    dispatcher = Dispatcher(
        client, settings.client.max_concurrency, FailureBreaker(settings.max_failure_rate)
    )
    checkpointer = Checkpointer(
        steps,
        settings.batch_size,
        stop_reason=lambda: dispatcher.stop_reason,
        poll=poll,
        logger=logger,
        stop_run=dispatcher.stop,
        calls=lambda: f"up to {client.concurrency.limit} calls at once",
    )
    gate = Gate(ledger, settings.sync, dispatcher, checkpointer, run_id)
    services = Services(
        settings, run_id, client, dispatcher, checkpointer, state_lines, gate, history_ledger
    )
    services.start_history(logger)
    return services
