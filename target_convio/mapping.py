"""One record onto the site's fields: Convio write parameters, or the reasons it cannot be."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from target_convio.fields import EMAIL_FIELD, Catalogue, FieldValueError, email_address, sendable
from target_convio.outcomes import FieldError

METADATA_PREFIX = "_sdc_"


@dataclass
class Mapped:
    """A record as write parameters, with whatever kept it from being sendable."""

    params: dict[str, str] = field(default_factory=dict)
    errors: list[FieldError] = field(default_factory=list)


class MappingError(ValueError):
    """A field_map that cannot work with this site."""


class Mapper:
    """Maps records of one stream; names each unmapped property once in a warning."""

    def __init__(
        self,
        catalogue: Catalogue,
        field_map: Mapping[str, str],
        stream_name: str,
        logger: logging.Logger,
        read_elsewhere: frozenset[str] = frozenset(),
    ) -> None:
        """`read_elsewhere`: properties another part reads (memberships): never warned of."""
        unknown = sorted({target for target in field_map.values() if target not in catalogue})
        if unknown:
            named = [
                f"{name} (did you mean {close}?)" if (close := catalogue.closest(name)) else name
                for name in unknown
            ]
            raise MappingError(
                f"field_map names fields this site does not let the API account write: "
                f"{', '.join(named)} (listUserFields with access=update lists those it does)"
            )
        self.catalogue = catalogue
        self.field_map = dict(field_map)
        self.stream_name = stream_name
        self.logger = logger
        self._targets: dict[str, str | None] = dict.fromkeys(read_elsewhere)
        self._warned: set[str] = set(read_elsewhere)

    def map(self, record: Mapping[str, Any]) -> Mapped:
        mapped = Mapped()
        unmapped: list[str] = []
        self._map_into(mapped, record, "", unmapped)
        if unmapped:
            self._warned.update(unmapped)
            self.logger.warning(
                "Stream '%s': ignoring properties that match no Convio field: %s "
                "(map them with field_map or stream_maps)",
                self.stream_name,
                ", ".join(sorted(unmapped)),
            )
        if EMAIL_FIELD in mapped.params:
            mapped.params.setdefault("primary_email", mapped.params[EMAIL_FIELD])
        return mapped

    def _map_into(
        self, mapped: Mapped, values: Mapping[str, Any], prefix: str, unmapped: list[str]
    ) -> None:
        for key, value in values.items():
            prop = f"{prefix}{key}"
            target = self._target(prop)
            if target is None:
                if isinstance(value, dict) and value:
                    # A nested object's keys join with dots, as Convio's names do.
                    self._map_into(mapped, value, prop + ".", unmapped)
                elif prop not in self._warned and not prop.startswith(METADATA_PREFIX):
                    unmapped.append(prop)
                continue
            if value is None or (isinstance(value, str) and not value.strip()):
                continue  # Convio reads a blank as "clear": a load never wipes a value
            spec = self.catalogue.get(target)
            try:
                mapped.params[target] = spec.coerce(value) if spec else _locator(target, value)
            except FieldValueError as problem:
                mapped.errors.append(FieldError(target, problem.code, problem.message))

    def _target(self, prop: str) -> str | None:
        """The Convio field a property maps to: field_map, its own name, or its flat form."""
        if prop not in self._targets:
            target = self.field_map.get(prop)
            if target is None:
                dotted = prop.replace("__", ".")
                target = next((n for n in (prop, dotted) if n in self.catalogue), None)
            self._targets[prop] = target
        return self._targets[prop]


def _locator(name: str, value: Any) -> str:
    if isinstance(value, (dict, list, bool)):
        raise FieldValueError("invalid", "expects a single text or number value")
    text = sendable(str(value).strip())
    return email_address(text) if name == "primary_email" else text


def key_problems(key: Mapping[str, Any] | None) -> list[FieldError]:
    """A key property that is null, missing or blank (every such record would share one ledger
    identity), or that could not be written back as it came (text UTF-8 cannot carry)."""
    errors = []
    for name, value in (key or {}).items():
        if value is None or (isinstance(value, str) and not value.strip()):
            errors.append(FieldError(name, "required", "key property is null, missing or blank"))
        elif isinstance(value, str):
            try:
                sendable(value)
            except FieldValueError as problem:
                errors.append(FieldError(name, problem.code, f"key property {problem.message}"))
    return errors
