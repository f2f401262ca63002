"""Directory requests and records, in the shapes eTelecom documents (CONTRACT.md §5)."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from callhistory.kit.schemas import Id, Paging, PagingRead, Request, Time

Name = Annotated[str, Meta(min_length=1, max_length=200)]
Network = Literal["unknown", "mobifone", "vinaphone", "viettel", "other"]
Number = Annotated[str, Meta(min_length=1, max_length=32, pattern=r"^\+?[0-9 .()-]+$")]


class ListRequest(Request):
    paging: Paging | None = None


class HotlineCreate(Request):
    hotline: Number
    name: Annotated[str, Meta(max_length=200)] = ""
    description: Annotated[str, Meta(max_length=1000)] = ""
    network: Network = "unknown"
    is_free_charge: bool = False


class HotlineRead(msgspec.Struct, kw_only=True):
    id: str
    hotline: str
    name: str
    description: str
    network: Network
    is_free_charge: bool
    status: Literal["Z", "P", "N"]
    created_at: Time
    updated_at: Time


class HotlineList(msgspec.Struct, kw_only=True):
    hotlines: list[HotlineRead]
    paging: PagingRead


class DepartmentCreate(Request):
    name: Name


class DepartmentRead(msgspec.Struct, kw_only=True):
    id: str
    name: str
    created_at: Time
    updated_at: Time


class DepartmentList(msgspec.Struct, kw_only=True):
    departments: list[DepartmentRead]
    paging: PagingRead


class UserCreate(Request):
    full_name: Name
    email: Annotated[str, Meta(max_length=254)] = ""
    phone: Annotated[str, Meta(max_length=32)] = ""
    department_id: Id = ""


class UserRead(msgspec.Struct, kw_only=True):
    id: str
    full_name: str
    email: str
    phone: str
    department_id: str
    created_at: Time
    updated_at: Time


class UserList(msgspec.Struct, kw_only=True):
    users: list[UserRead]
    paging: PagingRead


class ExtensionCreate(Request):
    extension_number: Annotated[
        int | str, Meta(description="the extension's number (digits, as an int or a string)")
    ]
    hotline_id: Id = ""
    user_id: Id = ""


class ExtensionRead(msgspec.Struct, kw_only=True):
    id: str
    extension_number: str
    extension_password: str
    hotline_id: str
    user_id: str
    tenant_id: str
    tenant_domain: str
    account_id: str
    subscription_id: str
    state: Literal["Z", "P", "N"]
    created_at: Time
    updated_at: Time
    expires_at: Time


class ExtensionList(msgspec.Struct, kw_only=True):
    extensions: list[ExtensionRead]
    paging: PagingRead


class AssignUserRequest(Request):
    extension_id: Id
    user_id: Id


class RemoveUserRequest(Request):
    extension_id: Id
