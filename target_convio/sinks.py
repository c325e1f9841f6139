"""The per-stream pipeline: map and check each record, then send it or settle it at once."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from singer_sdk.sinks import RecordSink
from singer_sdk.sinks.core import BaseJSONSchemaValidator
from singer_sdk.target_base import Target

from target_convio.digests import identity_of
from target_convio.fields import EMAIL_FIELD, LOCATORS
from target_convio.mapping import Mapper, key_problems
from target_convio.rows import RecordRef, invalid_row, predicted_row, skipped_row
from target_convio.services import HasServices
from target_convio.sync import Candidate
from target_convio.validation import SCHEMA_ERRORS, CollectingValidator, without_date_formats

LOCATING_FIELDS = frozenset({*LOCATORS, EMAIL_FIELD})


class ConstituentSink(RecordSink):
    """Loads any stream's records as constituents.

    Each record goes on to the gate (sync.py) and its checkpoint (checkpoints.py); the SDK's
    own batching is not used: checkpoints span every stream.
    """

    def __init__(
        self,
        target: Target,
        stream_name: str,
        schema: dict[str, Any],
        key_properties: Sequence[str] | None,
    ) -> None:
        super().__init__(target, stream_name, schema, key_properties)
        if not isinstance(target, HasServices):
            raise TypeError("ConstituentSink needs a target that provides the run's services")
        self.services = target.services
        self.catalogue = self.services.catalogue  # read from the site once, by the first sink
        # The SDK would parse date strings and end the run on a bad one; fields.py reads them.
        self.schema = without_date_formats(self.schema)
        settings = self.services.settings
        self.mapper = Mapper(
            self.catalogue,
            settings.field_map,
            stream_name,
            self.logger,
            read_elsewhere=settings.memberships.properties,
        )
        self.services.gate.receive(stream_name, self.catalogue, self.key_properties or [])

    def _singer_validate_message(self, record: dict[str, Any]) -> None:
        """The SDK ends the run on a record without its key properties; here such a record
        gets an `invalid` row (mapping.key_problems), like any other bad record."""

    def _parse_timestamps_in_record(
        self, record: dict[str, Any], schema: dict[str, Any], treatment: Any
    ) -> None:
        """Nothing to parse: the schema's date formats were taken out (fields.py reads dates),
        and the SDK's walk over every property would find none."""

    def get_validator(self) -> BaseJSONSchemaValidator | None:
        return CollectingValidator(self.schema) if self.validate_schema else None

    def process_record(self, record: dict[str, Any], context: dict[str, Any]) -> None:
        """Map and check the record, then hand it to the gate (sync.py), which decides it with
        the ledger and starts its call while the reader goes on."""
        services = self.services
        settings = services.settings
        key: dict[str, Any] | None = {name: record.get(name) for name in self.key_properties}
        seq = services.next_seq(self.stream_name)
        ref = RecordRef(services.run_id, self.stream_name, seq, key or None)
        key_errors = key_problems(key)
        problems = record.pop(SCHEMA_ERRORS, []) + key_errors
        mapped = self.mapper.map(record)
        wanted, membership_errors = settings.memberships.wanted(record)
        errors = problems + mapped.errors + membership_errors
        if not any(error.field in LOCATING_FIELDS for error in mapped.errors):
            # else "no match key" would only repeat why the locator was refused
            errors += settings.sync_mode.checks(mapped.params, self.catalogue)
        candidate = Candidate(ref)
        if not key_errors:
            candidate.identity = identity_of(key, mapped.params)
        if errors:
            candidate.row = invalid_row(ref, errors)
            if settings.compare:  # Convio would refuse it too, or never see it
                candidate.row = predicted_row(candidate.row, "rejected")
        elif settings.dry_run and not settings.compare:
            candidate.row = skipped_row(ref, "dry run: not sent")
        else:
            candidate.params = {**mapped.params, **settings.extra_params}
            candidate.memberships = wanted
        services.gate.add(candidate)
