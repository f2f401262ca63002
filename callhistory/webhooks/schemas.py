"""Webhook requests and records: endpoints, deliveries and their attempts."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from callhistory.kit.schemas import Id, Paging, PagingRead, Request, Time

EventType = Literal["call_log.created", "call_log.updated", "call_log.deleted"]
EVENT_TYPES: tuple[EventType, ...] = ("call_log.created", "call_log.updated", "call_log.deleted")
Url = Annotated[str, Meta(min_length=1, max_length=2048)]
Description = Annotated[str, Meta(max_length=500)]
Events = Annotated[
    list[EventType],
    Meta(max_length=3, description="event types to send; empty or absent = all of them"),
]
DeliveryState = Literal["pending", "succeeded", "failed"]


class EndpointCreate(Request):
    url: Url
    events: Events = []
    description: Description = ""


class EndpointRead(msgspec.Struct, kw_only=True):
    id: str
    url: str
    events: list[EventType]
    description: str
    enabled: bool
    disabled_reason: str  # why the service disabled it ("" when enabled, or by the tenant)
    failures: int  # deliveries failed in a row
    created_at: Time
    updated_at: Time


class EndpointCreated(msgspec.Struct, kw_only=True):
    endpoint: EndpointRead
    secret: str  # shown this once: Standard Webhooks ``whsec_`` signing secret


class EndpointList(msgspec.Struct, kw_only=True):
    endpoints: list[EndpointRead]


class EndpointUpdate(Request):
    id: Id
    url: Url | None = None
    events: Events | None = None
    description: Description | None = None
    enabled: bool | None = None


class EndpointRef(Request):
    id: Id


class SecretRotated(msgspec.Struct, kw_only=True):
    id: str
    secret: str  # the new secret, shown this once
    previous_valid_until: Time  # the old secret signs too until then


class DeliveriesRequest(Request):
    endpoint_id: Id
    state: DeliveryState | Literal[""] = ""
    call_id: Id = ""
    paging: Paging | None = None


class AttemptRead(msgspec.Struct, kw_only=True):
    attempt: int
    at: Time
    succeeded: bool
    response_code: int | None  # null when no response came (timeout, refused, blocked)
    latency_ms: int
    error: str


class DeliveryRead(msgspec.Struct, kw_only=True):
    id: str
    endpoint_id: str
    event_id: str  # the ``webhook-id`` header receivers dedupe by
    event_type: EventType
    call_id: str
    state: DeliveryState
    next_attempt_at: Time  # null unless pending
    created_at: Time
    finished_at: Time
    attempts: list[AttemptRead]


class DeliveryList(msgspec.Struct, kw_only=True):
    deliveries: list[DeliveryRead]
    paging: PagingRead


class DeliveryRef(Request):
    id: Id


class ListEndpointsRequest(Request):
    pass


class Done(msgspec.Struct, kw_only=True):
    ok: bool
