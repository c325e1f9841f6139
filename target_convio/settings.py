"""The target's settings (DESIGN.md §3): their JSON schema, and a typed view of a config."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from singer_sdk import typing as th

from target_convio.client import ClientSettings, ConfigError, check_settings

SYNC_METHODS = {"upsert": "createOrUpdate", "update_only": "update", "create_only": "create"}
DEFAULT_BATCH_SIZE = 500

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
        allowed_values=list(SYNC_METHODS),
        description="upsert (createOrUpdate), update_only (update) or create_only (create)",
    ),
    th.Property("max_concurrency", th.IntegerType, default=4, description="Calls in flight"),
    th.Property(
        "max_requests_per_second",
        th.NumberType,
        description="Ceiling on calls started per second, across all threads; unset = unpaced",
    ),
    th.Property(
        "request_timeout_seconds", th.NumberType, default=30, description="Timeout of one call"
    ),
    th.Property(
        "max_retries",
        th.IntegerType,
        default=4,
        description="Further attempts of a call after a transient failure",
    ),
    th.Property(
        "batch_size_rows",
        th.IntegerType,
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
        th.NumberType,
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
        th.BooleanType,
        default=False,
        description="Map and check every record, call no write method",
    ),
).to_dict()
# The SDK later merges its own settings into CONFIG_SCHEMA, in place; these are ours.
SETTING_NAMES = tuple(CONFIG_SCHEMA["properties"])


@dataclass(frozen=True)
class Settings:
    """What the target does with a validated config."""

    client: ClientSettings
    field_map: dict[str, str]
    sync_mode: str
    batch_size: int
    results_path: str | None
    results_in_state: str
    max_failure_rate: float
    extra_params: dict[str, str]
    dry_run: bool

    @property
    def method(self) -> str:
        return SYNC_METHODS[self.sync_mode]

    @classmethod
    def from_config(cls, config: Mapping[str, Any]) -> Settings:
        def get(name: str, default: Any = None) -> Any:
            value = config.get(name)
            return default if value is None else value

        rate = float(get("max_failure_rate", 0.5))
        if not 0.0 < rate <= 1.0:
            raise ConfigError("max_failure_rate must be above 0 and at most 1")
        batch_size = int(get("batch_size_rows", DEFAULT_BATCH_SIZE))
        if batch_size < 1:
            raise ConfigError("batch_size_rows must be at least 1")
        sync_mode = get("sync_mode", "upsert")
        if sync_mode not in SYNC_METHODS:
            raise ConfigError(f"sync_mode must be one of {', '.join(SYNC_METHODS)}")
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
            sync_mode=sync_mode,
            batch_size=batch_size,
            results_path=get("results_path"),
            results_in_state=get("results_in_state", "records"),
            max_failure_rate=rate,
            extra_params=_extra_params(config),
            dry_run=bool(get("dry_run", False)),
        )


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
