"""The SRConsAPI methods: parameters in, (response root, response body) out, or ApiError."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from target_convio.emulator.errors import ApiError
from target_convio.emulator.site import (
    SIGN_UP_ONLY,
    TRUE_WORDS,
    Field,
    Site,
    normalize_email,
    printable,
)
from target_convio.emulator.store import EMAIL_FIELD, USER_NAME_FIELD, Constituent, Store

Params = Mapping[str, str]
Result = tuple[str, dict[str, Any]]

MIN_GROUP_ID = 1000


class Methods:
    """Each API method of one site, as a callable taking the request's parameters."""

    def __init__(self, site: Site, store: Store) -> None:
        self.site = site
        self.store = store
        self.table: dict[str, Callable[[Params], Result]] = {
            "createOrUpdate": self.create_or_update,
            "create": self.create,
            "update": self.update,
            "getUser": self.get_user,
            "getUserGroups": self.get_user_groups,
            "getUserInterests": self.get_user_interests,
            "listUserFields": self.list_user_fields,
            "listUserFieldChoices": self.list_user_field_choices,
        }

    # -- writes ---------------------------------------------------------------------------

    def create_or_update(self, params: Params) -> Result:
        record, created = self._write(params, create_if_missing=True)
        message = "New user added." if created else "User updated."
        return "createOrUpdateConsResponse", {"cons_id": record.cons_id, "message": message}

    def create(self, params: Params) -> Result:
        record, _ = self._write(params, create_only=True)
        return "createConsResponse", {"cons_id": record.cons_id, "message": "New user added."}

    def update(self, params: Params) -> Result:
        record, _ = self._write(params, create_if_missing=False)
        return "updateConsResponse", {"cons_id": record.cons_id, "message": "User updated."}

    def _write(
        self, params: Params, *, create_if_missing: bool = False, create_only: bool = False
    ) -> tuple[Constituent, bool]:
        changes = self._field_changes(params)
        groups = self._id_changes(params, "group_ids", self.site.groups)
        interests = self._id_changes(params, "interest_ids", self.site.interests)
        email = _email_param(params, self.site)
        with self.store.lock:
            if create_only:
                self._refuse_existing(params, email)
                record = None
            else:
                record = self.store.locate(
                    params.get("cons_id"),
                    params.get("member_id"),
                    email,
                    create_if_missing=create_if_missing,
                    unique_email=self.site.unique_email,
                )
            if record is None:
                return self._create(params, changes, email, groups, interests), True
            if email and EMAIL_FIELD not in changes and record.email != email:
                changes[EMAIL_FIELD] = email  # located by cons_id or member_id: a new address
            self._check_unique(changes, record.cons_id)
            self.store.change(record, changes, params.get("member_id"))
            _apply_ids(record.groups, groups)
            _apply_ids(record.interests, interests)
            return record, False

    def _create(
        self,
        params: Params,
        changes: dict[str, str | None],
        email: str | None,
        groups: tuple[set[int], set[int]],
        interests: tuple[set[int], set[int]],
    ) -> Constituent:
        values = {name: value for name, value in changes.items() if value is not None}
        values.setdefault(EMAIL_FIELD, email or "")
        # A real site flags its sign-up form's user_name and user_password required, yet
        # creates records through the API without them.
        required = [
            f.name for f in self.site.fields.values() if f.required and f.name not in SIGN_UP_ONLY
        ]
        if not values[EMAIL_FIELD] or any(not values.get(name) for name in required):
            raise ApiError(10)
        self._check_unique(values, None)
        welcome = params.get("no_welcome", "").strip().lower() in {"f", "false"}
        record = self.store.add(
            values,
            member_id=params.get("member_id") or None,
            source=params.get("source") or None,
            sub_source=params.get("sub_source") or None,
            welcome_sent=welcome and self.site.send_welcome,
        )
        _apply_ids(record.groups, groups)
        _apply_ids(record.interests, interests)
        return record

    def _refuse_existing(self, params: Params, email: str | None) -> None:
        cons_id, member_id = params.get("cons_id"), params.get("member_id")
        if (cons_id and self.store.get(cons_id)) or (
            member_id and self.store.by_member_id(member_id)
        ):
            raise ApiError(11)
        if email and self.site.unique_email and self.store.by_email(email):
            raise ApiError(13)

    def _check_unique(self, values: Mapping[str, str | None], cons_id: str | None) -> None:
        user_name = values.get(USER_NAME_FIELD)
        if user_name and self.store.user_name_owner(user_name) not in (None, cons_id):
            raise ApiError(12)
        email = values.get(EMAIL_FIELD)
        others = [r for r in self.store.by_email(email) if r.cons_id != cons_id] if email else []
        if others and self.site.unique_email:
            raise ApiError(13)

    def _field_changes(self, params: Params) -> dict[str, str | None]:
        """Catalogue fields in the request: "" leaves a value alone, blanks clear it."""
        changes: dict[str, str | None] = {}
        for name, raw in params.items():
            spec = self.site.fields.get(name)
            if spec is None or not spec.user_modifiable or raw == "":
                continue
            changes[name] = None if raw.isspace() else spec.normalize(raw)
        return changes

    def _id_changes(
        self, params: Params, suffix: str, known: Mapping[int, str]
    ) -> tuple[set[int], set[int]]:
        added = _id_list(params.get(f"add_{suffix}", ""), f"add_{suffix}", known)
        removed = _id_list(params.get(f"remove_{suffix}", ""), f"remove_{suffix}", known)
        if suffix == "group_ids" and (added | removed) & self.site.admin_groups:
            raise ApiError(22, "Administrator security groups cannot be changed.")
        return added, removed

    # -- reads ----------------------------------------------------------------------------

    def _locate_existing(self, params: Params) -> Constituent:
        record = self.store.locate(
            params.get("cons_id"),
            params.get("member_id"),
            _email_param(params, self.site),
            create_if_missing=False,
            unique_email=self.site.unique_email,
        )
        assert record is not None  # locate raises rather than answer None here
        return record

    def get_user(self, params: Params) -> Result:
        with self.store.lock:
            record = self._locate_existing(params)
            wanted = [f.strip() for f in params.get("fields", "").split(",") if f.strip()]
            return "getConsResponse", self._user_body(record, wanted)

    def _user_body(self, record: Constituent, wanted: list[str]) -> dict[str, Any]:
        def shown(name: str) -> bool:
            return not wanted or any(name == w or name.startswith(w + ".") for w in wanted)

        body: dict[str, Any] = {"cons_id": record.cons_id, "member_id": record.member_id}
        custom: dict[str, list[dict[str, Any]]] = {}
        for spec in self.site.fields.values():
            value = record.fields.get(spec.name)
            if value is not None and spec.value_type == "DATE":
                value += self.site.date_offset
            if spec.name.startswith("custom_"):
                kind = spec.name.removeprefix("custom_").rstrip("0123456789")
                if shown("custom"):
                    custom.setdefault(kind, []).append({"id": spec.name, "content": value})
            elif shown(spec.name):
                _nest(body, spec.name, value)
        if custom:
            body["custom"] = custom
        body["origin_source"] = record.source
        body["origin_subsource"] = record.sub_source
        return body

    def get_user_groups(self, params: Params) -> Result:
        with self.store.lock:
            ids = sorted(self._locate_existing(params).groups)
        groups = [{"id": i, "label": self.site.groups.get(i, "")} for i in ids]
        return "getConsGroupsResponse", {"group": groups}

    def get_user_interests(self, params: Params) -> Result:
        with self.store.lock:
            ids = sorted(self._locate_existing(params).interests)
        interests = [  # as a live site answers: where it sits, and where it is offered
            {"id": i, "label": (label := self.site.interests.get(i, "")), "path": label}
            | {"for_email": True, "for_web": True}
            for i in ids
        ]
        return "getConsInterestsResponse", {"interest": interests}

    def list_user_fields(self, params: Params) -> Result:
        fields = list(self.site.fields.values())
        if params.get("access", "view") == "update":
            fields = [f for f in fields if f.user_modifiable]
        if params.get("sort_order", "field") == "group":
            order = {group: i for i, group in enumerate(dict.fromkeys(f.group for f in fields))}
            fields.sort(key=lambda f: order[f.group])
        else:
            fields.sort(key=lambda f: f.name)
        choices = params.get("include_choices", "").strip().lower() in TRUE_WORDS
        return "listConsFieldsResponse", {"field": [f.describe(choices) for f in fields]}

    def list_user_field_choices(self, params: Params) -> Result:
        name = params.get("field")
        if not name:
            raise ApiError(10, "Parameter 'field' is required.")
        spec = self.site.fields.get(name)
        if spec is None:
            raise ApiError(18, f"No field is named '{printable(name)}'.")
        return "listConsFieldChoicesResponse", {"choice": list(spec.choices)}


def _email_param(params: Params, site: Site) -> str | None:
    raw = params.get("primary_email", "")
    if not raw.strip():
        return None
    email = normalize_email(raw)
    if email is None:
        spec = site.fields.get(EMAIL_FIELD) or Field("primary_email", "Email Address", group="")
        raise spec.invalid("Invalid email address")
    return email


def _id_list(raw: str, param: str, known: Mapping[int, str]) -> set[int]:
    ids: set[int] = set()
    for part in (p.strip() for p in raw.split(",")):
        if not part:
            continue
        if not part.isdigit():
            raise ApiError(22, f"Parameter '{param}' takes numeric ids.")
        number = int(part)
        if param.endswith("group_ids") and number < MIN_GROUP_ID:
            raise ApiError(22, f"Group {number} is pre-defined and cannot be changed.")
        if number not in known:
            raise ApiError(22, f"Parameter '{param}': no id {number} on this site.")
        ids.add(number)
    return ids


def _apply_ids(current: set[int], change: tuple[set[int], set[int]]) -> None:
    added, removed = change
    current |= added
    current -= removed


def _nest(body: dict[str, Any], dotted: str, value: str | None) -> None:
    *parents, leaf = dotted.split(".")
    for part in parents:
        body = body.setdefault(part, {})
    body[leaf] = value
