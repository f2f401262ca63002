"""Exports of call logs as CSV or JSON lines: the options, the columns, and the formats, written
chunk by chunk as the chunks are read (``service.export_chunk``)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import AsyncIterator, Callable
from functools import lru_cache
from typing import Any, Literal

import msgspec

from callhistory.calllogs.schemas import CallLogFilter
from callhistory.kit.errors import InvalidArgument, decode_error
from callhistory.kit.schemas import Request as RequestBase

CHUNK = 1000
COLUMNS = (
    "id",
    "started_at",
    "ended_at",
    "direction",
    "call_state",
    "call_status",
    "caller",
    "callee",
    "duration",
    "answered_by",
    "extension_id",
    "user_id",
    "hotline_id",
    "contact_id",
    "external_id",
    "external_session_id",
    "recording_urls",
    "note",
    "created_at",
    "updated_at",
)


class ExportRequest(RequestBase):
    filter: CallLogFilter | None = None
    times: Literal["local", "utc"] = "local"
    bom: bool = False


class _Target(msgspec.Struct):
    status: str = ""
    target_number: str = ""


class _Call(msgspec.Struct):
    """The fields of a stored document a CSV row shows (the rest are skipped unread)."""

    id: str
    started_at: str | None
    ended_at: str | None
    direction: str
    call_state: str
    call_status: str
    caller: str
    callee: str
    duration: int
    extension_id: str
    user_id: str
    hotline_id: str
    contact_id: str
    external_id: str
    external_session_id: str
    recording_urls: list[str]
    note: str
    created_at: str | None
    updated_at: str | None
    call_targets: list[_Target]


_calls = msgspec.json.Decoder(list[_Call])
_request = msgspec.json.Decoder(ExportRequest)
_LISTS = ("extension_ids", "hotline_ids")
_BOOLEANS = {"true": True, "1": True, "false": False, "0": False}


async def jsonl(chunks: AsyncIterator[list[bytes]]) -> AsyncIterator[bytes]:
    """One stored document per line: the ListCallLogs shape, times in UTC."""
    async for docs in chunks:
        yield b"\n".join(docs) + b"\n"


async def csv_rows(
    chunks: AsyncIterator[list[bytes]], local: dt.tzinfo | None, bom: bool
) -> AsyncIterator[bytes]:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    head = ("\ufeff" if bom else "") + buffer.getvalue()
    yield head.encode()
    when = _local_time(local) if local is not None else _utc_time
    rows: list[tuple[object, ...]] = []
    async for docs in chunks:
        buffer.seek(0)
        buffer.truncate()
        rows.clear()
        for call in _calls.decode(b"[" + b",".join(docs) + b"]"):
            answered = ""
            for target in call.call_targets:
                if target.status == "answered":
                    answered = target.target_number
                    break
            rows.append(
                (
                    call.id,
                    when(call.started_at),
                    when(call.ended_at),
                    call.direction,
                    call.call_state,
                    call.call_status,
                    call.caller,
                    call.callee,
                    call.duration,
                    answered,
                    call.extension_id,
                    call.user_id,
                    call.hotline_id,
                    call.contact_id,
                    call.external_id,
                    call.external_session_id,
                    " ".join(call.recording_urls),
                    call.note,
                    when(call.created_at),
                    when(call.updated_at),
                )
            )
        writer.writerows(rows)
        yield buffer.getvalue().encode()


def _utc_time(text: str | None) -> str:
    return text or ""


def _local_time(local: dt.tzinfo) -> Callable[[str | None], str]:
    """Stored UTC times (RFC 3339) as the tenant's wall-clock time, ``YYYY-MM-DD HH:MM:SS``
    (spreadsheets read it as a date): converted once per hour of UTC and cached, since a whole
    tenant's export formats millions of times."""

    @lru_cache(maxsize=65_536)
    def offset(hour: int) -> int:
        at = dt.datetime.fromtimestamp(hour * 3600, tz=local).utcoffset()
        return int(at.total_seconds()) if at is not None else 0

    @lru_cache(maxsize=65_536)
    def hour(head: str) -> str | None:
        """``YYYY-MM-DDTHH`` of UTC as the local ``YYYY-MM-DD HH``; None where the offset is
        not a whole number of hours (then minutes move too)."""
        seconds = _day_seconds(head[:10]) + int(head[11:13]) * 3600
        shift = offset(seconds // 3600)
        if shift % 3600:
            return None
        days, rest = divmod(seconds + shift, 86_400)
        return f"{_day_text(days)} {rest // 3600:02d}"

    def when(text: str | None) -> str:
        if not text:
            return ""
        local_hour = hour(text[:13])
        if local_hour is not None:
            return local_hour + text[13:19]
        seconds = _day_seconds(text[:10]) + int(text[11:13]) * 3600 + int(text[14:16]) * 60
        seconds += int(text[17:19])
        seconds += offset(seconds // 3600)
        days, rest = divmod(seconds, 86_400)
        return f"{_day_text(days)} {rest // 3600:02d}:{rest // 60 % 60:02d}:{rest % 60:02d}"

    return when


_EPOCH = dt.date(1970, 1, 1)


@lru_cache(maxsize=8192)
def _day_seconds(day: str) -> int:
    return (dt.date.fromisoformat(day) - _EPOCH).days * 86_400


@lru_cache(maxsize=8192)
def _day_text(days: int) -> str:
    return (_EPOCH + dt.timedelta(days=days)).isoformat()


def parse_options(body: bytes, query: list[tuple[str, str]]) -> ExportRequest:
    """The export's options from a JSON body or, without one, from query parameters
    (``direction=in&extension_ids=1,2&duration.comparison=greater_than&duration.value=60``)."""
    if body.strip():
        try:
            return _request.decode(body)
        except (msgspec.ValidationError, msgspec.DecodeError, UnicodeDecodeError) as exc:
            raise decode_error(exc) from None
    fields: dict[str, Any] = {}
    options: dict[str, Any] = {}
    for name, value in query:
        if name == "bom":
            if value.lower() not in _BOOLEANS:
                raise InvalidArgument(name, "must be true or false")
            options[name] = _BOOLEANS[value.lower()]
        elif name == "times":
            options[name] = value
        elif name.startswith("duration."):
            fields.setdefault("duration", {})[name.removeprefix("duration.")] = value
        elif name in _LISTS:
            fields[name] = [part for part in value.split(",") if part]
        elif name in CallLogFilter.__struct_fields__:
            fields[name] = value
        else:
            raise InvalidArgument(name, "is not an export option or a ListCallLogs filter")
    try:
        return msgspec.convert({"filter": fields, **options}, ExportRequest, strict=False)
    except msgspec.ValidationError as exc:
        raise decode_error(exc) from None
