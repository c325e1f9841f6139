"""Memberships the warehouse owns (`group_map`, `interest_map`): what a record wants, and the
difference from what Convio last confirmed, as write parameters.

A membership is named `group:1234` or `interest:5`. A true value wants it, a false value
wants it gone, a null leaves it alone; only mapped ids are ever touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from target_convio.fields import FieldValueError, boolean
from target_convio.outcomes import FieldError

MIN_GROUP_ID = 1000  # Convio's own groups; the API refuses to change them
KINDS = {"group": "group_ids", "interest": "interest_ids"}


@dataclass(frozen=True)
class MembershipMap:
    """`{record property: id}` for groups and for email interests."""

    groups: Mapping[str, int] = field(default_factory=dict)
    interests: Mapping[str, int] = field(default_factory=dict)

    @property
    def properties(self) -> frozenset[str]:
        return frozenset(self.groups) | frozenset(self.interests)

    def wanted(self, record: Mapping[str, Any]) -> tuple[dict[str, bool], list[FieldError]]:
        """The memberships a record asks for, and the values that are not true or false."""
        wanted: dict[str, bool] = {}
        errors: list[FieldError] = []
        for kind, mapping in (("group", self.groups), ("interest", self.interests)):
            for prop, number in mapping.items():
                value = record.get(prop)
                if value is None or (isinstance(value, str) and not value.strip()):
                    continue
                try:
                    wanted[f"{kind}:{number}"] = boolean(value) == "true"
                except FieldValueError as problem:
                    errors.append(FieldError(prop, problem.code, problem.message))
        return wanted, errors


def difference(wanted: Mapping[str, bool], confirmed: Mapping[str, bool]) -> dict[str, list[int]]:
    """`add_group_ids` and the like: what to change so Convio holds what is wanted."""
    changes: dict[str, list[int]] = {}
    for name, member in sorted(wanted.items()):
        if confirmed.get(name) is member:
            continue
        kind, number = name.split(":")
        verb = "add" if member else "remove"
        changes.setdefault(f"{verb}_{KINDS[kind]}", []).append(int(number))
    return changes


def with_changes(params: Mapping[str, str], changes: Mapping[str, list[int]]) -> dict[str, str]:
    """The write parameters with membership changes joined to any ids already there."""
    merged = dict(params)
    for name, numbers in changes.items():
        present = [n for n in merged.get(name, "").split(",") if n]
        ids = present + [str(n) for n in numbers if str(n) not in present]
        merged[name] = ",".join(ids)
    return merged
