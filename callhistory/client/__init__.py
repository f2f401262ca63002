"""The Python client: ``for call in Client(url, key).list_call_logs(direction="in"): ...``.

Sync (:class:`Client`) and async (:class:`AsyncClient`) on httpx, with the same methods.
Results are the server's own msgspec Structs; errors are :class:`CallHistoryError` (one
subclass per code, e.g. :class:`InvalidArgumentError`) carrying ``code``, ``msg`` and ``meta``.
Calls that are safe to repeat (reads, idempotent ingest) are retried on ``unavailable`` (also a
proxy's non-JSON 502, 503 or 504), ``resource_exhausted`` (honouring ``Retry-After``) and
connection failures: exponential backoff with full jitter, within an overall ``deadline``.
Needs only httpx and msgspec (``pip install callhistory``; the server is ``callhistory[server]``).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, BinaryIO, TypeVar
from urllib.parse import quote

import httpx
import msgspec

from callhistory.calllogs.schemas import (
    CallLog,
    CallLogChange,
    GetCallStatsResponse,
    ListCallLogChangesResponse,
    ListCallLogsResponse,
    ListMissedCallsResponse,
    MissedCall,
)
from callhistory.directory.schemas import (
    DepartmentList,
    DepartmentRead,
    ExtensionList,
    ExtensionRead,
    HotlineList,
    HotlineRead,
    UserList,
    UserRead,
)
from callhistory.ingest.schemas import (
    DeleteCallLogsResponse,
    IngestCallLog,
    IngestCallLogsResponse,
)
from callhistory.kit.schemas import ErrorEnvelope
from callhistory.recordings.schemas import RecordingList, RecordingRead

__all__ = [
    "AlreadyExistsError",
    "AsyncChangeFeed",
    "AsyncClient",
    "BadRouteError",
    "CallHistoryError",
    "ChangeFeed",
    "Client",
    "InternalError",
    "InvalidArgumentError",
    "MalformedError",
    "NotFoundError",
    "PermissionDeniedError",
    "ResourceExhaustedError",
    "UnauthenticatedError",
    "UnavailableError",
]

T = TypeVar("T")
_RETRY_CODES = frozenset({"unavailable", "resource_exhausted"})
_SAFE_TO_REPEAT = frozenset(
    {
        "ListCallLogs",
        "GetCallLog",
        "GetCallStats",
        "ListMissedCalls",
        "ListCallLogChanges",
        "DeleteCallLogs",
        "GetHotlines",
        "GetDepartments",
        "GetUsers",
        "GetExtensions",
        "IngestCallLogs",
    }
)
_LISTS: dict[str, tuple[type[Any], str]] = {
    "GetHotlines": (HotlineList, "hotlines"),
    "GetDepartments": (DepartmentList, "departments"),
    "GetUsers": (UserList, "users"),
    "GetExtensions": (ExtensionList, "extensions"),
}
_envelope = msgspec.json.Decoder(ErrorEnvelope)


class CallHistoryError(Exception):
    """An error answered by the API (or a transport failure, code ``unavailable``)."""

    code = ""

    def __init__(self, code: str, msg: str, meta: dict[str, str], status: int = 0) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.meta = meta
        self.status = status


class InvalidArgumentError(CallHistoryError):
    """A field is wrong; ``meta["field"]`` names it."""


class MalformedError(CallHistoryError):
    """The body was not a JSON object."""


class UnauthenticatedError(CallHistoryError):
    """No, unknown or revoked key."""


class PermissionDeniedError(CallHistoryError):
    """The key lacks the scope, or the tenant is suspended."""


class NotFoundError(CallHistoryError):
    """The named record is not in the key's tenant."""


class AlreadyExistsError(CallHistoryError):
    """A duplicate (an extension number)."""


class BadRouteError(CallHistoryError):
    """No such method."""


class ResourceExhaustedError(CallHistoryError):
    """Rate limited, or the body is too large."""


class InternalError(CallHistoryError):
    """A fault of the server."""


class UnavailableError(CallHistoryError):
    """The server or its store cannot answer now; safe to retry."""


_ERRORS: dict[str, type[CallHistoryError]] = {
    "invalid_argument": InvalidArgumentError,
    "malformed": MalformedError,
    "unauthenticated": UnauthenticatedError,
    "permission_denied": PermissionDeniedError,
    "not_found": NotFoundError,
    "already_exists": AlreadyExistsError,
    "bad_route": BadRouteError,
    "resource_exhausted": ResourceExhaustedError,
    "internal": InternalError,
    "unavailable": UnavailableError,
}
# What a proxy or load balancer in front answers, in its own format, for a server that is down.
_GATEWAY_STATUSES = {
    502: "unavailable",
    503: "unavailable",
    504: "unavailable",
    429: "resource_exhausted",
}


def _make_error(code: str, msg: str, meta: dict[str, str], status: int) -> CallHistoryError:
    return _ERRORS.get(code, CallHistoryError)(code, msg, meta, status)


def _filters(filters: dict[str, Any]) -> dict[str, Any]:
    """Keyword filters as the request's ``filter``; ``None`` values are left out."""
    return {name: value for name, value in filters.items() if value is not None}


def _error(response: httpx.Response) -> CallHistoryError:
    try:
        envelope = _envelope.decode(response.content)
        return _make_error(envelope.code, envelope.msg, envelope.meta, response.status_code)
    except msgspec.DecodeError:
        code = _GATEWAY_STATUSES.get(response.status_code, "internal")
        text = f"HTTP {response.status_code}: {response.text[:200]}"
        return _make_error(code, text, {}, response.status_code)


_CHUNK = 256 * 1024


def _sha256(path: str | os.PathLike[str]) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _chunks(file: BinaryIO) -> Iterator[bytes]:
    while chunk := file.read(_CHUNK):
        yield chunk


def _recording_path(name: str) -> str:
    """``PUT /v1/recordings/{name or path}``, the path's parts quoted."""
    parts = [quote(part, safe="") for part in name.replace("\\", "/").split("/") if part]
    return "/v1/recordings/" + "/".join(parts)


class _Base:
    def __init__(
        self,
        *,
        api_key: str,
        prefix: str,
        retries: int,
        backoff: float,
        max_backoff: float,
        deadline: float,
    ) -> None:
        self._headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        self._prefix = prefix
        self._retries = retries
        self._backoff = backoff
        self._max_backoff = max_backoff
        self._deadline = deadline

    def _path(self, method: str) -> str:
        prefix = "pbx" if method == "IngestCallLogs" else self._prefix
        return f"/v1/{prefix}.Etelecom/{method}"

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        """The server's Retry-After, else full jitter: uniform in [0, backoff * 2^attempt]."""
        after = response.headers.get("retry-after", "") if response is not None else ""
        if after.isdigit():
            return min(float(after), self._max_backoff)
        return random.uniform(0, min(self._backoff * float(2**attempt), self._max_backoff))

    def _outcome(
        self,
        method: str,
        attempt: int,
        response: httpx.Response | None,
        failure: Exception | None,
        started: float,
    ) -> tuple[float | None, CallHistoryError | None]:
        """(seconds to wait before retrying, or None; the error to raise if not retrying)."""
        if response is not None and response.status_code == 200:
            return None, None
        error = (
            _error(response)
            if response is not None
            else UnavailableError("unavailable", f"cannot reach the server: {failure}", {})
        )
        if method not in _SAFE_TO_REPEAT or error.code not in _RETRY_CODES:
            return None, error
        delay = self._delay(attempt, response)
        if attempt >= self._retries or time.monotonic() + delay > started + self._deadline:
            return None, error
        return delay, error


class Client(_Base):
    """A synchronous client. Use as a context manager, or call :meth:`close`."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        prefix: str = "shop",
        timeout: float = 30.0,
        retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        deadline: float = 120.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            api_key=api_key,
            prefix=prefix,
            retries=retries,
            backoff=backoff,
            max_backoff=max_backoff,
            deadline=deadline,
        )
        self._http = httpx.Client(base_url=base_url, timeout=timeout, transport=transport)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def call(self, method: str, body: Any, result: type[T]) -> T:
        """One RPC call: ``body`` (a Struct or dict) in, ``result`` out."""
        content = msgspec.json.encode(body)
        started = time.monotonic()
        attempt = 0
        while True:
            response: httpx.Response | None = None
            failure: Exception | None = None
            try:
                response = self._http.post(
                    self._path(method), content=content, headers=self._headers
                )
            except httpx.TransportError as exc:
                failure = exc
            delay, error = self._outcome(method, attempt, response, failure, started)
            if error is None and response is not None:
                return msgspec.json.decode(response.content, type=result)
            if delay is None:
                assert error is not None
                raise error
            time.sleep(delay)
            attempt += 1

    def call_log_pages(
        self, *, limit: int = 100, sort: str = "", **filters: Any
    ) -> Iterator[ListCallLogsResponse]:
        """Every page of ListCallLogs, following ``next``."""
        paging: dict[str, Any] = {"limit": limit, **({"sort": sort} if sort else {})}
        while True:
            page = self.call(
                "ListCallLogs",
                {"filter": _filters(filters), "paging": paging},
                ListCallLogsResponse,
            )
            yield page
            if not page.paging.next:
                return
            paging = {**paging, "after": page.paging.next}

    def list_call_logs(
        self, *, limit: int = 100, sort: str = "", **filters: Any
    ) -> Iterator[CallLog]:
        """Every matching call, newest first by default; pages are fetched as you iterate.

        Filters are ListCallLogs' own: ``date_from``, ``date_to``, ``call_state``,
        ``direction``, ``duration={"comparison": ..., "value": ...}``, ``call_number``,
        ``extension_ids``, ``hotline_ids``, ``user_id``, ``department_id``, ``external_id``,
        ``external_session_id``.
        """
        for page in self.call_log_pages(limit=limit, sort=sort, **filters):
            yield from page.call_logs

    def ingest_call_logs(
        self, items: Sequence[IngestCallLog | dict[str, Any]]
    ) -> IngestCallLogsResponse:
        """Store up to 1000 calls (idempotent on ``source_id``)."""
        return self.call("IngestCallLogs", {"call_logs": list(items)}, IngestCallLogsResponse)

    def get_call_log(self, **name: Any) -> CallLog:
        """One call log by exactly one of ``id``, ``source_id``, ``external_id``,
        ``external_session_id``; :class:`NotFoundError` if the tenant has none."""
        return self.call("GetCallLog", name, CallLog)

    def get_call_stats(self, group_by: Sequence[str], **filters: Any) -> GetCallStatsResponse:
        """Calls counted by one or two of day, hour, weekday, extension, user, department,
        hotline, direction (ListCallLogs' filters as keywords; docs/stats.md)."""
        body = {"group_by": list(group_by), "filter": _filters(filters)}
        return self.call("GetCallStats", body, GetCallStatsResponse)

    def missed_calls(
        self, *, window_hours: int = 24, limit: int = 100, **filters: Any
    ) -> Iterator[MissedCall]:
        """Customers whose calls were missed and not returned, the last try first, every page
        (filters: ``date_from``, ``date_to``, ``hotline_ids``; docs/stats.md)."""
        paging: dict[str, Any] = {"limit": limit}
        while True:
            body = {"filter": _filters(filters), "window_hours": window_hours, "paging": paging}
            page = self.call("ListMissedCalls", body, ListMissedCallsResponse)
            yield from page.missed_calls
            if not page.paging.next:
                return
            paging = {**paging, "after": page.paging.next}

    def changes(self, since: str = "", *, limit: int = 1000) -> ChangeFeed:
        """What changed since the token ``since`` ("" = everything), in commit order: iterate
        until caught up, then store ``.token`` and come back with it (see docs/client.md)."""
        return ChangeFeed(self, since, limit)

    def delete_call_logs(
        self, *, ids: Sequence[str] = (), number: str = "", dry_run: bool = False
    ) -> DeleteCallLogsResponse:
        """Erase calls by ids, or every call of a customer's number (admin key)."""
        body = {"ids": list(ids), "number": number, "dry_run": dry_run}
        return self.call("DeleteCallLogs", body, DeleteCallLogsResponse)

    def export(
        self,
        path: str | os.PathLike[str],
        *,
        format: str = "csv",
        times: str = "local",
        bom: bool = False,
        **filters: Any,
    ) -> int:
        """Stream GET /v1/export/call_logs.{csv,jsonl} into a file (ListCallLogs' filters as
        keywords); how many calls it holds. Memory stays flat at any size."""
        body = {"filter": _filters(filters), "times": times, "bom": bom}
        calls = 0
        with (
            self._http.stream(
                "POST", f"/v1/export/call_logs.{format}", json=body, headers=self._headers
            ) as response,
            open(path, "wb") as out,
        ):
            if response.status_code != 200:
                response.read()
                raise _error(response)
            for chunk in response.iter_bytes():
                out.write(chunk)
                calls += chunk.count(b"\n")
        return calls - (format == "csv")

    def call_recordings(self, call_id: str) -> list[RecordingRead]:
        """A call's uploaded recordings, each with a signed ``url`` that plays it for a while."""
        return self.call("ListCallRecordings", {"call_id": call_id}, RecordingList).recordings

    def upload_recording(
        self,
        path: str | os.PathLike[str],
        *,
        call_id: str = "",
        source_id: str = "",
        name: str = "",
    ) -> RecordingRead:
        """Upload an audio file for a call (by ``call_id`` or the PBX's ``source_id``), streamed
        with its SHA-256; ``name`` is the name or path the CDR gave it (default: the file's
        name). Sending the same file again changes nothing. An ingest key."""
        checksum = _sha256(path)
        query = {"call_id": call_id} if call_id else {"source_id": source_id}
        with open(path, "rb") as body:
            response = self._http.put(
                _recording_path(name or os.fspath(path)),
                params=query,
                content=_chunks(body),
                headers={**self._headers, "X-Checksum-Sha256": checksum},
            )
        if response.status_code != 200:
            raise _error(response)
        return msgspec.json.decode(response.content, type=RecordingRead)

    def download_recording(
        self, recording: RecordingRead | str, path: str | os.PathLike[str]
    ) -> int:
        """Save a recording (or the signed link to one) into a file, streamed; its size."""
        url = recording if isinstance(recording, str) else recording.url
        size = 0
        with self._http.stream("GET", url) as response, open(path, "wb") as out:
            if response.status_code != 200:
                response.read()
                raise _error(response)
            for chunk in response.iter_bytes():
                out.write(chunk)
                size += len(chunk)
        return size

    def _records(self, method: str) -> Iterator[Any]:
        result, field = _LISTS[method]
        paging: dict[str, Any] = {"limit": 1000}
        while True:
            page = self.call(method, {"paging": paging}, result)
            yield from getattr(page, field)
            if not page.paging.next:
                return
            paging = {**paging, "after": page.paging.next}

    def hotlines(self) -> Iterator[HotlineRead]:
        return self._records("GetHotlines")

    def departments(self) -> Iterator[DepartmentRead]:
        return self._records("GetDepartments")

    def users(self) -> Iterator[UserRead]:
        return self._records("GetUsers")

    def extensions(self) -> Iterator[ExtensionRead]:
        return self._records("GetExtensions")


class AsyncClient(_Base):
    """The asyncio client: the same methods, awaited; listings are async iterators."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        prefix: str = "shop",
        timeout: float = 30.0,
        retries: int = 4,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        deadline: float = 120.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            api_key=api_key,
            prefix=prefix,
            retries=retries,
            backoff=backoff,
            max_backoff=max_backoff,
            deadline=deadline,
        )
        self._http = httpx.AsyncClient(base_url=base_url, timeout=timeout, transport=transport)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._http.aclose()

    async def call(self, method: str, body: Any, result: type[T]) -> T:
        content = msgspec.json.encode(body)
        started = time.monotonic()
        attempt = 0
        while True:
            response: httpx.Response | None = None
            failure: Exception | None = None
            try:
                response = await self._http.post(
                    self._path(method), content=content, headers=self._headers
                )
            except httpx.TransportError as exc:
                failure = exc
            delay, error = self._outcome(method, attempt, response, failure, started)
            if error is None and response is not None:
                return msgspec.json.decode(response.content, type=result)
            if delay is None:
                assert error is not None
                raise error
            await asyncio.sleep(delay)
            attempt += 1

    async def call_log_pages(
        self, *, limit: int = 100, sort: str = "", **filters: Any
    ) -> AsyncIterator[ListCallLogsResponse]:
        """Every page of ListCallLogs, following ``next``."""
        paging: dict[str, Any] = {"limit": limit, **({"sort": sort} if sort else {})}
        while True:
            page = await self.call(
                "ListCallLogs",
                {"filter": _filters(filters), "paging": paging},
                ListCallLogsResponse,
            )
            yield page
            if not page.paging.next:
                return
            paging = {**paging, "after": page.paging.next}

    async def list_call_logs(
        self, *, limit: int = 100, sort: str = "", **filters: Any
    ) -> AsyncIterator[CallLog]:
        """Every matching call (see :meth:`Client.list_call_logs`)."""
        async for page in self.call_log_pages(limit=limit, sort=sort, **filters):
            for call in page.call_logs:
                yield call

    async def ingest_call_logs(
        self, items: Sequence[IngestCallLog | dict[str, Any]]
    ) -> IngestCallLogsResponse:
        """Store up to 1000 calls (idempotent on ``source_id``)."""
        return await self.call("IngestCallLogs", {"call_logs": list(items)}, IngestCallLogsResponse)

    async def get_call_log(self, **name: Any) -> CallLog:
        """One call log (see :meth:`Client.get_call_log`)."""
        return await self.call("GetCallLog", name, CallLog)

    async def get_call_stats(self, group_by: Sequence[str], **filters: Any) -> GetCallStatsResponse:
        """Calls counted into buckets (see :meth:`Client.get_call_stats`)."""
        body = {"group_by": list(group_by), "filter": _filters(filters)}
        return await self.call("GetCallStats", body, GetCallStatsResponse)

    async def missed_calls(
        self, *, window_hours: int = 24, limit: int = 100, **filters: Any
    ) -> AsyncIterator[MissedCall]:
        """Missed calls not returned (see :meth:`Client.missed_calls`)."""
        paging: dict[str, Any] = {"limit": limit}
        while True:
            body = {"filter": _filters(filters), "window_hours": window_hours, "paging": paging}
            page = await self.call("ListMissedCalls", body, ListMissedCallsResponse)
            for entry in page.missed_calls:
                yield entry
            if not page.paging.next:
                return
            paging = {**paging, "after": page.paging.next}

    def changes(self, since: str = "", *, limit: int = 1000) -> AsyncChangeFeed:
        """What changed since ``since`` (see :meth:`Client.changes`)."""
        return AsyncChangeFeed(self, since, limit)

    async def delete_call_logs(
        self, *, ids: Sequence[str] = (), number: str = "", dry_run: bool = False
    ) -> DeleteCallLogsResponse:
        """Erase calls by ids, or every call of a customer's number (admin key)."""
        body = {"ids": list(ids), "number": number, "dry_run": dry_run}
        return await self.call("DeleteCallLogs", body, DeleteCallLogsResponse)

    async def export(
        self,
        path: str | os.PathLike[str],
        *,
        format: str = "csv",
        times: str = "local",
        bom: bool = False,
        **filters: Any,
    ) -> int:
        """Stream an export into a file (see :meth:`Client.export`)."""
        body = {"filter": _filters(filters), "times": times, "bom": bom}
        calls = 0
        async with self._http.stream(
            "POST", f"/v1/export/call_logs.{format}", json=body, headers=self._headers
        ) as response:
            if response.status_code != 200:
                await response.aread()
                raise _error(response)
            with open(path, "wb") as out:  # noqa: ASYNC230 - a local file, written chunk by chunk
                async for chunk in response.aiter_bytes():
                    out.write(chunk)
                    calls += chunk.count(b"\n")
        return calls - (format == "csv")

    async def _records(self, method: str) -> AsyncIterator[Any]:
        result, field = _LISTS[method]
        paging: dict[str, Any] = {"limit": 1000}
        while True:
            page = await self.call(method, {"paging": paging}, result)
            for record in getattr(page, field):
                yield record
            if not page.paging.next:
                return
            paging = {**paging, "after": page.paging.next}

    async def call_recordings(self, call_id: str) -> list[RecordingRead]:
        """A call's uploaded recordings (see :meth:`Client.call_recordings`)."""
        found = await self.call("ListCallRecordings", {"call_id": call_id}, RecordingList)
        return found.recordings

    async def upload_recording(
        self,
        path: str | os.PathLike[str],
        *,
        call_id: str = "",
        source_id: str = "",
        name: str = "",
    ) -> RecordingRead:
        """Upload an audio file for a call (see :meth:`Client.upload_recording`)."""
        checksum = await asyncio.to_thread(_sha256, path)
        query = {"call_id": call_id} if call_id else {"source_id": source_id}

        async def chunks() -> AsyncIterator[bytes]:
            with open(path, "rb") as body:  # noqa: ASYNC230 - read a chunk at a time
                while chunk := await asyncio.to_thread(body.read, _CHUNK):
                    yield chunk

        response = await self._http.put(
            _recording_path(name or os.fspath(path)),
            params=query,
            content=chunks(),
            headers={**self._headers, "X-Checksum-Sha256": checksum},
        )
        if response.status_code != 200:
            raise _error(response)
        return msgspec.json.decode(response.content, type=RecordingRead)

    async def download_recording(
        self, recording: RecordingRead | str, path: str | os.PathLike[str]
    ) -> int:
        """Save a recording into a file (see :meth:`Client.download_recording`)."""
        url = recording if isinstance(recording, str) else recording.url
        size = 0
        async with self._http.stream("GET", url) as response:
            if response.status_code != 200:
                await response.aread()
                raise _error(response)
            with open(path, "wb") as out:  # noqa: ASYNC230 - a local file, written chunk by chunk
                async for chunk in response.aiter_bytes():
                    out.write(chunk)
                    size += len(chunk)
        return size

    def hotlines(self) -> AsyncIterator[HotlineRead]:
        return self._records("GetHotlines")

    def departments(self) -> AsyncIterator[DepartmentRead]:
        return self._records("GetDepartments")

    def users(self) -> AsyncIterator[UserRead]:
        return self._records("GetUsers")

    def extensions(self) -> AsyncIterator[ExtensionRead]:
        return self._records("GetExtensions")


class ChangeFeed:
    """ListCallLogChanges from a token until caught up. ``token`` moves past a page only once
    every change of it has been yielded: store it after applying them, and a crash in between
    repeats the page (applying a change twice is harmless) instead of losing it."""

    def __init__(self, client: Client, since: str, limit: int) -> None:
        self._client = client
        self._limit = limit
        self.token = since

    def __iter__(self) -> Iterator[CallLogChange]:
        while True:
            body = {"since": self.token, "limit": self._limit}
            page = self._client.call("ListCallLogChanges", body, ListCallLogChangesResponse)
            yield from page.changes
            self.token = page.next
            if not page.changes:
                return


class AsyncChangeFeed:
    """:class:`ChangeFeed` for :class:`AsyncClient`: ``async for change in feed``."""

    def __init__(self, client: AsyncClient, since: str, limit: int) -> None:
        self._client = client
        self._limit = limit
        self.token = since

    async def __aiter__(self) -> AsyncIterator[CallLogChange]:
        while True:
            body = {"since": self.token, "limit": self._limit}
            page = await self._client.call("ListCallLogChanges", body, ListCallLogChangesResponse)
            for change in page.changes:
                yield change
            self.token = page.next
            if not page.changes:
                return
