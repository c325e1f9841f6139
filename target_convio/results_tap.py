"""tap-convio-results: the results file read back as a Singer stream, for the writeback.

Incremental: its bookmark is where the last row it emitted ends in the file, so each run emits
only rows appended since. Its key is `row_id`, so a loader that upserts (target-postgres,
target-duckdb) keeps exactly one table row per result row, whatever runs again. A row still
being written (no newline yet) waits for the next run.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from singer_sdk import Stream, Tap
from singer_sdk import typing as th

STREAM = "convio_results"

SCHEMA = th.PropertiesList(
    th.Property("row_id", th.StringType, required=True, description="unique across runs: the key"),
    th.Property("run_id", th.StringType),
    th.Property("stream", th.StringType),
    th.Property("seq", th.IntegerType, description="null for a replay"),
    th.Property("key", th.ObjectType(additional_properties=True), description="as JSON"),
    th.Property("key_value", th.StringType, description="a one-property key's value, as text"),
    th.Property("outcome", th.StringType),
    th.Property("cons_id", th.StringType),
    th.Property("code", th.StringType, description="Convio's error code"),
    th.Property("message", th.StringType),
    th.Property("error_field", th.StringType, description="the first error's field"),
    th.Property("error_code", th.StringType, description="the first error's code"),
    th.Property("errors", th.CustomType({"type": ["array", "null"]}), description="all, JSON"),
    th.Property("attempts", th.IntegerType),
    th.Property("at", th.DateTimeType, description="when the row was made, UTC"),
    th.Property("predicted", th.StringType, description="a compare dry run's prediction"),
    th.Property("changes", th.ObjectType(additional_properties=True)),
    th.Property("_sdc_offset", th.IntegerType, description="where the row ends in the file"),
).to_dict()


class ResultsStream(Stream):
    """The rows of one results file, from where the last run stopped."""

    primary_keys = ("row_id",)
    replication_key = "_sdc_offset"
    is_sorted = True

    def __init__(self, tap: Tap, path: Path, name: str) -> None:
        super().__init__(tap, schema=SCHEMA, name=name)
        self.path = path

    def get_records(self, context: Mapping[str, Any] | None) -> Iterable[dict[str, Any]]:
        if not self.path.exists():
            self.logger.warning("No results file at %s yet: nothing to read", self.path)
            return
        start = self._start(context)
        if start > self.path.stat().st_size:
            self.logger.warning(
                "%s is shorter than where the last writeback stopped (%d bytes): it was replaced, "
                "so it is read from its start (rows already loaded are upserted, not duplicated)",
                self.path,
                start,
            )
            start = self._forget(context)
        for end, line in _whole_lines(self.path, start):
            try:
                row = json.loads(line)
            except ValueError:
                self.logger.warning(
                    "%s: the row ending at byte %d is not JSON; skipped", self.path, end
                )
                continue
            if isinstance(row, dict):
                yield writeback_row(row, end)

    def _start(self, context: Mapping[str, Any] | None) -> int:
        """Where to read from; 0 when the saved state is another tap's (tap-jsonl's, which
        this writeback once used), which is dropped so that it is not compared with ours."""
        state = self.get_context_state(dict(context) if context else None)
        value = self.get_starting_replication_key_value(context)
        if state.get("replication_key") in (None, self.replication_key) and (
            value is None or isinstance(value, int)
        ):
            return value or 0
        self.logger.warning(
            "The saved state is not this tap's (an earlier writeback's): reading from the start; "
            "rows already loaded are upserted by row_id, not duplicated"
        )
        return self._forget(context)

    def _forget(self, context: Mapping[str, Any] | None) -> int:
        """Drop the saved bookmark, so that the rows read from the start are not compared
        with it; the position to read from: 0."""
        state = self.get_context_state(dict(context) if context else None)
        for name in ("replication_key", "replication_key_value", "starting_replication_value"):
            state.pop(name, None)
        return 0


def _whole_lines(path: Path, start: int) -> Iterator[tuple[int, bytes]]:
    """(where the line ends, the line) for each whole line from `start`."""
    with path.open("rb") as file:
        file.seek(start)
        end = start
        for line in file:
            if not line.endswith(b"\n"):
                return  # being appended right now: the next run reads it
            end += len(line)
            if line.strip():
                yield end, line


def writeback_row(row: Mapping[str, Any], end: int) -> dict[str, Any]:
    """A result row as the writeback table holds it."""
    key = row.get("key")
    errors = row.get("errors") or []
    first = errors[0] if errors and isinstance(errors[0], Mapping) else {}
    place = row.get("seq") if row.get("seq") is not None else f"at-{end}"  # rows before row_id
    return {
        "row_id": row.get("row_id") or f"{row.get('run_id')}/{row.get('stream')}/{place}",
        "run_id": row.get("run_id"),
        "stream": row.get("stream"),
        "seq": row.get("seq"),
        "key": key,
        "key_value": _key_value(key),
        "outcome": row.get("outcome"),
        "cons_id": row.get("cons_id"),
        "code": row.get("code"),
        "message": row.get("message"),
        "error_field": first.get("field"),
        "error_code": first.get("code"),
        "errors": errors,
        "attempts": row.get("attempts"),
        "at": row.get("at"),
        "predicted": row.get("predicted"),
        "changes": row.get("changes"),
        "_sdc_offset": end,
    }


def _key_value(key: Any) -> str | None:
    if not isinstance(key, Mapping) or not key:
        return None
    if len(key) == 1:
        (value,) = key.values()
        return None if value is None else str(value)
    return json.dumps(key, sort_keys=True, default=str)


class TapConvioResults(Tap):
    """Reads target-convio's results file (`results_path`) back, for a writeback table."""

    name = "tap-convio-results"
    package_name = "target-convio"
    config_jsonschema = th.PropertiesList(
        th.Property("path", th.StringType, required=True, description="the results file"),
        th.Property("stream_name", th.StringType, default=STREAM, description="the table's name"),
    ).to_dict()

    def discover_streams(self) -> list[Stream]:
        name = str(self.config.get("stream_name") or STREAM)
        return [ResultsStream(self, Path(str(self.config["path"])), name)]


def main() -> None:
    TapConvioResults.cli()
