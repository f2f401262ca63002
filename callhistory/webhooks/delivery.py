"""The deliverer: sends due webhook deliveries, records each attempt, retries with backoff.

Every worker of ``serve`` runs one (unless ``CALLHISTORY_DELIVER=false``), and so does
``callhistory deliver``; any number cooperate. A delivery is leased to one worker while it is
sent (claimed with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL, in SQLite's one writer
otherwise); a worker that dies leaves its leases to expire and the deliveries are sent again:
at least once. A call's events go to an endpoint one after another, in order.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import random
import ssl
import time
from collections.abc import Sequence
from importlib.metadata import version as package_version
from typing import NamedTuple
from urllib.parse import urlsplit

import aiohttp
import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from callhistory.db.engine import Database, transaction
from callhistory.kit.config import Settings
from callhistory.kit.sealing import Sealer
from callhistory.kit.times import format_micros, now_micros
from callhistory.recordings import links
from callhistory.recordings import service as recordings
from callhistory.webhooks import repository, signing
from callhistory.webhooks.guard import (
    AllowList,
    Blocked,
    GuardedResolver,
    allow_list,
    check_literal,
)
from callhistory.webhooks.repository import Claimed, Result
from callhistory.webhooks.service import secret_context

logger = logging.getLogger("callhistory.webhooks")
_SECOND = 1_000_000
_MAX_DELAY = 6 * 3600 * _SECOND  # backoff stops growing here
_PURGE_EVERY = 3600.0  # seconds between sweeps of old history
_GATHER_S = 0.005  # after an attempt ends, others that end meanwhile are recorded with it
_DEPTH = 4  # deliveries leased per sending slot (see Deliverer)
_READ_AT_MOST = 64 * 1024  # of a response body: read to keep the connection, then dropped
_encoder = msgspec.json.Encoder()


class Policy(NamedTuple):
    connect_s: float
    timeout_s: float
    retry_for: int  # microseconds from a delivery's first try (or manual retry)
    first_retry: int  # microseconds
    disable_after: int
    concurrency: int
    per_endpoint: int
    poll_s: float
    keep: int  # microseconds of finished deliveries' history
    allow: AllowList

    @classmethod
    def of(cls, settings: Settings) -> Policy:
        return cls(
            connect_s=settings.webhook_connect_timeout_ms / 1000,
            timeout_s=settings.webhook_timeout_ms / 1000,
            retry_for=int(settings.webhook_retry_hours * 3600 * _SECOND),
            first_retry=settings.webhook_first_retry_ms * 1000,
            disable_after=max(1, settings.webhook_disable_after),
            concurrency=max(1, settings.webhook_concurrency),
            per_endpoint=max(1, settings.webhook_endpoint_concurrency),
            poll_s=settings.webhook_poll_ms / 1000,
            keep=settings.webhook_keep_days * 86_400 * _SECOND,
            allow=allow_list(settings.webhook_allow),
        )

    @property
    def lease(self) -> int:
        """How long a claimed delivery is this worker's: past the longest wait in its queue
        (``_DEPTH`` attempts before it, each at most ``timeout_s``) and its own attempt."""
        return int(((_DEPTH + 1) * self.timeout_s + 5) * _SECOND)


class Outcome(NamedTuple):
    code: int | None
    error: str
    latency_ms: int
    retry_after: int | None = None  # microseconds, from a 429's or 503's Retry-After

    @property
    def ok(self) -> bool:
        return self.code is not None and 200 <= self.code < 300

    @property
    def final(self) -> bool:
        """A refusal retrying will not change: a 4xx other than 408 and 429."""
        return self.code is not None and 400 <= self.code < 500 and self.code not in (408, 429)


def backoff(attempt: int, first: int) -> int:
    """Microseconds to wait after the ``attempt``-th failure: doubling from ``first``, at most
    six hours, each with ±20% jitter so a recovering receiver is not hit by a wave."""
    delay = min(first * 2 ** min(attempt - 1, 40), _MAX_DELAY)
    return int(delay * random.uniform(0.8, 1.2))


def decide(claimed: Claimed, outcome: Outcome, *, now: int, policy: Policy) -> Result:
    attempt = claimed.attempts + 1
    state, next_at, error = "pending", now, outcome.error
    if outcome.ok:
        state = "succeeded"
    elif outcome.final:
        state = "failed"
    else:
        delay = backoff(attempt, policy.first_retry)
        if outcome.retry_after is not None:
            delay = max(delay, outcome.retry_after)
        next_at = now + delay
        if next_at > claimed.retry_from + policy.retry_for:
            state = "failed"
            hours = policy.retry_for / 3600 / _SECOND
            error = f"{error}; given up after {attempt} attempts over {hours:g} h"
    return Result(
        tenant_id=claimed.tenant_id,
        delivery_id=claimed.id,
        endpoint_id=claimed.endpoint_id,
        attempt=attempt,
        at=now,
        code=outcome.code,
        latency_ms=outcome.latency_ms,
        error=error,
        state=state,
        next_at=next_at,
        failures_before=claimed.failures,
    )


def _retry_after(value: str | None) -> int | None:
    if not value:
        return None
    if value.strip().isdigit():
        return int(value.strip()) * _SECOND
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0, int(when.timestamp() * _SECOND) - now_micros())


def body_of(claimed: Claimed) -> bytes:
    """The payload: event type, id, time, and the call log (or its id, for a deletion)."""
    return _encoder.encode(
        {
            "type": claimed.event_type,
            "id": str(claimed.event_id),
            "timestamp": format_micros(claimed.occurred_at),
            "data": msgspec.Raw(claimed.data.encode()),
        }
    )


class Sender:
    """One aiohttp session for every endpoint; connections go only where the guard allows."""

    def __init__(self, policy: Policy) -> None:
        self._policy = policy
        self._agent = f"callhistory-webhooks/{package_version('callhistory')}"
        self._timeout = aiohttp.ClientTimeout(total=policy.timeout_s, sock_connect=policy.connect_s)
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        # Made on first use: aiohttp binds a session to the running loop.
        if self._session is None:
            connector = aiohttp.TCPConnector(
                limit=self._policy.concurrency,
                ssl=ssl.create_default_context(),
                resolver=GuardedResolver(self._policy.allow),
                keepalive_timeout=30.0,
            )
            self._session = aiohttp.ClientSession(
                connector=connector, timeout=self._timeout, trust_env=False
            )
        return self._session

    async def send(self, url: str, headers: dict[str, str], body: bytes) -> Outcome:
        policy = self._policy
        started = time.perf_counter()

        def elapsed() -> int:
            return int((time.perf_counter() - started) * 1000)

        try:
            check_literal(urlsplit(url).hostname or "", policy.allow)
            async with self._open().post(
                url,
                data=body,
                headers={
                    "content-type": "application/json",
                    "user-agent": self._agent,
                    **headers,
                },
                allow_redirects=False,
            ) as response:
                latency = elapsed()
                read = 0
                async for chunk in response.content.iter_any():
                    read += len(chunk)
                    if read > _READ_AT_MOST:
                        break
                code = response.status
                retry_after = None
                if code in (429, 503):
                    retry_after = _retry_after(response.headers.get("retry-after"))
        except Blocked as error:
            return Outcome(None, f"refused: {error}", elapsed())
        except aiohttp.ConnectionTimeoutError:
            return Outcome(None, f"could not connect within {policy.connect_s:g} s", elapsed())
        except TimeoutError:
            return Outcome(None, f"timed out after {policy.timeout_s:g} s", elapsed())
        except aiohttp.ClientConnectorDNSError as error:
            return Outcome(
                None, f"could not connect: the name does not resolve ({error})", elapsed()
            )
        except aiohttp.ClientConnectorError as error:
            return Outcome(None, f"could not connect: {error.os_error or error}", elapsed())
        except Exception as error:  # recorded and retried, never a lease that silently expires
            return Outcome(None, f"{type(error).__name__}: {error}", elapsed())
        message = "" if 200 <= code < 300 else f"HTTP {code}"
        if 300 <= code < 400:
            message = f"HTTP {code}: redirects are not followed"
        return Outcome(code, message, latency, retry_after)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


class Deliverer:
    """Claims due deliveries, sends them concurrently (at most ``concurrency`` at once, and
    ``per_endpoint`` to one endpoint), and records the outcomes in batches.

    It leases ``_DEPTH`` deliveries per sending slot: while some are sent the next are queued
    here, so sending does not wait for the store between attempts."""

    def __init__(
        self, db: Database, settings: Settings, sealer: Sealer, *, cursor_secret: bytes = b""
    ) -> None:
        self._db = db
        self._policy = Policy.of(settings)
        self._sealer = sealer
        self._sender = Sender(self._policy)
        self._inflight: dict[asyncio.Task[Result], Claimed] = {}
        self._started: set[asyncio.Task[Result]] = set()
        self._slots = asyncio.Semaphore(self._policy.concurrency)
        self._gates: dict[tuple[int, int], tuple[asyncio.Semaphore, int]] = {}
        self._done: list[Result] = []
        self._purged_at = 0.0
        self._linker = (
            recordings.Linker(
                key=links.link_key(cursor_secret),
                base_url=settings.public_url.rstrip("/"),
                seconds=settings.recording_link_seconds,
            )
            if settings.public_url and cursor_secret
            else None
        )
        self.sent = 0  # attempts recorded, for the CLI's summary

    @property
    def _capacity(self) -> int:
        return self._policy.concurrency * _DEPTH

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop`` is set; then the attempts under way finish (or are left to their
        leases), their outcomes are recorded and the queued deliveries are given back."""
        stopping = asyncio.create_task(stop.wait())
        try:
            while not stop.is_set():
                try:
                    claimed = await self._step()
                except Exception:  # the store may be away for a moment: try again later
                    logger.exception("webhook deliverer: a step failed")
                    claimed = 0
                busy = bool(claimed) and len(self._inflight) < self._capacity
                wait_s = 0.0 if busy else self._policy.poll_s
                finished, _ = await asyncio.wait(
                    {stopping, *self._inflight}, timeout=wait_s, return_when="FIRST_COMPLETED"
                )
                if finished and not stop.is_set():
                    await asyncio.sleep(_GATHER_S)
                self._collect()
            queued = {t: c for t, c in self._inflight.items() if t not in self._started}
            for task in queued:
                task.cancel()
            if self._started:
                await asyncio.wait(self._started, timeout=self._policy.timeout_s)
            self._collect()
            await self._record(unsent=list(queued.values()))
        finally:
            stopping.cancel()
            for task in self._inflight:
                task.cancel()
            await self._sender.close()

    async def drain(self) -> int:
        """Send what is due now, and what becomes due while doing so, until nothing is; the
        number of attempts made. For ``callhistory deliver --once``."""
        try:
            while True:
                claimed = await self._step()
                if not claimed and not self._inflight:
                    break
                if self._inflight:
                    await asyncio.wait(self._inflight, return_when="FIRST_COMPLETED")
                    await asyncio.sleep(_GATHER_S)
                self._collect()
            await self._record(unsent=[])
        finally:
            await self._sender.close()
        return self.sent

    async def _step(self) -> int:
        """Record finished attempts and claim what the queue can take, in one write
        transaction (none when there is nothing to record and nothing due); sweep old history
        now and then. How many were claimed."""
        if time.monotonic() - self._purged_at > _PURGE_EVERY:
            self._purged_at = time.monotonic()
            async with transaction(self._db, write=True) as conn:
                await repository.purge(conn, before=now_micros() - self._policy.keep)
        free = self._capacity - len(self._inflight)
        now = now_micros()
        if not self._done:
            if free <= 0:
                return 0
            async with transaction(self._db, write=False) as conn:
                if not await repository.due(conn, now=now):
                    return 0
        results, self._done = self._done, []
        claimed: list[Claimed] = []
        async with transaction(self._db, write=True) as conn:
            disabled = await self._finish(conn, results)
            if free > 0:
                claimed = await repository.claim(
                    conn,
                    now=now,
                    lease_until=now + self._policy.lease,
                    per_endpoint=self._policy.per_endpoint * _DEPTH,
                    limit=free,
                )
                claimed = await self._linked(conn, claimed)
        self._report(results, disabled)
        for item in claimed:
            self._inflight[asyncio.create_task(self._attempt(item))] = item
        return len(claimed)

    async def _linked(self, conn: AsyncConnection, claimed: list[Claimed]) -> list[Claimed]:
        """The calls' recordings as links, when the service knows its public address."""
        if self._linker is None:
            return claimed
        out = list(claimed)
        tenants = {c.tenant_id for c in claimed if c.event_type != "call_log.deleted"}
        for tenant_id in tenants:
            mine = [
                i
                for i, c in enumerate(out)
                if c.tenant_id == tenant_id and c.event_type != "call_log.deleted"
            ]
            docs = await recordings.present(
                conn,
                tenant_id=tenant_id,
                docs=[out[i].data.encode() for i in mine],
                linker=self._linker,
                remembered=False,
            )
            for i, doc in zip(mine, docs, strict=True):
                out[i] = out[i]._replace(data=doc.decode())
        return out

    async def _attempt(self, claimed: Claimed) -> Result:
        key = (claimed.tenant_id, claimed.endpoint_id)
        gate, users = self._gates.get(key) or (asyncio.Semaphore(self._policy.per_endpoint), 0)
        self._gates[key] = (gate, users + 1)
        try:
            async with gate, self._slots:
                task = asyncio.current_task()
                assert task is not None
                self._started.add(task)
                return await self._send(claimed)
        finally:
            gate, users = self._gates[key]
            if users > 1:
                self._gates[key] = (gate, users - 1)
            else:
                del self._gates[key]

    async def _send(self, claimed: Claimed) -> Result:
        now = now_micros()
        context = secret_context(claimed.tenant_id, claimed.endpoint_id)
        secrets = [self._sealer.open(claimed.secret, context=context)]
        if claimed.previous_secret and (claimed.previous_until or 0) > now:
            secrets.append(self._sealer.open(claimed.previous_secret, context=context))
        secrets = [s for s in secrets if s]
        if not secrets:  # never sent unsigned: retried until the key that opens it is back
            outcome = Outcome(
                None,
                "the signing secret cannot be opened: is the "
                "CALLHISTORY_DATA_KEY that sealed it still configured?",
                0,
            )
            return decide(claimed, outcome, now=now_micros(), policy=self._policy)
        body = body_of(claimed)
        headers = signing.headers(
            secrets, msg_id=str(claimed.event_id), timestamp=now // _SECOND, body=body
        )
        outcome = await self._sender.send(claimed.url, headers, body)
        return decide(claimed, outcome, now=now_micros(), policy=self._policy)

    def _collect(self) -> None:
        for task in [t for t in self._inflight if t.done()]:
            self._inflight.pop(task)
            self._started.discard(task)
            if task.cancelled():
                continue
            if task.exception() is None:
                self._done.append(task.result())
            else:  # its lease expires and it is sent again
                logger.error("webhook attempt failed: %r", task.exception())

    async def _record(self, *, unsent: Sequence[Claimed]) -> None:
        """Record finished attempts and give back the leases of ``unsent`` deliveries (when
        stopping: nothing more is claimed)."""
        keys = [(c.tenant_id, c.id) for c in unsent]
        if not self._done and not keys:
            return
        results, self._done = self._done, []
        async with transaction(self._db, write=True) as conn:
            disabled = await self._finish(conn, results)
            if keys:
                await repository.release(conn, keys=keys)
        self._report(results, disabled)

    async def _finish(
        self, conn: AsyncConnection, results: Sequence[Result]
    ) -> list[tuple[int, int]]:
        if not results:
            return []
        return await repository.finish(
            conn, results=results, now=now_micros(), disable_after=self._policy.disable_after
        )

    def _report(self, results: Sequence[Result], disabled: list[tuple[int, int]]) -> None:
        self.sent += len(results)
        for tenant_id, endpoint_id in disabled:
            logger.warning(
                "webhook endpoint %s of tenant %s disabled: %s deliveries in a row failed",
                endpoint_id,
                tenant_id,
                self._policy.disable_after,
            )
