"""The emulated site's constituents, their indexes, and the rules that locate one."""

from __future__ import annotations

import itertools
import threading
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from target_convio.emulator.errors import ApiError

EMAIL_FIELD = "email.primary_address"
USER_NAME_FIELD = "user_name"


@dataclass
class Constituent:
    """One stored constituent record."""

    cons_id: str
    fields: dict[str, str] = field(default_factory=dict)
    member_id: str | None = None
    groups: set[int] = field(default_factory=set)
    interests: set[int] = field(default_factory=set)
    source: str | None = None
    sub_source: str | None = None
    welcome_sent: bool = False
    updates: int = 0

    @property
    def email(self) -> str | None:
        return self.fields.get(EMAIL_FIELD)

    def snapshot(self) -> dict[str, Any]:
        """A plain copy, for tests and the inspection route."""
        return {
            "cons_id": self.cons_id,
            "member_id": self.member_id,
            "fields": dict(self.fields),
            "groups": sorted(self.groups),
            "interests": sorted(self.interests),
            "source": self.source,
            "sub_source": self.sub_source,
            "welcome_sent": self.welcome_sent,
            "updates": self.updates,
        }


class Store:
    """Constituents by cons_id, with indexes by email, member_id and user name.

    Callers hold `lock` across a locate and the write that follows it.
    """

    def __init__(self, first_cons_id: int = 1000001) -> None:
        self.lock = threading.RLock()
        self._records: dict[str, Constituent] = {}
        self._ids = itertools.count(first_cons_id)
        self._by_email: defaultdict[str, set[str]] = defaultdict(set)
        self._by_member: defaultdict[str, set[str]] = defaultdict(set)
        self._by_user_name: dict[str, str] = {}

    def all(self) -> list[Constituent]:
        with self.lock:
            return list(self._records.values())

    def get(self, cons_id: str) -> Constituent | None:
        return self._records.get(cons_id)

    def by_email(self, email: str) -> list[Constituent]:
        return [self._records[c] for c in sorted(self._by_email.get(email.lower(), ()))]

    def by_member_id(self, member_id: str) -> list[Constituent]:
        return [self._records[c] for c in sorted(self._by_member.get(member_id, ()))]

    def user_name_owner(self, user_name: str) -> str | None:
        return self._by_user_name.get(user_name.lower())

    def add(
        self,
        fields: dict[str, str],
        *,
        member_id: str | None = None,
        cons_id: str | None = None,
        groups: Iterable[int] = (),
        interests: Iterable[int] = (),
        source: str | None = None,
        sub_source: str | None = None,
        welcome_sent: bool = False,
    ) -> Constituent:
        """Store a new record as given: no rule is checked (seeding uses this directly)."""
        with self.lock:
            record = Constituent(
                cons_id=cons_id or self._new_id(),
                member_id=member_id,
                groups=set(groups),
                interests=set(interests),
                source=source,
                sub_source=sub_source,
                welcome_sent=welcome_sent,
            )
            if record.cons_id in self._records:
                raise ValueError(f"cons_id {record.cons_id} already exists")
            self._records[record.cons_id] = record
            record.fields.update(fields)
            if record.email:
                record.fields[EMAIL_FIELD] = record.email.lower()
            self._index(record, add=True)
            return record

    def remove(self, cons_id: str) -> None:
        """Delete a record, as staff deleting or merging it in Luminate would."""
        with self.lock:
            record = self._records.pop(cons_id)
            self._index(record, add=False)

    def restore(self, snapshots: Iterable[dict[str, Any]]) -> None:
        """Add records saved with Constituent.snapshot() (an emulator state file)."""
        for saved in snapshots:
            fields = {k: v for k, v in saved.items() if k != "updates"}
            self.add(**fields).updates = int(saved.get("updates", 0))

    def _new_id(self) -> str:
        cons_id = str(next(self._ids))
        while cons_id in self._records:
            cons_id = str(next(self._ids))
        return cons_id

    def change(
        self, record: Constituent, fields: dict[str, str | None], member_id: str | None
    ) -> None:
        """Apply field changes (None clears a field) and keep the indexes right."""
        with self.lock:
            self._index(record, add=False)
            for name, value in fields.items():
                if value is None:
                    record.fields.pop(name, None)
                else:
                    record.fields[name] = value
            if member_id:
                record.member_id = member_id
            record.updates += 1
            self._index(record, add=True)

    def _index(self, record: Constituent, *, add: bool) -> None:
        keys = (
            (self._by_email, record.email),
            (self._by_member, record.member_id),
        )
        for index, key in keys:
            if not key:
                continue
            if add:
                index[key].add(record.cons_id)
            else:
                index[key].discard(record.cons_id)
                if not index[key]:
                    del index[key]
        user_name = record.fields.get(USER_NAME_FIELD)
        if user_name:
            if add:
                self._by_user_name[user_name.lower()] = record.cons_id
            else:
                self._by_user_name.pop(user_name.lower(), None)

    def locate(
        self,
        cons_id: str | None,
        member_id: str | None,
        email: str | None,
        *,
        create_if_missing: bool,
        unique_email: bool,
    ) -> Constituent | None:
        """The record a call addresses (Convio's createOrUpdate match rules); None means create."""
        if cons_id:
            found = self.get(cons_id)
            if found is None:
                raise ApiError(16, "No constituent has that cons_id.")
            return found
        if member_id:
            matches = self.by_member_id(member_id)
            if len(matches) > 1:
                raise ApiError(15, "Several constituents have that member_id.")
            if matches:
                return matches[0]
        if email:
            matches = self.by_email(email)
            if len(matches) == 1:
                return matches[0]
            if len(matches) > 1 and (unique_email or not create_if_missing):
                raise ApiError(8, "Several constituents have that primary_email.")
        if create_if_missing:
            return None
        if not (member_id or email):
            raise ApiError(10, "One of cons_id, member_id or primary_email is required.")
        raise ApiError(16)
