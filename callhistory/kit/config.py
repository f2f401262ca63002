"""Typed settings read from ``CALLHISTORY_*`` environment variables."""

from __future__ import annotations

import os
import re
from typing import Literal, get_args

import msgspec

DEFAULT_DATABASE_URL = "sqlite:///callhistory.db"
LogLevel = Literal["critical", "error", "warning", "info", "debug"]
_FIELD = re.compile(r"^(?P<detail>.*?)(?: - at `\$\.(?P<name>[a-z_]+)`)?$")


class ConfigError(ValueError):
    """A setting that cannot be used; the message names its environment variable."""


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Every knob of the service; each field maps to ``CALLHISTORY_<FIELD>``."""

    database_url: str = DEFAULT_DATABASE_URL
    host: str = "127.0.0.1"
    port: int = 8080
    pool_size: int = 10
    # base64 of 32 bytes sealing the SIP passwords kept in the database (sealing.py); several,
    # comma-separated, while rotating: the first seals, every one opens.
    data_key: str = ""
    statement_timeout_ms: int = 5000  # PostgreSQL's backstop for any one statement
    request_timeout_ms: int = 5000  # one request's reads, all statements together
    tenant_concurrency: int = 4  # requests of one tenant at once, per worker; 0: no cap
    tenant_queue_ms: int = 1000  # how long a request past the cap waits before 429
    max_body_bytes: int = 4 * 1024 * 1024
    max_connections: int = 1000  # per worker; past it uvicorn answers 503. 0: no cap
    header_timeout_ms: int = 10_000  # a request's line and headers must arrive within this
    body_timeout_ms: int = 30_000  # and its body within this, once its key was accepted
    log_level: LogLevel = "info"
    access_log: bool = True
    rate_limit_per_second: float = 50.0  # per API key and worker; 0 turns the limit off
    rate_limit_burst: int = 100
    # Failed authentications a client address may make a minute (and at once), per worker;
    # past it, 429 before credentials are even looked at. 0 turns the throttle off.
    auth_failures_per_minute: int = 20
    # Webhooks (docs/webhooks.md): `serve` sends deliveries from each worker unless off
    # (then run `callhistory deliver`); hosts, addresses or networks endpoints may reach over
    # plain http and at non-public addresses; timeouts; how long and how often to retry.
    deliver: bool = True
    webhook_allow: str = ""
    webhook_connect_timeout_ms: int = 5000
    webhook_timeout_ms: int = 15_000
    webhook_retry_hours: float = 72.0
    webhook_first_retry_ms: int = 5000
    webhook_disable_after: int = 10  # deliveries failed in a row before the endpoint is off
    webhook_concurrency: int = 32  # deliveries in flight per worker
    webhook_endpoint_concurrency: int = 8  # per endpoint, from each delivering process
    webhook_poll_ms: int = 250
    webhook_keep_days: int = 7  # finished deliveries' history
    # Where clients reach this service (https://calls.example.vn): recording links in webhooks.
    public_url: str = ""
    # Recordings (recordings/storage.py): file:///dir or s3://bucket/prefix; "" = beside SQLite.
    recordings_url: str = ""
    recording_link_seconds: int = 3600  # how long a signed recording link works
    recording_max_mb: int = 200  # largest upload
    recording_purge_seconds: int = 10  # how often erased calls' recordings are deleted

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Build settings from the environment; explicit ``overrides`` win."""
        if os.environ.get("CALLHISTORY_PBX_CREDENTIALS"):
            raise ConfigError(
                "CALLHISTORY_PBX_CREDENTIALS: one password for every tenant is no longer "
                "accepted; give each PBX its own with `callhistory pbx create NAME --tenant ID` "
                "(see docs/ingest-freeswitch.md) and unset this variable"
            )
        raw: dict[str, object] = {}
        for name in cls.__struct_fields__:
            value = os.environ.get(f"CALLHISTORY_{name.upper()}")
            if value is not None:
                raw[name] = value
        raw.update({k: v for k, v in overrides.items() if v is not None})
        if isinstance(raw.get("log_level"), str):
            raw["log_level"] = str(raw["log_level"]).lower()
        try:
            return msgspec.convert(raw, cls, strict=False)
        except msgspec.ValidationError as error:
            match = _FIELD.match(str(error))
            assert match is not None  # the pattern matches any text
            name = match.group("name")
            if not name:
                raise ConfigError(f"settings: {error}") from None
            got = f" (got {raw[name]!r})" if name in raw else ""
            raise ConfigError(f"CALLHISTORY_{name.upper()}: {_expected(name)}{got}") from None


def _expected(name: str) -> str:
    kind = Settings.__annotations__[name]
    if name == "log_level":
        return "must be one of " + ", ".join(get_args(LogLevel))
    return {
        "int": "must be a whole number",
        "float": "must be a number",
        "bool": "must be true or false",
    }.get(str(kind), f"must be a {kind}")
