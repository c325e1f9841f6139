"""TargetConvio: settings, the services a run shares, and when checkpoints are sealed."""

from __future__ import annotations

import logging
import os
import signal
from collections import Counter
from pathlib import Path
from types import FrameType
from typing import IO, Any, NoReturn

from singer_sdk.configuration._dict_config import parse_environment_config
from singer_sdk.exceptions import FatalSyncError, InvalidJSONSchema
from singer_sdk.singerlib.exceptions import SingerReadError
from singer_sdk.target_base import Target

from target_convio.breaker import FailureBreaker
from target_convio.checkpoints import Checkpointer
from target_convio.client import ConvioClient, ConvioError
from target_convio.dispatch import Dispatcher
from target_convio.fields import Catalogue
from target_convio.mapping import MappingError
from target_convio.reader import InputReader, shorten
from target_convio.settings import CONFIG_SCHEMA, Settings
from target_convio.sinks import ConstituentSink

# Input the target cannot read: reported in one line, after what was read before is settled.
INPUT_ERRORS = (SingerReadError, FatalSyncError, InvalidJSONSchema, ValueError)


class Terminated(Exception):  # noqa: N818 - a signal, not an error
    """SIGINT or SIGTERM arrived: unwinds the reader so the run can stop in order."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


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

    def next_seq(self, stream: str) -> int:
        self._seq[stream] += 1
        return self._seq[stream]

    def close(self) -> None:
        self.dispatcher.close()


class TargetConvio(Target):
    """Loads constituent records into Convio / Blackbaud Luminate Online (SRConsAPI)."""

    name = "target-convio"
    package_name = "target-convio"
    config_jsonschema = CONFIG_SCHEMA
    default_sink_class = ConstituentSink
    message_reader_class = InputReader

    @classmethod
    def invoke(cls, **kwargs: Any) -> None:  # type: ignore[override]
        """The command line: any failure ends in one ERROR line and exit code 1."""
        try:
            super().invoke(**kwargs)
        except Exception as exc:
            logger = logging.getLogger(cls.name)
            if isinstance(exc, INPUT_ERRORS):
                logger.error("target-convio: bad input: %s", shorten(str(exc), 300))
            else:
                logger.error(
                    "target-convio: internal error: %s: %s",
                    type(exc).__name__,
                    shorten(str(exc), 300),
                )
                logger.debug("Details", exc_info=exc)
            raise SystemExit(1) from None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        try:
            self.settings = Settings.from_config(self.config)
        except ConvioError as exc:
            self._stop(f"Invalid setting: {exc}")
        self._run: Run | None = None
        self._terminating = False
        try:
            self.checkpointer = Checkpointer(
                self.settings.results_path,
                self.settings.results_in_state,
                self._stop_reason,
                self.logger,
            )
        except OSError as exc:
            self._stop(
                f"Invalid setting: results_path {self.settings.results_path}: {exc.strerror}"
            )

    @property
    def _env_var_config(self) -> dict[str, Any]:
        """Settings from TARGET_CONVIO_* variables, and from a .env in the working directory.

        The SDK would look for .env upwards from its own install folder, so a .env beside the
        virtual environment (a Meltano project's, say) would silently override the caller's.
        """
        schema = self.config_jsonschema
        self.append_builtin_config(schema)
        dotenv = Path.cwd() / ".env"
        path = str(dotenv) if dotenv.is_file() else os.devnull
        return parse_environment_config(schema, self._env_var_prefix, dotenv_path=path)

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
        if self._stop_reason() or self.checkpointer.stopped:
            self._checkpoint()  # what was read gets its rows in the results file
            self._end()
        super()._process_record_message(message_dict)
        sinks = [*self._sinks_active.values(), *self._sinks_to_clear]
        if sum(sink.current_size for sink in sinks) >= self.settings.batch_size:
            self._checkpoint()

    def _handle_max_record_age(self) -> None:
        if self._max_record_age_in_minutes > self._MAX_RECORD_AGE_IN_MINUTES:
            self._checkpoint()

    def _checkpoint(self) -> None:
        """Hand every stream's buffered records to one new checkpoint, and seal it."""
        self.drain_all()  # each sink hands over its batch; calls _write_state_message if any
        if not self._latest_state:
            self.checkpointer.seal(None)

    def _write_state_message(self, state: dict) -> None:
        self.checkpointer.seal(state)

    def process_endofpipe(self) -> None:
        super().process_endofpipe()
        if not self._latest_state:
            self.checkpointer.seal(None)
        self._end()
        self.logger.info("target-convio finished.\n%s", self.checkpointer.summary.table())

    def _end(self, exit_code: int = 1) -> None:
        """Wait for every checkpoint; stop with one clear line if the run cannot finish."""
        self.checkpointer.finish()
        if self._run is not None:
            self._run.close()
        if self.checkpointer.error is not None:
            self._stop(f"Cannot write results: {self.checkpointer.error}")
        if self._stop_reason() or self.checkpointer.stopped:
            reason = self._stop_reason() or "a checkpoint could not settle"
            self._stop(
                f"Stopped: {reason}. No STATE was written past checkpoint "
                f"{self.checkpointer.written}; records sent since then are resent when the "
                "run is repeated.",
                exit_code,
            )

    # -- stopping -------------------------------------------------------------------------

    def listen(self, file_input: IO[str] | None = None) -> None:
        try:
            super().listen(file_input)
        except Terminated as signal_received:
            self._shut_down(signal_received.signum)
        except Exception:
            self._settle_what_was_read()
            raise

    def _settle_what_was_read(self) -> None:
        """Input the run cannot go past: keep the results of the records read before it."""
        try:
            self._checkpoint()
            self.checkpointer.finish()
        finally:
            if self._run is not None:
                self._run.close()

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        if not self._terminating:  # a second signal while stopping changes nothing
            self._terminating = True
            raise Terminated(signum)

    def _shut_down(self, signum: int) -> NoReturn:
        """Read no more; let calls in flight finish; write what settled; exit 128 + signum."""
        name = signal.Signals(signum).name
        self.logger.warning("Received %s: no new calls; finishing the calls in flight.", name)
        if self._run is not None:
            self._run.dispatcher.stop(f"received {name}")
        self._checkpoint()
        self._end(exit_code=128 + signum)
        raise SystemExit(128 + signum)  # nothing was left to send

    def _stop_reason(self) -> str | None:
        return self._run.dispatcher.stop_reason if self._run else None

    def _stop(self, message: str, exit_code: int = 1) -> NoReturn:
        self.logger.error("target-convio: %s", message)
        raise SystemExit(exit_code)


if __name__ == "__main__":
    TargetConvio.cli()
