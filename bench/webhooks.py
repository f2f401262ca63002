"""`make bench`'s webhook rows: ingest with a webhook endpoint against without, deliveries/s of
one delivering process, and the time from a call's acknowledgement to its delivery at a steady
500 calls/s. The receiver is a minimal HTTP/1.1 server on loopback in this process (answering
at once), so its clock is the poster's."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
import threading
import time
from http.client import HTTPConnection
from typing import Any

import msgspec

from bench.data import Dataset
from tests.harness import new_tenant

WEBHOOK_ENV = {"CALLHISTORY_WEBHOOK_ALLOW": "127.0.0.1", "CALLHISTORY_WEBHOOK_POLL_MS": "100"}
BATCHES = int(os.environ.get("BENCH_WEBHOOK_BATCHES", 30))
BACKLOG = int(os.environ.get("BENCH_WEBHOOK_BACKLOG", 10_000))
STEADY_SECONDS = int(os.environ.get("BENCH_WEBHOOK_SECONDS", 10))


class Receiver:
    """Answers every POST with 204 and notes when each webhook-id arrived."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.data_ids: dict[str, str] = {}  # call id → webhook-id of its first event
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = dict(
                    line.split(b":", 1) for line in head.split(b"\r\n")[1:] if b":" in line
                )
                named = {k.strip().lower(): v.strip() for k, v in headers.items()}
                body = await reader.readexactly(int(named[b"content-length"]))
                now = time.monotonic()
                msg_id = named[b"webhook-id"].decode()
                self.arrived.setdefault(msg_id, now)
                call_id = msgspec.json.decode(body)["data"]["id"]
                self.data_ids.setdefault(call_id, msg_id)
                writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    def __enter__(self) -> Receiver:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *_: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def wait_for(self, count: int, within: float) -> float:
        deadline = time.monotonic() + within
        while len(self.arrived) < count:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{len(self.arrived)} of {count} webhooks arrived")
            time.sleep(0.01)
        return max(self.arrived.values())


def _post(port: int, key: str, body: bytes) -> list[dict[str, Any]]:
    http = HTTPConnection("127.0.0.1", port)
    http.request(
        "POST",
        "/v1/pbx.Etelecom/IngestCallLogs",
        body,
        {"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    response = http.getresponse()
    answer = response.read()
    http.close()
    assert response.status == 200, answer
    return list(msgspec.json.decode(answer)["call_logs"])


def _endpoint(port: int, key: str, url: str) -> None:
    http = HTTPConnection("127.0.0.1", port)
    http.request(
        "POST",
        "/v1/shop.Etelecom/CreateWebhookEndpoint",
        msgspec.json.encode({"url": url}),
        {"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    )
    response = http.getresponse()
    assert response.status == 200, response.read()
    http.close()


def _batches(first: int, count: int, size: int = 500) -> list[bytes]:
    from bench.run import ingest_batch

    out = []
    for b in range(first, first + count):
        calls = msgspec.json.decode(ingest_batch(b, "freeswitch"))["call_logs"][:size]
        out.append(msgspec.json.encode({"call_logs": calls}))
    return out


def webhooks(data: Dataset) -> dict[str, float]:
    from bench.run import pct, server

    out: dict[str, float] = {}
    plain = new_tenant(data.url, name="ingest bench webhooks off")
    hooked = new_tenant(data.url, name="ingest bench webhooks on")
    try:
        with Receiver() as receiver:
            # 1. The same batches, by turns, into a tenant without and one with an endpoint.
            with server(data, 1, env=WEBHOOK_ENV) as (base, _):
                port = int(base.rsplit(":", 1)[1])
                _endpoint(port, hooked.admin, receiver.url)
                spent = {"off": 0.0, "on": 0.0}
                batches = _batches(20_000, BATCHES * 2)
                _post(port, plain.ingest, batches[0])
                _post(port, hooked.ingest, batches[1])
                for i in range(1, BATCHES):
                    for name, key, body in (
                        ("off", plain.ingest, batches[2 * i]),
                        ("on", hooked.ingest, batches[2 * i + 1]),
                    ):
                        began = time.perf_counter()
                        _post(port, key, body)
                        spent[name] += time.perf_counter() - began
                calls = (BATCHES - 1) * 500
                out["ingest_off"] = calls / spent["off"]
                out["ingest_on"] = calls / spent["on"]
                receiver.wait_for(BATCHES * 500, within=120)
            # 2. A backlog stored with no deliverer running, then one `callhistory deliver`.
            env = {**WEBHOOK_ENV, "CALLHISTORY_DELIVER": "false"}
            with server(data, 1, env=env) as (base, _):
                port = int(base.rsplit(":", 1)[1])
                for body in _batches(30_000, BACKLOG // 500):
                    _post(port, hooked.ingest, body)
            before = len(receiver.arrived)
            earlier = set(receiver.arrived)
            deliverer = subprocess.Popen(
                [sys.executable, "-m", "callhistory", "deliver", "--once"],
                env={**os.environ, **env, "CALLHISTORY_DATABASE_URL": data.url},
                stdout=subprocess.DEVNULL,
            )
            last = receiver.wait_for(before + BACKLOG, within=600)
            deliverer.wait(timeout=60)
            # From the first delivery to the last: the process's start-up (~2 s) left out.
            first = min(t for k, t in receiver.arrived.items() if k not in earlier)
            out["deliveries_per_s"] = (BACKLOG - 1) / (last - first)
            # 3. Steady posting (batches of 50 every 100 ms: 500 calls/s; then 100 calls/s) to
            # `serve --workers 2`, each worker delivering too: acknowledgement → arrival.
            sent = before + BACKLOG
            with server(data, 2, env=WEBHOOK_ENV) as (base, _):
                port = int(base.rsplit(":", 1)[1])
                for rate, first in ((500, 40_000), (100, 50_000)):
                    size = rate // 10
                    acked: dict[str, float] = {}
                    steady = _batches(first, STEADY_SECONDS * 10, size=size)
                    start = time.monotonic()
                    for i, body in enumerate(steady):
                        time.sleep(max(0.0, start + i * 0.1 - time.monotonic()))
                        for ack in _post(port, hooked.ingest, body):
                            acked[ack["id"]] = time.monotonic()
                    out[f"steady_rate_{rate}"] = len(acked) / (time.monotonic() - start)
                    sent += len(acked)
                    receiver.wait_for(sent, within=300)
                    latency = [
                        (receiver.arrived[receiver.data_ids[call_id]] - at) * 1000
                        for call_id, at in acked.items()
                    ]
                    out[f"latency_p50_ms_{rate}"] = pct(latency, 0.5)
                    out[f"latency_p99_ms_{rate}"] = pct(latency, 0.99)
    finally:
        forget(data)
    return out


def forget(data: Dataset) -> None:
    """Delete the scratch tenants' calls and webhook rows (this run's and earlier runs')."""
    scratch = "SELECT id FROM tenants WHERE name LIKE 'ingest bench%'"
    with sqlite3.connect(data.url.removeprefix("sqlite:///")) as db:
        for table in (
            "call_logs",
            "webhook_attempts",
            "webhook_deliveries",
            "webhook_events",
            "webhook_endpoints",
        ):
            db.execute(f"DELETE FROM {table} WHERE tenant_id IN ({scratch})")
