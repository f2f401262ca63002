"""Tenants, keys and the authenticated principal."""

from __future__ import annotations

from enum import StrEnum

import msgspec


class Scope(StrEnum):
    """What a key may do. ``admin`` may do everything a tenant can."""

    READ = "read"
    INGEST = "ingest"
    ADMIN = "admin"


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


class ApiKeyRead(msgspec.Struct, kw_only=True):
    id: str
    scope: Scope
    tenant_id: str
    revoked: bool


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling: one key of one tenant."""

    key_id: int
    tenant_id: int
    tenant_domain: str
    timezone: str
    scope: Scope

    def allows(self, needed: Scope) -> bool:
        return self.scope is Scope.ADMIN or needed is Scope.READ or self.scope is needed


class GetTenantRequest(msgspec.Struct, forbid_unknown_fields=True):
    """No fields: the tenant is the caller's."""
