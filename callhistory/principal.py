"""Who is calling, as every layer sees it: a key's tenant and scope (``keys`` authenticates;
the transport and the domains only read it)."""

from __future__ import annotations

from enum import StrEnum

import msgspec


class Scope(StrEnum):
    """What a key may do. ``admin`` may do everything a tenant can."""

    READ = "read"
    INGEST = "ingest"
    ADMIN = "admin"


class Principal(msgspec.Struct, frozen=True, kw_only=True):
    """Who is calling: one key of one tenant."""

    key_id: int
    tenant_id: int
    tenant_domain: str
    timezone: str
    scope: Scope
    used_at: int | None = None  # when the key's use was last recorded (microseconds)

    def allows(self, needed: Scope) -> bool:
        return self.scope is Scope.ADMIN or needed is Scope.READ or self.scope is needed
