"""TargetConvio: settings, the services a run shares, and checkpoints with their STATE lines."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections import Counter
from typing import Any, NoReturn

from singer_sdk.target_base import Target

from target_convio.breaker import FailureBreaker
from target_convio.client import ConvioClient, ConvioError
from target_convio.dispatch import Dispatcher
from target_convio.fields import Catalogue
from target_convio.mapping import MappingError
from target_convio.results import ResultsFile, Row, Summary
from target_convio.settings import CONFIG_SCHEMA, Settings
from target_convio.sinks import ConstituentSink

STATE_KEY = "target_convio"


class Run:
    """What every sink of one run shares: the client, the site's fields, the call threads."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.client = ConvioClient(settings.client)
        self.catalogue = Catalogue.from_listing(self.client.list_user_fields())
        self.dispatcher = Dispatcher(
            self.client,
            settings.client.max_concurrency,
            FailureBreaker(settings.max_failure_rate),
        )
        self._seq: Counter[str] = Counter()
        self._settled: list[Row] = []
        self._lock = threading.Lock()

    def next_seq(self, stream: str) -> int:
        self._seq[stream] += 1
        return self._seq[stream]

    def settle(self, rows: list[Row]) -> None:
        with self._lock:
            self._settled.extend(rows)

    def take_settled(self) -> list[Row]:
        """Rows settled since the last call, in input order per stream."""
        with self._lock:
            rows, self._settled = self._settled, []
        return sorted(rows, key=lambda r: (r["stream"], r["seq"]))

    def close(self) -> None:
        self.dispatcher.close()


class TargetConvio(Target):
    """Loads constituent records into Convio / Blackbaud Luminate Online (SRConsAPI)."""

    name = "target-convio"
    package_name = "target-convio"
    config_jsonschema = CONFIG_SCHEMA
    default_sink_class = ConstituentSink

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        try:
            self.settings = Settings.from_config(self.config)
        except ConvioError as exc:
            self._stop(f"Invalid setting: {exc}")
        self.summary = Summary()
        self.checkpoints = 0
        self._run: Run | None = None
        self._results_file: ResultsFile | None = None
        self._started = time.monotonic()

    def run(self) -> Run:
        """The run's shared services, made when the first stream arrives."""
        if self._run is None:
            try:
                self._run = Run(self.settings)
            except ConvioError as exc:
                self._stop(f"Cannot start: {exc}")
        return self._run

    def get_sink(self, stream_name: str, **kwargs: Any) -> Any:
        try:
            return super().get_sink(stream_name, **kwargs)
        except MappingError as exc:
            self._stop(f"Invalid setting: {exc}")

    # -- checkpoints ----------------------------------------------------------------------

    def _process_record_message(self, message_dict: dict) -> None:
        if self._stop_reason():
            self._checkpoint()  # settles what is in flight, then stops the run
        super()._process_record_message(message_dict)
        sinks = [*self._sinks_active.values(), *self._sinks_to_clear]
        if sum(sink.current_size for sink in sinks) >= self.settings.batch_size:
            self._checkpoint()

    def _handle_max_record_age(self) -> None:
        if self._max_record_age_in_minutes > self._MAX_RECORD_AGE_IN_MINUTES:
            self._checkpoint()

    def _checkpoint(self) -> None:
        """Settle every buffered record of every stream, then write one STATE line."""
        self.drain_all()  # calls _write_state_message when the tap has sent state
        if not self._latest_state:
            self._write_checkpoint(None)

    def process_endofpipe(self) -> None:
        super().process_endofpipe()
        if not self._latest_state:
            self._write_checkpoint(None)
        self.logger.info("target-convio finished.\n%s", self.summary.table())
        self._close()

    def _write_state_message(self, state: dict) -> None:
        self._write_checkpoint(state)

    def _write_checkpoint(self, tap_state: dict | None) -> None:
        rows = self._run.take_settled() if self._run else []
        self._record(rows)
        reason = self._stop_reason()
        if reason:
            self._close()
            self._stop(
                f"Stopped: {reason}. No STATE was written past checkpoint {self.checkpoints}; "
                "records sent since then are resent when the run is repeated."
            )
        self.checkpoints += 1
        payload: dict[str, Any] = {"checkpoint": self.checkpoints}
        if self.settings.results_in_state != "none":
            payload["summary"] = self.summary.as_dict()
        if self.settings.results_in_state == "records":
            payload["results"] = rows
        line = json.dumps({**(tap_state or {}), STATE_KEY: payload}, default=str)
        sys.stdout.write(line + "\n")
        sys.stdout.flush()
        self._log_progress()

    def _record(self, rows: list[Row]) -> None:
        """Count rows and append them to the results file, before any STATE names them."""
        self.summary.add(rows)
        if self.settings.results_path and rows:
            if self._results_file is None:
                self._results_file = ResultsFile(self.settings.results_path)
            self._results_file.write(rows)

    def _log_progress(self) -> None:
        elapsed = time.monotonic() - self._started
        done = self.summary.total
        counts = ", ".join(f"{n} {o}" for o, n in self.summary.outcomes.items() if n)
        self.logger.info(
            "Checkpoint %d: %d records in %.1f s (%.1f/s)%s",
            self.checkpoints,
            done,
            elapsed,
            done / elapsed if elapsed else 0.0,
            f": {counts}" if counts else "",
        )

    # -- stopping -------------------------------------------------------------------------

    def _stop_reason(self) -> str | None:
        return self._run.dispatcher.stop_reason if self._run else None

    def _stop(self, message: str) -> NoReturn:
        self.logger.error("target-convio: %s", message)
        raise SystemExit(1)

    def _close(self) -> None:
        if self._run is not None:
            self._run.close()
        if self._results_file is not None:
            self._results_file.close()
            self._results_file = None


if __name__ == "__main__":
    TargetConvio.cli()
