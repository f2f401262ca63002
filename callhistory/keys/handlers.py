"""RPC handler of GetTenant: who the key belongs to (its name and time zone, for the web page
and for integrators that display times the way the tenant does)."""

from __future__ import annotations

from callhistory.keys import service
from callhistory.keys.schemas import GetTenantRequest, TenantRead
from callhistory.principal import Scope
from callhistory.rpc import Context, MethodSet

methods = MethodSet(service="Etelecom", prefixes=("shop", "partner"))


@methods.rpc(scope=Scope.READ)
async def GetTenant(ctx: Context, request: GetTenantRequest) -> TenantRead:
    """The caller's tenant: id, name, domain, time zone."""
    return await service.get_tenant(ctx.read, principal=ctx.principal)
