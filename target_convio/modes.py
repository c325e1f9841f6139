"""Sync modes: the write method each one calls, its checks before sending, what success means."""

from __future__ import annotations

from collections.abc import Mapping
from enum import Enum

from target_convio.fields import LOCATORS, Catalogue
from target_convio.outcomes import FieldError, Outcome


class SyncMode(str, Enum):
    """The `sync_mode` setting."""

    UPSERT = "upsert"
    UPDATE_ONLY = "update_only"
    CREATE_ONLY = "create_only"

    @property
    def method(self) -> str:
        """The SRConsAPI write method."""
        return _METHODS[self]

    def checks(self, params: Mapping[str, str], catalogue: Catalogue) -> list[FieldError]:
        """Why Convio would refuse these parameters for certain; no call is spent on them.

        Required fields are checked on create only: an update needs none, so in upsert they
        are left to Convio's code 10.
        """
        if self is SyncMode.CREATE_ONLY:
            errors = [] if params.get("primary_email") else [_missing("primary_email")]
            errors += [_missing(name) for name in catalogue.required if not params.get(name)]
            return errors
        if not any(params.get(name) for name in LOCATORS):
            return [
                FieldError(
                    "global_error",
                    "required",
                    "no match key: the record needs primary_email, member_id or cons_id",
                )
            ]
        return []

    def accepted(self, message: str) -> Outcome:
        """What an accepted write did: createOrUpdate says "New user added." when it created."""
        if self is SyncMode.CREATE_ONLY:
            return Outcome.CREATED
        if self is SyncMode.UPSERT and "added" in message.lower():
            return Outcome.CREATED
        return Outcome.UPDATED


_METHODS = {
    SyncMode.UPSERT: "createOrUpdate",
    SyncMode.UPDATE_ONLY: "update",
    SyncMode.CREATE_ONLY: "create",
}


def _missing(name: str) -> FieldError:
    return FieldError(name, "required", "is required to create a record")
