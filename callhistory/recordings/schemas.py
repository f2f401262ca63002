"""Recordings as the API shows them."""

from __future__ import annotations

import msgspec

from callhistory.kit.schemas import Id, Request, Time


class RecordingRead(msgspec.Struct, kw_only=True):
    id: str
    call_id: str
    name: str  # the file name
    source: str  # the name or path the uploader gave (the PBX's)
    size: int  # bytes
    content_type: str
    sha256: str  # hex
    created_at: Time
    url: str  # a signed link, working until ``url_expires_at``
    url_expires_at: Time


class CallRecordingsRequest(Request):
    call_id: Id


class RecordingList(msgspec.Struct, kw_only=True):
    recordings: list[RecordingRead]
