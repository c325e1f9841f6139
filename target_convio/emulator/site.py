"""One emulated Luminate Online site: its fields, groups, interests, API users and flags."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

from target_convio.emulator.errors import ApiError

VALUE_TYPES = ("TEXT", "BOOLEAN", "DATE", "ENUMERATION")
TRUE_WORDS = frozenset({"true", "t", "yes", "y", "1"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "0"})
# C0 controls other than tab, LF and CR, DEL, and the non-characters XML cannot carry.
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ufffe\uffff]")
_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")
_US_DATE = re.compile(r"(\d{1,2})/(\d{1,2})/(\d{4})")
SIGN_UP_ONLY = frozenset({"user_name", "user_password"})
_USER_NAME = re.compile(r"[A-Za-z0-9_.@%:-]+")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")


class SiteError(ValueError):
    """A site file that cannot be used, with the reason."""


@dataclass(frozen=True)
class Field:
    """One constituent field as listUserFields describes it."""

    name: str
    label: str
    value_type: str = "TEXT"
    max_chars: int | None = None
    required: bool = False
    group: str = ""
    sub_group: str | None = None
    choices: tuple[str, ...] = ()
    user_modifiable: bool = True

    def normalize(self, raw: str) -> str:
        """The value as stored, or ApiError 35, 23 or 22 when the site would refuse it."""
        if _CONTROL.search(raw):
            raise ApiError(35, f"Field '{self.name}'.")
        if self.value_type == "BOOLEAN":
            word = raw.strip().lower()
            if word in TRUE_WORDS | FALSE_WORDS:
                return "true" if word in TRUE_WORDS else "false"
            raise self.invalid("Value must be true or false")
        if self.value_type == "DATE":
            date = _normalize_date(raw.strip())
            if date is None:
                raise self.invalid("Invalid date (yyyy-MM-dd)")
            return date
        if self.value_type == "ENUMERATION" and self.choices and raw not in self.choices:
            raise self.invalid("Value is not one of the choices")
        if self.name == "user_name" and not _USER_NAME.fullmatch(raw):
            raise self.invalid(
                f"Invalid characters in {self.label} (valid characters are letters, digits, "
                "'-', '_', '@', '.', '%', and ':')"
            )
        if self.max_chars is not None and len(raw) > self.max_chars:
            raise ApiError(23, f"Field '{self.name}' allows at most {self.max_chars} characters.")
        if self.name.startswith("email.") and self.name.endswith("_address"):
            if normalize_email(raw) is None:
                raise self.invalid("Invalid email address")
            return raw.strip().lower()
        return raw

    def invalid(self, detail: str) -> ApiError:
        """Code 22 as a real site words it: `"<group>/<label>" <detail>`."""
        where = f"{self.group}/{self.label}" if self.group else self.label
        message = f'One or more attributes failed validation: "{where}" {detail}'
        return ApiError(22, message, whole=True)

    def describe(self, include_choices: bool) -> dict[str, Any]:
        """The `field` element of a listUserFields answer."""
        out: dict[str, Any] = {"name": self.name, "label": self.label, "valueType": self.value_type}
        if self.max_chars is not None:
            out["maxChars"] = self.max_chars
        out["required"] = self.required
        if self.group:
            out["group"] = self.group
        if self.sub_group:
            out["subGroup"] = self.sub_group
        out["isUserModifiable"] = self.user_modifiable
        if include_choices and self.choices:
            out["choices"] = {"choice": list(self.choices)}
        return out


def printable(text: str, limit: int = 100) -> str:
    """Request text made safe to echo in an answer: no control characters, bounded length."""
    return _CONTROL.sub("?", text[:limit])


def normalize_email(raw: str) -> str | None:
    """A lower-cased email address, None for one that is not an address (ApiError 35 for
    control characters)."""
    if _CONTROL.search(raw):
        raise ApiError(35, "Invalid characters in Email Address.")
    value = raw.strip().lower()
    return value if _EMAIL.fullmatch(value) else None


def _normalize_date(raw: str) -> str | None:
    """yyyy-MM-dd from yyyy-MM-dd or MM/dd/yyyy; None for anything else."""
    iso, us = _ISO_DATE.fullmatch(raw), _US_DATE.fullmatch(raw)
    try:
        if iso:
            year, month, day = (int(part) for part in iso.groups())
            return dt.date(year, month, day).isoformat()
        if us:
            month, day, year = (int(part) for part in us.groups())
            return dt.date(year, month, day).isoformat()
    except ValueError:
        pass
    return None


@dataclass(frozen=True)
class ApiUser:
    """An API administrator account."""

    login_name: str
    login_password: str
    api_access: bool = True


@dataclass
class Site:
    """Everything the emulator knows about one site before any call."""

    org: str = "demo"
    api_keys: tuple[str, ...] = ("demo-api-key",)
    api_users: tuple[ApiUser, ...] = (ApiUser("apiuser", "apipass"),)
    allowed_ips: tuple[str, ...] = ("127.0.0.0/8", "::1/128")
    unique_email: bool = True
    send_welcome: bool = True
    date_offset: str = "-06:00"
    fields: dict[str, Field] = field(default_factory=dict)
    groups: dict[int, str] = field(default_factory=dict)
    admin_groups: frozenset[int] = frozenset()
    interests: dict[int, str] = field(default_factory=dict)
    constituents: list[dict[str, Any]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._networks = [ipaddress.ip_network(net, strict=False) for net in self.allowed_ips]

    def ip_allowed(self, address: str) -> bool:
        """Whether the API IP white list admits this client address."""
        ip = ipaddress.ip_address(address)
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
            ip = ip.ipv4_mapped
        return any(ip in net for net in self._networks)

    def authenticate(self, login_name: str | None, login_password: str | None) -> bool:
        """Whether these credentials belong to an API user allowed to use the API."""
        return any(
            user.login_name == login_name
            and user.login_password == login_password
            and user.api_access
            for user in self.api_users
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Site:
        """A site from the JSON shape of a site file; SiteError names what is wrong."""
        try:
            return _site_from_dict(data)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, SiteError):
                raise
            raise SiteError(f"invalid site file: {exc!r}") from exc

    @classmethod
    def load(cls, path: str | Path) -> Site:
        """A site from a JSON site file."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise SiteError(f"cannot read site file {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise SiteError(f"site file {path} must hold a JSON object")
        return cls.from_dict(data)

    def with_listing(self, path: str | Path) -> Site:
        """This site with its fields read from a recorded listUserFields answer (XML)."""
        try:
            root = ElementTree.fromstring(Path(path).read_bytes())  # noqa: S314 - a local file
            fields = [_field_from_listing(e) for e in root if _local(e.tag) == "field"]
        except (OSError, ElementTree.ParseError, KeyError) as exc:
            raise SiteError(f"cannot read a listUserFields answer from {path}: {exc}") from exc
        return replace(self, fields={f.name: f for f in fields})

    @classmethod
    def default(cls) -> Site:
        """The built-in demo site."""
        return cls.from_dict(default_site_data())


def default_site_data() -> dict[str, Any]:
    """The built-in site file, as parsed JSON."""
    text = resources.files(__package__).joinpath("default_site.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    return data


def _site_from_dict(data: dict[str, Any]) -> Site:
    known = set(Site.__dataclass_fields__) - {"fields", "groups", "interests", "admin_groups"}
    unknown = set(data) - known - {"fields", "groups", "interests"}
    if unknown:
        raise SiteError(f"unknown keys in site file: {sorted(unknown)}")
    fields = [_field_from_dict(item) for item in data.get("fields", [])]
    groups = data.get("groups", [])
    return Site(
        org=str(data.get("org", "demo")),
        api_keys=tuple(data.get("api_keys", Site.api_keys)),
        api_users=tuple(ApiUser(**user) for user in data["api_users"])
        if "api_users" in data
        else Site.api_users,
        allowed_ips=tuple(data.get("allowed_ips", Site.allowed_ips)),
        unique_email=bool(data.get("unique_email", True)),
        send_welcome=bool(data.get("send_welcome", True)),
        date_offset=str(data.get("date_offset", Site.date_offset)),
        fields={f.name: f for f in fields},
        groups={int(g["id"]): str(g["label"]) for g in groups},
        admin_groups=frozenset(int(g["id"]) for g in groups if g.get("admin_security")),
        interests={int(i["id"]): str(i["label"]) for i in data.get("interests", [])},
        constituents=[_seed_from_dict(item) for item in data.get("constituents", [])],
    )


SEED_KEYS = frozenset(
    {"fields", "member_id", "cons_id", "groups", "interests", "source", "sub_source"}
)


def _seed_from_dict(item: dict[str, Any]) -> dict[str, Any]:
    unknown = set(item) - SEED_KEYS
    if unknown:
        raise SiteError(f"unknown keys in a seeded constituent: {sorted(unknown)}")
    fields = {str(k): str(v) for k, v in item.get("fields", {}).items()}
    seed = {**item, "fields": fields}
    if "cons_id" in seed:
        seed["cons_id"] = str(seed["cons_id"])
    return seed


def _field_from_dict(item: dict[str, Any]) -> Field:
    value_type = str(item.get("valueType", "TEXT")).upper()
    if value_type not in VALUE_TYPES:
        raise SiteError(f"field {item.get('name')!r}: valueType must be one of {VALUE_TYPES}")
    choices = tuple(str(c) for c in item.get("choices", ()))
    if value_type == "DATE" and not choices:
        choices = tuple(str(year) for year in range(1900, dt.date.today().year + 1))
    max_chars = item.get("maxChars")
    return Field(
        name=str(item["name"]),
        label=str(item.get("label", item["name"])),
        value_type=value_type,
        max_chars=int(max_chars) if max_chars is not None else None,
        required=bool(item.get("required", False)),
        group=str(item.get("group") or ""),
        sub_group=item.get("subGroup"),
        choices=choices,
        user_modifiable=bool(item.get("isUserModifiable", True)),
    )


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _field_from_listing(element: ElementTree.Element) -> Field:
    """One `field` element of a listUserFields answer, whichever optional elements it has."""
    item = {_local(child.tag): (child.text or "").strip() for child in element}
    choices = [
        (c.text or "").strip()
        for child in element
        if _local(child.tag) == "choices"
        for c in child
        if _local(c.tag) == "choice"
    ]
    return _field_from_dict(
        {
            "name": item["name"],
            "label": item.get("label") or item["name"],
            "valueType": item.get("valueType") or "TEXT",
            "maxChars": item.get("maxChars"),
            "required": str(item.get("required", "false")).lower() == "true",
            "group": item.get("group"),
            "subGroup": item.get("subGroup"),
            "choices": choices,
            "isUserModifiable": str(item.get("isUserModifiable", "true")).lower() == "true",
        }
    )
