"""TargetConvio: the Singer SDK's Target, tied to the run's services; the one place it is bent.

Overrides of SDK internals, each because no public hook serves:

- `_validate_config`: the SDK's error names no setting ("Config validation failed"); ours
  names each invalid setting and what it accepts, before any input is read.
- `_env_var_config`: the SDK looks for `.env` upwards from its own install folder, so a
  `.env` beside a virtual environment would override the caller's; ours reads the working
  directory's.
- `append_builtin_config`: the SDK adds `load_method` and `add_record_metadata`, which change
  nothing here; dropped, `--about` describes only settings that do something.
- `_process_state_message`: the SDK keeps the tap's state to itself; checkpoints need it.
- `_handle_max_record_age`: the SDK would drain and print a STATE line of its own; our
  checkpoints seal by age themselves.
- `_handle_termination`: the SDK drains and exits inside the signal handler, wherever the
  main thread was; ours only sets a flag, which the reader and waits act on.

Public hooks used: `invoke` (one ERROR line instead of a traceback), `process_endofpipe` (the
end of a run, however it ended: settled, and kept in the run history), `get_singer_command`
(`--help` says what the target is), `default_sink_class`, `message_reader_class`.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from types import FrameType
from typing import Any

import click
from singer_sdk.configuration._dict_config import parse_environment_config
from singer_sdk.exceptions import ConfigValidationError
from singer_sdk.target_base import Target

from target_convio.convio.budget import BudgetError
from target_convio.convio.client import ConfigError, ConvioError
from target_convio.ledger_schema import LedgerError
from target_convio.mapping import MappingError
from target_convio.reader import INPUT_ERRORS, InputReader, shorten
from target_convio.services import Services, open_services
from target_convio.settings import (
    CONFIG_SCHEMA,
    IGNORED_SDK_SETTINGS,
    Settings,
    config_errors,
)
from target_convio.signals import received_early
from target_convio.sinks import ConstituentSink

HELP = """Loads constituent records from any Singer tap into Convio / Blackbaud Luminate Online
through its server Constituent API (SRConsAPI): Singer messages on stdin, STATE lines on
stdout, one result row per record in results_path.

Every setting, with what it accepts: target-convio --about. The guide: README.md in the
project's repository (a quick start, one's own Meltano project, scheduling, troubleshooting),
and docs/ beside it (settings, results and STATE, the sync ledger, what is guaranteed)."""


class TargetConvio(Target):
    """Loads constituent records into Convio / Blackbaud Luminate Online (SRConsAPI)."""

    name = "target-convio"
    package_name = "target-convio"
    config_jsonschema = CONFIG_SCHEMA
    default_sink_class = ConstituentSink
    message_reader_class = InputReader

    @classmethod
    def get_singer_command(cls) -> click.Command:
        """The SDK's command, with a `--help` that says what this target does."""
        command = super().get_singer_command()
        command.help = HELP
        return command

    @classmethod
    def invoke(cls, **kwargs: Any) -> None:
        """The command line: any failure ends in one ERROR line and exit code 1."""
        try:
            super().invoke(**kwargs)
        except RunStopped as exc:
            _error(str(exc))
            raise SystemExit(exc.exit_code) from None
        except BudgetError as exc:  # spent before the first record: nothing to settle
            _error(f"Stopped: {exc}")
            raise SystemExit(exc.exit_code) from None
        except Exception as exc:
            _error(_describe(exc))
            raise SystemExit(1) from None

    def __init__(self, **kwargs: Any) -> None:
        self._signum: int | None = None
        super().__init__(**kwargs)  # installs our handlers; a signal from before is kept
        if self._signum is None:
            self._signum = received_early()
        self.max_parallelism = 1  # checkpoints run on their own thread; the SDK's drain is unused
        for name in sorted(IGNORED_SDK_SETTINGS.keys() & self.config.keys()):
            self.logger.warning("%s is ignored: %s", name, IGNORED_SDK_SETTINGS[name])
        self.settings = Settings.from_config(self.config)
        try:
            self._services = open_services(self.settings, self._must_stop, self.logger)
        except OSError as exc:
            path = self.settings.results_path
            raise ConfigError(f"results_path {path}: {exc.strerror}") from None
        reader = self.message_reader
        if isinstance(reader, InputReader):
            reader.should_stop = self._must_stop
            reader.on_idle = self._services.gate.flush  # the input paused: decide what it sent

    @property
    def services(self) -> Services:
        """What the sinks of this run share."""
        return self._services

    # -- the end of a run -----------------------------------------------------------------

    def process_endofpipe(self) -> None:
        """Settle what was read, record the run in the run history, then raise what ended the
        input, or RunStopped, if anything."""
        try:
            self._settle()
        except BaseException as exc:
            signalled = self._signum is not None
            self.services.record_run(self._ending(exc), self.logger, signalled=signalled)
            raise
        self.services.record_run("finished", self.logger)

    def _ending(self, failure: BaseException) -> str:
        """How a run that raised `failure` ended, as the run history names it."""
        services = self.services
        error = services.checkpointer.error
        if services.ledger_failed or isinstance(failure, LedgerError):
            return "ledger_error"
        if error is not None:
            return "results_error"
        if self._signum is not None or services.state_lines.closed_at is not None:
            return "signal"
        if isinstance(failure, INPUT_ERRORS):
            return "input_error"
        if isinstance(failure, BudgetError):  # spent before the first record
            return "budget"
        return services.dispatcher.stop_kind or "fatal"

    def _settle(self) -> None:
        """Settle what was read; then raise what ended the input, or RunStopped, if anything."""
        reader = self.message_reader
        failure = reader.error if isinstance(reader, InputReader) else None
        services = self.services
        services.gate.flush()
        stopping = self._must_stop()
        if not stopping and failure is None:
            services.gate.replay()
            stopping = self._must_stop()
        services.checkpointer.seal(final=not stopping and failure is None)
        services.checkpointer.finish()
        services.close()
        error = services.checkpointer.error
        if error is not None:
            raise RunStopped(
                str(error) if isinstance(error, LedgerError) else f"Cannot write results: {error}"
            )
        if failure is not None:
            raise failure
        if services.state_lines.closed_at is not None:
            raise RunStopped(
                f"stdout was closed: the STATE lines from checkpoint "
                f"{services.state_lines.closed_at} on were not delivered (every row is in "
                "results_path). Run again from the last STATE that was saved."
            )
        if stopping or services.checkpointer.stopped:
            reason = services.stop_reason or "a checkpoint could not settle"
            raise RunStopped(
                f"Stopped: {reason}. No STATE was written past checkpoint "
                f"{services.checkpointer.written}; records sent since then are resent when the "
                "run is repeated.",
                128 + self._signum if self._signum is not None else services.dispatcher.exit_code,
            )
        table = services.checkpointer.summary.table()
        if services.ledger is not None:
            table += (
                "\nEvery run so far: target-convio-ledger runs; as a page with charts: "
                "target-convio-ledger report --output report.html"
            )
        self.logger.info("target-convio finished.\n%s", table)

    def _must_stop(self) -> bool:
        """True once the run must read no more; acts on a signal received meanwhile."""
        services = self.services
        if self._signum is not None and services.stop_reason is None:
            name = signal.Signals(self._signum).name
            self.logger.warning("Received %s: no new calls; finishing the calls in flight.", name)
            services.stop(f"received {name}")
        return services.stop_reason is not None or services.checkpointer.stopped

    # -- SDK overrides (see the module docstring) -----------------------------------------

    @classmethod
    def append_builtin_config(cls, config_jsonschema: dict[str, Any]) -> None:
        """The SDK's settings that do something here (`--about` describes only those)."""
        super().append_builtin_config(config_jsonschema)
        for name in IGNORED_SDK_SETTINGS:
            config_jsonschema["properties"].pop(name, None)

    def _validate_config(self, *, raise_errors: bool = True) -> list[str]:
        schema = self.config_jsonschema
        self.append_builtin_config(schema)
        errors = config_errors(self.config, schema)
        if errors and raise_errors:
            raise ConfigValidationError("; ".join(errors), errors=errors, schema=schema)
        return errors

    @property
    def _env_var_config(self) -> dict[str, Any]:
        schema = self.config_jsonschema
        self.append_builtin_config(schema)
        dotenv = Path.cwd() / ".env"
        path = str(dotenv) if dotenv.is_file() else os.devnull
        return parse_environment_config(schema, self._env_var_prefix, dotenv_path=path)

    def _process_state_message(self, message_dict: dict[str, Any]) -> None:
        if not isinstance(message_dict.get("value"), dict):
            self.logger.warning(
                "Ignoring a STATE message whose value is not an object (%s); the STATE lines "
                "keep the last state that was one",
                shorten(repr(message_dict.get("value")), 60),
            )
            return
        super()._process_state_message(message_dict)
        self.services.gate.flush()  # the records before this state go to their checkpoints
        self.services.checkpointer.tap_state = self._latest_state

    def _handle_max_record_age(self) -> None:
        pass

    def _handle_termination(self, signum: int, frame: FrameType | None) -> None:
        if self._signum is None:  # a second signal while stopping changes nothing
            self._signum = signum


class RunStopped(Exception):  # noqa: N818 - a stop in order, not a failure of the target
    """The run stopped before its end (a fatal answer, the breaker, a signal)."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def _describe(failure: Exception) -> str:
    """The one line that reports what ended a run."""
    if isinstance(failure, LedgerError):
        return str(failure)
    if isinstance(failure, (ConfigValidationError, ConfigError, MappingError)):
        return f"Invalid setting: {failure}"
    if isinstance(failure, ConvioError):
        return f"Cannot start: {failure}"
    if isinstance(failure, INPUT_ERRORS):
        return f"bad input: {shorten(str(failure), 300)}"
    logging.getLogger(TargetConvio.name).debug("Details", exc_info=failure)
    return f"internal error: {type(failure).__name__}: {shorten(str(failure), 300)}"


def _error(message: str) -> None:
    logging.getLogger(TargetConvio.name).error("target-convio: %s", message)


if __name__ == "__main__":
    TargetConvio.cli()
