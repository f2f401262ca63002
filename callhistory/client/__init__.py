"""The Python client: ``for call in Client(url, key).list_call_logs(direction="in"): ...``.

Sync (:class:`Client`) and async (:class:`AsyncClient`) on httpx. Results are the server's own
msgspec Structs; errors are :class:`CallHistoryError` carrying ``code``, ``msg`` and ``meta``.
Calls that are safe to repeat (reads, idempotent ingest) are retried with exponential backoff on
``unavailable``, ``resource_exhausted`` (honouring ``Retry-After``) and connection failures.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from typing import Any, TypeVar

import httpx
import msgspec

from callhistory.calllogs.schemas import CallLog, ListCallLogsResponse
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
from callhistory.ingest.schemas import IngestCallLog, IngestCallLogsResponse
from callhistory.schemas import ErrorEnvelope

__all__ = ["AsyncClient", "CallHistoryError", "Client"]

T = TypeVar("T")
_RETRY_CODES = frozenset({"unavailable", "resource_exhausted"})
_SAFE_TO_REPEAT = frozenset(
    {"ListCallLogs", "GetHotlines", "GetDepartments", "GetUsers", "GetExtensions", "IngestCallLogs"}
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

    def __init__(self, code: str, msg: str, meta: dict[str, str], status: int = 0) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg
        self.meta = meta
        self.status = status


def _filters(filters: dict[str, Any]) -> dict[str, Any]:
    """Keyword filters as the request's ``filter``; ``None`` values are left out."""
    return {name: value for name, value in filters.items() if value is not None}


def _error(response: httpx.Response) -> CallHistoryError:
    try:
        envelope = _envelope.decode(response.content)
        return CallHistoryError(envelope.code, envelope.msg, envelope.meta, response.status_code)
    except msgspec.DecodeError:
        return CallHistoryError("internal", response.text[:200], {}, response.status_code)


class _Base:
    def __init__(
        self, *, api_key: str, prefix: str, retries: int, backoff: float, max_backoff: float
    ) -> None:
        self._headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        self._prefix = prefix
        self._retries = retries
        self._backoff = backoff
        self._max_backoff = max_backoff

    def _path(self, method: str) -> str:
        prefix = "pbx" if method == "IngestCallLogs" else self._prefix
        return f"/v1/{prefix}.Etelecom/{method}"

    def _delay(self, attempt: int, response: httpx.Response | None) -> float:
        after = response.headers.get("retry-after", "") if response is not None else ""
        if after.isdigit():
            return min(float(after), self._max_backoff)
        return min(self._backoff * float(2**attempt), self._max_backoff)

    def _outcome(
        self, method: str, attempt: int, response: httpx.Response | None, failure: Exception | None
    ) -> tuple[bool, CallHistoryError | None]:
        """(retry?, error to raise if not)."""
        if response is not None and response.status_code == 200:
            return False, None
        error = (
            _error(response)
            if response is not None
            else CallHistoryError("unavailable", f"cannot reach the server: {failure}", {})
        )
        retry = method in _SAFE_TO_REPEAT and error.code in _RETRY_CODES and attempt < self._retries
        return retry, error


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
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            api_key=api_key,
            prefix=prefix,
            retries=retries,
            backoff=backoff,
            max_backoff=max_backoff,
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
            retry, error = self._outcome(method, attempt, response, failure)
            if error is None and response is not None:
                return msgspec.json.decode(response.content, type=result)
            if not retry:
                assert error is not None
                raise error
            time.sleep(self._delay(attempt, response))
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
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        super().__init__(
            api_key=api_key,
            prefix=prefix,
            retries=retries,
            backoff=backoff,
            max_backoff=max_backoff,
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
            retry, error = self._outcome(method, attempt, response, failure)
            if error is None and response is not None:
                return msgspec.json.decode(response.content, type=result)
            if not retry:
                assert error is not None
                raise error
            await asyncio.sleep(self._delay(attempt, response))
            attempt += 1

    async def list_call_logs(
        self, *, limit: int = 100, sort: str = "", **filters: Any
    ) -> AsyncIterator[CallLog]:
        paging: dict[str, Any] = {"limit": limit, **({"sort": sort} if sort else {})}
        while True:
            page = await self.call(
                "ListCallLogs",
                {"filter": _filters(filters), "paging": paging},
                ListCallLogsResponse,
            )
            for call in page.call_logs:
                yield call
            if not page.paging.next:
                return
            paging = {**paging, "after": page.paging.next}

    async def ingest_call_logs(
        self, items: Sequence[IngestCallLog | dict[str, Any]]
    ) -> IngestCallLogsResponse:
        return await self.call("IngestCallLogs", {"call_logs": list(items)}, IngestCallLogsResponse)
