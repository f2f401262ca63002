"""RPC handlers of the webhook methods (service ``Etelecom``, admin keys)."""

from __future__ import annotations

from callhistory.principal import Scope
from callhistory.rpc import Context, MethodSet
from callhistory.webhooks import service
from callhistory.webhooks.guard import allow_list
from callhistory.webhooks.schemas import (
    DeliveriesRequest,
    DeliveryList,
    DeliveryRef,
    Done,
    EndpointCreate,
    EndpointCreated,
    EndpointList,
    EndpointRead,
    EndpointRef,
    EndpointUpdate,
    ListEndpointsRequest,
    SecretRotated,
)

methods = MethodSet(service="Etelecom", prefixes=("shop", "partner"))


@methods.rpc(scope=Scope.ADMIN, write=True)
async def CreateWebhookEndpoint(ctx: Context, request: EndpointCreate) -> EndpointCreated:
    """Register a URL to receive call events; its signing secret is shown this once."""
    return await service.create_endpoint(
        await ctx.write(),
        principal=ctx.principal,
        request=request,
        sealer=ctx.sealer,
        allow=allow_list(ctx.settings.webhook_allow),
    )


@methods.rpc(scope=Scope.ADMIN)
async def ListWebhookEndpoints(ctx: Context, request: ListEndpointsRequest) -> EndpointList:
    """The tenant's webhook endpoints, newest first (secrets are never shown again)."""
    return EndpointList(endpoints=await service.list_endpoints(ctx.read, principal=ctx.principal))


@methods.rpc(scope=Scope.ADMIN, write=True)
async def UpdateWebhookEndpoint(ctx: Context, request: EndpointUpdate) -> EndpointRead:
    """Change an endpoint's URL, events or description, or disable or enable it."""
    return await service.update_endpoint(
        await ctx.write(),
        principal=ctx.principal,
        request=request,
        allow=allow_list(ctx.settings.webhook_allow),
    )


@methods.rpc(scope=Scope.ADMIN, write=True)
async def DeleteWebhookEndpoint(ctx: Context, request: EndpointRef) -> Done:
    """Remove an endpoint and its deliveries (pending ones are not sent)."""
    conn = await ctx.write()
    await service.delete_endpoint(conn, principal=ctx.principal, endpoint_id=request.id)
    return Done(ok=True)


@methods.rpc(scope=Scope.ADMIN, write=True)
async def RotateWebhookSecret(ctx: Context, request: EndpointRef) -> SecretRotated:
    """A new signing secret, shown once; the old one also signs for 24 hours."""
    return await service.rotate_secret(
        await ctx.write(), principal=ctx.principal, endpoint_id=request.id, sealer=ctx.sealer
    )


@methods.rpc(scope=Scope.ADMIN)
async def ListWebhookDeliveries(ctx: Context, request: DeliveriesRequest) -> DeliveryList:
    """An endpoint's deliveries, newest first, each with its attempts."""
    return await service.list_deliveries(
        ctx.read, principal=ctx.principal, request=request, secret=ctx.cursor_secret
    )


@methods.rpc(scope=Scope.ADMIN, write=True)
async def RetryWebhookDelivery(ctx: Context, request: DeliveryRef) -> Done:
    """Send a delivery again now (failed ones too), retrying as for a new one."""
    await service.retry_delivery(await ctx.write(), principal=ctx.principal, delivery_id=request.id)
    return Done(ok=True)
