"""RPC handlers of the directory methods (service ``Etelecom``)."""

from __future__ import annotations

from callhistory.directory import service
from callhistory.directory.schemas import (
    AssignUserRequest,
    DepartmentCreate,
    DepartmentList,
    DepartmentRead,
    ExtensionCreate,
    ExtensionList,
    ExtensionRead,
    HotlineCreate,
    HotlineList,
    HotlineRead,
    ListRequest,
    RemoveUserRequest,
    UserCreate,
    UserList,
    UserRead,
)
from callhistory.principal import Scope
from callhistory.rpc import Context, MethodSet

methods = MethodSet(service="Etelecom", prefixes=("shop", "partner"))


@methods.rpc(scope=Scope.ADMIN, write=True)
async def CreateHotline(ctx: Context, request: HotlineCreate) -> HotlineRead:
    """Register a hotline number of the tenant."""
    return await service.create_hotline(await ctx.write(), principal=ctx.principal, request=request)


@methods.rpc(scope=Scope.READ)
async def GetHotlines(ctx: Context, request: ListRequest) -> HotlineList:
    """The tenant's hotlines, newest first."""
    items, paging = await service.list_hotlines(
        ctx.read,
        principal=ctx.principal,
        paging=request.paging,
        secret=ctx.cursor_secret,
    )
    return HotlineList(hotlines=items, paging=paging)


@methods.rpc(scope=Scope.ADMIN, write=True)
async def CreateDepartment(ctx: Context, request: DepartmentCreate) -> DepartmentRead:
    """Create a department."""
    return await service.create_department(
        await ctx.write(), principal=ctx.principal, request=request
    )


@methods.rpc(scope=Scope.READ)
async def GetDepartments(ctx: Context, request: ListRequest) -> DepartmentList:
    """The tenant's departments, newest first."""
    items, paging = await service.list_departments(
        ctx.read,
        principal=ctx.principal,
        paging=request.paging,
        secret=ctx.cursor_secret,
    )
    return DepartmentList(departments=items, paging=paging)


@methods.rpc(scope=Scope.ADMIN, write=True)
async def CreateUser(ctx: Context, request: UserCreate) -> UserRead:
    """Create a user (staff member), optionally in a department."""
    return await service.create_user(await ctx.write(), principal=ctx.principal, request=request)


@methods.rpc(scope=Scope.READ)
async def GetUsers(ctx: Context, request: ListRequest) -> UserList:
    """The tenant's users, newest first."""
    items, paging = await service.list_users(
        ctx.read,
        principal=ctx.principal,
        paging=request.paging,
        secret=ctx.cursor_secret,
    )
    return UserList(users=items, paging=paging)


@methods.rpc(scope=Scope.ADMIN, write=True)
async def CreateExtension(ctx: Context, request: ExtensionCreate) -> ExtensionRead:
    """Create an extension with its number, hotline and user."""
    return await service.create_extension(
        await ctx.write(), principal=ctx.principal, request=request, sealer=ctx.sealer
    )


@methods.rpc(scope=Scope.READ)
async def GetExtensions(ctx: Context, request: ListRequest) -> ExtensionList:
    """The tenant's extensions, newest first."""
    items, paging = await service.list_extensions(
        ctx.read,
        principal=ctx.principal,
        paging=request.paging,
        secret=ctx.cursor_secret,
        sealer=ctx.sealer,
    )
    return ExtensionList(extensions=items, paging=paging)


@methods.rpc(scope=Scope.ADMIN, write=True)
async def AssignUserToExtension(ctx: Context, request: AssignUserRequest) -> ExtensionRead:
    """Make a user the holder of an extension."""
    return await service.update_extension_user(
        await ctx.write(),
        principal=ctx.principal,
        extension_id=request.extension_id,
        user_id=request.user_id,
        sealer=ctx.sealer,
    )


@methods.rpc(scope=Scope.ADMIN, write=True)
async def RemoveUserOfExtension(ctx: Context, request: RemoveUserRequest) -> ExtensionRead:
    """Leave an extension without a user."""
    return await service.update_extension_user(
        await ctx.write(),
        principal=ctx.principal,
        extension_id=request.extension_id,
        user_id=None,
        sealer=ctx.sealer,
    )
