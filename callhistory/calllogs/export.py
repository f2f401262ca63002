"""Exports of call logs as CSV or JSON lines: the options, the columns, and the formats, written
chunk by chunk as the chunks are read (``service.export_chunk``)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import AsyncIterator, Callable
from typing import Any, Literal

import msgspec

from callhistory.calllogs.schemas import CallLogFilter
from callhistory.kit.errors import InvalidArgument, decode_error
from callhistory.kit.schemas import Request as RequestBase
from callhistory.kit.times import by_local_hour

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
    """Stored UTC times as the tenant's wall-clock time, ``YYYY-MM-DD HH:MM:SS`` (spreadsheets
    read it as a date)."""
    hour = by_local_hour(local, lambda at: f"{at:%Y-%m-%d %H}")

    def when(text: str | None) -> str:
        if not text:
            return ""
        prefix = hour(text)
        if prefix is not None:
            return prefix + text[13:19]
        return f"{dt.datetime.fromisoformat(text).astimezone(local):%Y-%m-%d %H:%M:%S}"

    return when


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
