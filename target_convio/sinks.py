"""The per-stream pipeline: map and check each record, then send it or settle it at once."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from singer_sdk.sinks import BatchSink

from target_convio.checkpoints import Checkpointer, Pending
from target_convio.mapping import Mapper, check_before_sending
from target_convio.results import invalid_row, row
from target_convio.validation import SCHEMA_ERRORS, CollectingValidator, without_date_formats

if TYPE_CHECKING:
    from singer_sdk.sinks.core import BaseJSONSchemaValidator

    from target_convio.target import Run


class ConstituentSink(BatchSink):
    """Loads any stream's records as constituents."""

    def __init__(self, target: Any, stream_name: str, schema: dict, key_properties: Any) -> None:
        super().__init__(target, stream_name, schema, key_properties)
        self.run: Run = target.run()
        self.checkpointer: Checkpointer = target.checkpointer
        # The SDK would parse date strings and end the run on a bad one; fields.py reads them.
        self.schema = without_date_formats(self.schema)
        self.mapper = Mapper(
            self.run.catalogue, self.run.settings.field_map, stream_name, self.logger
        )

    @property
    def is_full(self) -> bool:
        return False  # the target checkpoints all streams together (target.py)

    def get_validator(self) -> BaseJSONSchemaValidator | None:
        return CollectingValidator(self.schema) if self.validate_schema else None

    def process_record(self, record: dict, context: dict) -> None:
        """Check the record; send it now, so calls run while the reader goes on."""
        seq = self.run.next_seq(self.stream_name)
        key = {name: record.get(name) for name in self.key_properties} or None
        problems = record.pop(SCHEMA_ERRORS, [])
        mapped = self.mapper.map(record)
        settings = self.run.settings
        errors = problems + mapped.errors
        errors += check_before_sending(mapped.params, settings.sync_mode, self.run.catalogue)
        pending = Pending(self.stream_name, seq, key, method=settings.method)
        if errors:
            pending.row = invalid_row(self.stream_name, seq, key, errors)
        elif settings.dry_run:
            pending.row = row(self.stream_name, seq, key, "skipped", message="dry run: not sent")
        else:
            pending.call = self.run.dispatcher.submit(
                settings.method, {**mapped.params, **settings.extra_params}
            )
        context.setdefault("records", []).append(pending)

    def process_batch(self, context: dict) -> None:
        """Hand the batch to the next checkpoint; its calls are already under way."""
        self.checkpointer.hand_over(context.get("records", []))
