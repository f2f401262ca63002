"""Tenants, API keys and PBX accounts."""

from __future__ import annotations

from enum import StrEnum

import msgspec

from callhistory.principal import Scope


class TenantStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class TenantRead(msgspec.Struct, kw_only=True):
    id: str
    name: str
    domain: str
    timezone: str
    status: TenantStatus
    created_at: str | None


class ApiKeyCreated(msgspec.Struct, kw_only=True):
    """The only time a key's secret is shown."""

    id: str
    key: str
    scope: Scope
    tenant_id: str
    expires_at: str | None = None


class ApiKeyRead(msgspec.Struct, kw_only=True):
    id: str
    scope: Scope
    tenant_id: str
    revoked: bool


class GetTenantRequest(msgspec.Struct, forbid_unknown_fields=True):
    """No fields: the tenant is the caller's."""


class ApiKeyListed(msgspec.Struct, kw_only=True):
    """A key as ``callhistory key list`` shows it (never its secret)."""

    id: str
    tenant_id: str
    scope: Scope
    created_at: str | None
    expires_at: str | None
    last_used_at: str | None
    revoked: bool


class PbxCreated(msgspec.Struct, kw_only=True):
    """The only time a PBX's secret is shown: ``credentials`` is mod_json_cdr's ``cred``."""

    name: str
    secret: str
    credentials: str
    tenant_ids: list[str]


class PbxRead(msgspec.Struct, kw_only=True):
    name: str
    tenant_ids: list[str]
    created_at: str | None
    previous_secret_until: str | None
    revoked: bool


class PbxPrincipal(msgspec.Struct, frozen=True, kw_only=True):
    """A PBX authenticated by its own credentials, and the tenants it may write for."""

    id: int
    name: str
    tenant_ids: frozenset[int]


class RoutingNumber(msgspec.Struct, kw_only=True):
    number: str
    tenant_id: str
    created_at: str | None
