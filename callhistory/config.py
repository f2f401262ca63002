"""Typed settings read from ``CALLHISTORY_*`` environment variables."""

from __future__ import annotations

import os

import msgspec

DEFAULT_DATABASE_URL = "sqlite:///callhistory.db"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """Every knob of the service; each field maps to ``CALLHISTORY_<FIELD>``."""

    database_url: str = DEFAULT_DATABASE_URL
    host: str = "127.0.0.1"
    port: int = 8080
    pool_size: int = 10
    statement_timeout_ms: int = 5000
    max_body_bytes: int = 4 * 1024 * 1024
    log_level: str = "info"
    access_log: bool = True
    rate_limit_per_second: float = 50.0  # per API key and worker; 0 turns the limit off
    rate_limit_burst: int = 100
    pbx_credentials: str = ""  # "user:password" a shared PBX may use for every tenant

    @classmethod
    def from_env(cls, **overrides: object) -> Settings:
        """Build settings from the environment; explicit ``overrides`` win."""
        raw: dict[str, object] = {}
        for name in cls.__struct_fields__:
            value = os.environ.get(f"CALLHISTORY_{name.upper()}")
            if value is not None:
                raw[name] = value
        raw.update({k: v for k, v in overrides.items() if v is not None})
        return msgspec.convert(raw, cls, strict=False)
