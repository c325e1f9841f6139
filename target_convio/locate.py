"""Where a write would land: the constituent Convio would match, found by reads alone.

getUser is asked as createOrUpdate matches (docs/settings.md, "Sync modes"): by the record's own
cons_id; else by the one the ledger remembers (if Convio no longer has it, the write is resent
without it, and so the search goes on); else by member_id, then by email. A constituent found
by cons_id or member_id whose email the write would change to another constituent's would be
refused on a unique-email site (code 13), so that email is looked up too. With memberships
mapped, getUserGroups and getUserInterests tell which of them the constituent holds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from target_convio.convio.answers import Reply, as_list, transient
from target_convio.convio.codes import Kind

Read = Callable[[str, dict[str, Any]], "Reply | None"]  # None: the run is stopping

NOBODY, SEVERAL = "16", ("8", "15")
MEMBERSHIP_READS = {
    "group": ("getUserGroups", "group"),
    "interest": ("getUserInterests", "interest"),
}


@dataclass(frozen=True)
class Found:
    """What the reads found. `reply` is getUser's deciding answer: a record, nobody (16),
    several (8, 15), or a failure that says nothing."""

    reply: Reply
    by: str | None = None  # the parameter that found it: cons_id, member_id or primary_email
    memberships: dict[str, bool] = field(default_factory=dict)  # of those wanted: held?
    email_owner: str | None = None  # another constituent holding the email the write sends
    reads: int = 0

    @property
    def body(self) -> Mapping[str, Any] | None:
        """The constituent as getUser shows it, if one was found."""
        return (self.reply.body or {}) if self.reply.kind is Kind.OK else None

    @property
    def cons_id(self) -> str | None:
        return self.reply.cons_id if self.reply.kind is Kind.OK else None

    @property
    def answered(self) -> bool:
        """A record, nobody, or several: Convio said where the write would land."""
        return self.reply.kind is Kind.OK or self.reply.code in (NOBODY, *SEVERAL)


def locate(
    read: Read, params: Mapping[str, str], known_cons_id: str | None, wanted: Mapping[str, bool]
) -> Found | None:
    """The constituent a write of `params` would address; None if the run is stopping."""
    reads = 0
    reply: Reply | None = None
    for name, value in _locators(params, known_cons_id):
        reply = read("getUser", {name: value})
        reads += 1
        if reply is None:
            return None
        if reply.kind is Kind.OK and not reply.cons_id:  # whose it is, unknown: nothing is known
            missing = transient("getUser answered without a cons_id", reply.http_status)
            reply = replace(missing, attempts=reply.attempts)
            break
        if reply.kind is Kind.OK:
            found = Found(reply, name, reads=reads)
            return _with_memberships(read, _with_email_owner(read, found, params), wanted)
        if reply.code != NOBODY or (name == "cons_id" and params.get("cons_id")):
            break  # several, a failure, or the record's own cons_id that Convio lacks
    if reply is None:  # nothing to look up by: the checks before sending refuse this record
        return Found(Reply(Kind.RECORD, "no match key", code=NOBODY))
    return Found(reply, reads=reads)


def _locators(params: Mapping[str, str], known_cons_id: str | None) -> list[tuple[str, str]]:
    if params.get("cons_id"):
        return [("cons_id", params["cons_id"])]
    found = [("cons_id", known_cons_id)] if known_cons_id else []
    return found + [
        (name, params[name]) for name in ("member_id", "primary_email") if params.get(name)
    ]


def _with_email_owner(read: Read, found: Found, params: Mapping[str, str]) -> Found | None:
    email = (params.get("primary_email") or "").strip()
    held = str(((found.body or {}).get("email") or {}).get("primary_address") or "")
    if found.by == "primary_email" or not email or email.casefold() == held.strip().casefold():
        return found
    owner = read("getUser", {"primary_email": email})
    if owner is None:
        return None
    found = replace(found, reads=found.reads + 1)
    if owner.kind is Kind.OK and owner.cons_id != found.cons_id:
        return replace(found, email_owner=owner.cons_id)
    if owner.code in SEVERAL:
        return replace(found, email_owner="several constituents")
    return found


def _with_memberships(read: Read, found: Found | None, wanted: Mapping[str, bool]) -> Found | None:
    held: dict[str, bool] = {}
    for kind, (method, item) in MEMBERSHIP_READS.items():
        names = [name for name in wanted if name.startswith(f"{kind}:")]
        if not names or found is None:
            continue
        reply = read(method, {"cons_id": found.cons_id or ""})
        if reply is None:
            return None
        found = replace(found, reads=found.reads + 1)
        if reply.kind is not Kind.OK:
            return Found(reply, reads=found.reads)  # what it holds is unknown: nothing is known
        entries = as_list((reply.body or {}).get(item))
        ids = {str(entry.get("id")) for entry in entries if isinstance(entry, Mapping)}
        held.update({name: name.split(":")[1] in ids for name in names})
    return replace(found, memberships=held) if found is not None else None
