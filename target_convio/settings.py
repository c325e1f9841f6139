"""The target's settings (docs/settings.md): their JSON schema, their checks, a typed view."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from jsonschema import Draft7Validator
from singer_sdk import typing as th

from target_convio.convio.client import ClientSettings, ConfigError, check_settings
from target_convio.ledger_schema import DEFAULT_LEDGER_URL, LedgerError, check_url
from target_convio.memberships import MIN_GROUP_ID, MembershipMap
from target_convio.modes import SyncMode
from target_convio.sync import SyncSettings

DEFAULT_BATCH_SIZE = 500
MAX_CONCURRENCY = 256
MAX_TIMEOUT_SECONDS = 3600
MAX_RETRIES = 20

CONFIG_SCHEMA = th.PropertiesList(
    th.Property(
        "api_url",
        th.StringType,
        required=True,
        title="API URL",
        description="Full SRConsAPI URL, e.g. https://secure2.convio.net/myorg/site/SRConsAPI",
    ),
    th.Property("api_key", th.StringType, required=True, secret=True, description="Site API key"),
    th.Property(
        "login_name", th.StringType, required=True, description="API administrator account name"
    ),
    th.Property(
        "login_password",
        th.StringType,
        required=True,
        secret=True,
        description="API administrator account password",
    ),
    th.Property(
        "response_format",
        th.StringType,
        default="xml",
        allowed_values=["xml", "json"],
        description="Answer format asked of Convio; both work",
    ),
    th.Property(
        "field_map",
        th.ObjectType(additional_properties=th.StringType),
        default={},
        description="{record property: Convio field name}; unmapped properties named like a "
        "Convio field (or its flattened form name__first) map to it, others are ignored",
    ),
    th.Property(
        "sync_mode",
        th.StringType,
        default="upsert",
        allowed_values=[mode.value for mode in SyncMode],
        description="upsert (createOrUpdate), update_only (update) or create_only (create)",
    ),
    th.Property(
        "max_concurrency",
        th.IntegerType(minimum=1, maximum=MAX_CONCURRENCY),
        default=8,
        description="Calls in flight: the ceiling with adaptive_concurrency, else the number",
    ),
    th.Property(
        "adaptive_concurrency",
        th.BooleanType,
        default=True,
        description=(
            "Find the calls in flight the site bears: raise them while latency holds, cut "
            "them on back pressure or rising latency"
        ),
    ),
    th.Property(
        "max_requests_per_second",
        th.NumberType(exclusive_minimum=0),
        description="Ceiling on calls started per second, across all threads; unset = unpaced",
    ),
    th.Property(
        "request_timeout_seconds",
        th.NumberType(exclusive_minimum=0, maximum=MAX_TIMEOUT_SECONDS),
        default=30,
        description="Timeout of one call, connection and answer included",
    ),
    th.Property(
        "max_retries",
        th.IntegerType(minimum=0, maximum=MAX_RETRIES),
        default=4,
        description="Further attempts of a call after a transient failure",
    ),
    th.Property(
        "batch_size_rows",
        th.IntegerType(minimum=1),
        default=DEFAULT_BATCH_SIZE,
        description="Records per checkpoint, across all streams: each ends in one STATE line",
    ),
    th.Property(
        "results_path",
        th.StringType,
        description="JSONL file that receives one result row per record (appended)",
    ),
    th.Property(
        "results_in_state",
        th.StringType,
        default="records",
        allowed_values=["records", "summary", "none"],
        description="What STATE lines carry: the checkpoint's result rows and the summary, "
        "the summary only, or neither",
    ),
    th.Property(
        "max_failure_rate",
        th.NumberType(exclusive_minimum=0, maximum=1),
        default=0.5,
        description="Stop when this share of the last 100 sent records was rejected or "
        "failed (checked from the 20th on); 1 never stops",
    ),
    th.Property(
        "add_group_ids",
        th.ArrayType(th.IntegerType),
        description="Group ids (1000 and above) every written record is added to",
    ),
    th.Property(
        "add_interest_ids",
        th.ArrayType(th.IntegerType),
        description="Email interest ids every written record is added to",
    ),
    th.Property("source", th.StringType, description="Source stored on records this run creates"),
    th.Property(
        "no_welcome",
        th.BooleanType,
        default=True,
        description="Suppress Convio's welcome email to new records",
    ),
    th.Property(
        "dry_run",
        th.CustomType(
            {"type": ["boolean", "string"], "enum": [True, False, "true", "false", "compare"]}
        ),
        default=False,
        description='true: map and check every record, call no write method; "compare": also '
        "ask Convio (getUser, read-only) what each write would do",
    ),
    th.Property(
        "ledger_url",
        th.StringType,
        default=DEFAULT_LEDGER_URL,
        secret=True,
        description="The sync ledger: sqlite:///path (relative to the working directory), "
        "postgresql://user:password@host/db, or none",
    ),
    th.Property(
        "first_contact",
        th.StringType,
        default="write",
        allowed_values=["write", "read"],
        description="A key the ledger does not know: write it at once, or read Convio first "
        "(getUser) and write only if its values differ (adopting a populated site)",
    ),
    th.Property(
        "full_sync",
        th.BooleanType,
        default=False,
        description="Send every record even when the ledger says it is unchanged",
    ),
    th.Property(
        "resend_after_days",
        th.NumberType(minimum=0),
        default=0,
        description="Also send an unchanged record Convio last confirmed longer ago; 0 never",
    ),
    th.Property(
        "resend_rejected",
        th.BooleanType,
        default=False,
        description="Send a record Convio rejected before even when it has not changed",
    ),
    th.Property(
        "group_map",
        th.ObjectType(additional_properties=th.IntegerType),
        default={},
        description="{record property: group id}: true adds the constituent to the group, "
        "false removes it, null leaves it; only these groups are touched",
    ),
    th.Property(
        "interest_map",
        th.ObjectType(additional_properties=th.IntegerType),
        default={},
        description="{record property: email interest id}, as group_map",
    ),
    th.Property(
        "max_replays",
        th.IntegerType(minimum=0, maximum=1000),
        default=5,
        description="How many later runs re-send a record that ended failed",
    ),
    th.Property(
        "max_calls_per_day",
        th.IntegerType(minimum=1),
        description=(
            "API calls (reads and writes, retries included) per site and UTC day, shared by "
            "every run using the same ledger; when spent, the run stops with exit code 75; "
            "unset = unlimited"
        ),
    ),
).to_dict()
# The SDK later merges its own settings into CONFIG_SCHEMA, in place; these are ours.
SETTING_NAMES = tuple(CONFIG_SCHEMA["properties"])
# SDK settings that change nothing here: accepted (with a warning), never described.
IGNORED_SDK_SETTINGS = {
    "load_method": "sync_mode says what a write does",
    "add_record_metadata": "the _sdc_ metadata columns are not Convio fields",
}


@dataclass(frozen=True)
class Settings:
    """What the target does with a validated config."""

    client: ClientSettings
    field_map: dict[str, str]
    batch_size: int
    results_path: str | None
    results_in_state: str
    max_failure_rate: float
    extra_params: dict[str, str]
    dry_run: bool
    ledger_url: str | None
    sync: SyncSettings
    memberships: MembershipMap
    max_calls_per_day: int | None = None

    @property
    def sync_mode(self) -> SyncMode:
        return self.sync.mode

    @property
    def compare(self) -> bool:
        """dry_run: "compare"."""
        return self.sync.compare

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        """From a config that passed `config_errors`; ConfigError for what still cannot work."""

        def get(name: str, default: Any = None) -> Any:
            value = config.get(name)
            return default if value is None else value

        try:
            client = ClientSettings.from_config(config)
        except TypeError as exc:
            raise ConfigError(
                "api_url, api_key, login_name and login_password are required"
            ) from exc
        check_settings(client)
        return cls(
            client=client,
            field_map=dict(get("field_map", {})),
            batch_size=int(get("batch_size_rows", DEFAULT_BATCH_SIZE)),
            results_path=get("results_path"),
            results_in_state=get("results_in_state", "records"),
            max_failure_rate=float(get("max_failure_rate", 0.5)),
            extra_params=_extra_params(config),
            dry_run=get("dry_run", False) in (True, "true", "compare"),
            ledger_url=_ledger_url(get("ledger_url", DEFAULT_LEDGER_URL)),
            max_calls_per_day=None
            if (per_day := get("max_calls_per_day")) is None
            else int(per_day),
            memberships=_memberships(
                get("group_map", {}), get("interest_map", {}), get("add_group_ids", [])
            ),
            sync=SyncSettings(
                mode=SyncMode(get("sync_mode", SyncMode.UPSERT.value)),
                full_sync=bool(get("full_sync", False)),
                read_first=get("first_contact", "write") == "read",
                compare=get("dry_run", False) == "compare",
                resend_after_days=float(get("resend_after_days", 0)),
                resend_rejected=bool(get("resend_rejected", False)),
                max_replays=int(get("max_replays", 5)),
            ),
        )


def config_errors(config: Mapping[str, Any], schema: Mapping[str, Any]) -> list[str]:
    """Each invalid setting in one phrase: its name and what it accepts (secrets not shown)."""
    problems: dict[str, str] = {}
    for error in Draft7Validator(schema).iter_errors(dict(config)):
        if error.validator == "required":
            name = str(error.message).split("'")[1]
            problems.setdefault(name, f"{name} is required")
            continue
        name = str(error.path[0]) if error.path else "config"
        spec = schema.get("properties", {}).get(name, {})
        got = "" if spec.get("secret") else f" (got {_shown(config.get(name))})"
        problems.setdefault(name, f"{name} must be {accepted(spec)}{got}")
    known = schema.get("properties", {})
    for name in set(config) - set(known) - set(IGNORED_SDK_SETTINGS):
        if not name.startswith("_"):  # Meltano's and the SDK's own extras start with one
            problems[name] = f"unknown setting '{name}'{did_you_mean(name, known)}"
    if not problems:
        try:
            Settings.from_config(config)
        except ConfigError as exc:
            return [str(exc)]
    return [problems[name] for name in sorted(problems)]


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """` (did you mean max_concurrency?)` for the closest choice, if one is close."""
    found = difflib.get_close_matches(name, sorted(choices), n=1, cutoff=0.75)
    return f" (did you mean {found[0]}?)" if found else ""


def accepted(spec: Mapping[str, Any]) -> str:
    """What a setting's JSON schema accepts, in words: `an integer of at least 1`."""
    if "enum" in spec:
        shown = (v if isinstance(v, str) else json.dumps(v) for v in spec["enum"] if v is not None)
        return "one of " + ", ".join(dict.fromkeys(shown))  # true and "true" are one choice
    types = spec.get("type", [])
    kinds = [types] if isinstance(types, str) else [t for t in types if t != "null"]
    words = " or ".join(_TYPE_WORDS.get(kind, kind) for kind in kinds) or "a value"
    if "items" in spec:
        words += " of " + _plural(accepted(spec["items"]))
    if spec.get("additionalProperties"):
        words += " whose values are " + accepted(spec["additionalProperties"])
    low, high = spec.get("minimum"), spec.get("maximum")
    if low is not None and high is not None:
        return f"{words} from {low} to {high}"
    bounds = [
        f"{word} {spec[key]}"
        for key, word in (
            ("minimum", "of at least"),
            ("exclusiveMinimum", "above"),
            ("maximum", "at most"),
            ("exclusiveMaximum", "below"),
        )
        if key in spec
    ]
    return " ".join([words, " and ".join(bounds)]) if bounds else words


def _plural(words: str) -> str:
    if words == "text":
        return "text values"
    return words.removeprefix("an ").removeprefix("a ") + "s"


_TYPE_WORDS = {
    "integer": "an integer",
    "number": "a number",
    "string": "text",
    "boolean": "true or false",
    "array": "a list",
    "object": "an object",
}


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _memberships(
    groups: Mapping[str, Any], interests: Mapping[str, Any], always: list[int]
) -> MembershipMap:
    """ConfigError for a group Convio keeps to itself (below 1000), or memberships that two
    settings would both decide."""
    for setting, low in (
        ("group_map", [f"{p}: {n}" for p, n in groups.items() if int(n) < MIN_GROUP_ID]),
        ("add_group_ids", [str(n) for n in always if int(n) < MIN_GROUP_ID]),
    ):
        if low:
            raise ConfigError(
                f"{setting} names groups below {MIN_GROUP_ID}, which are Convio's own and "
                f"cannot be changed ({', '.join(sorted(low))})"
            )
    both = sorted(set(groups) & set(interests))
    if both:
        raise ConfigError(f"group_map and interest_map both map {', '.join(both)}")
    for name, mapping in (("group_map", groups), ("interest_map", interests)):
        twice = sorted({int(n) for n in mapping.values() if list(mapping.values()).count(n) > 1})
        if twice:
            raise ConfigError(
                f"{name} maps one id from two properties, which would contradict each other: "
                f"{', '.join(map(str, twice))}"
            )
    overlap = sorted({int(n) for n in groups.values()} & {int(n) for n in always})
    if overlap:
        raise ConfigError(
            f"add_group_ids adds every record to groups that group_map also decides per "
            f"record: {', '.join(map(str, overlap))}"
        )
    return MembershipMap(
        {str(k): int(v) for k, v in groups.items()}, {str(k): int(v) for k, v in interests.items()}
    )


def _ledger_url(value: str) -> str | None:
    """None for `none`; ConfigError for a URL that names no database this target can use."""
    if value.strip().lower() in ("none", "off", ""):
        return None
    try:
        check_url(value)
    except LedgerError as exc:
        raise ConfigError(str(exc)) from None
    return value


def _extra_params(config: Mapping[str, Any]) -> dict[str, str]:
    """Parameters sent with every write."""
    params = {"no_welcome": "true" if config.get("no_welcome", True) is not False else "false"}
    for name in ("add_group_ids", "add_interest_ids"):
        ids = config.get(name) or []
        if ids:
            params[name] = ",".join(str(int(i)) for i in ids)
    if config.get("source"):
        params["source"] = str(config["source"])
    return params
