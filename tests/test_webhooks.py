"""Webhooks as a CRM receiving them sees them: signed by the Standard Webhooks rules (checked
with the public ``standardwebhooks`` library), every acknowledged call's events delivered at
least once and in order per call, retried, isolated, and never sent where they must not go."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from standardwebhooks.webhooks import Webhook, WebhookVerificationError
from typer.testing import CliRunner

from callhistory.cli import app as cli_app
from callhistory.kit.config import Settings
from callhistory.kit.sealing import new_key
from tests.harness import (
    Api,
    ServerThread,
    Tenant,
    eventually,
    free_port,
    new_tenant,
    run_sql,
    start_serve,
)
from tests.receiver import Answer, Received, Receiver
from tests.test_ingest import call

FAST = {
    "webhook_allow": "127.0.0.1",
    "webhook_first_retry_ms": 100,
    "webhook_retry_hours": 5 / 3600,  # 5 s
    "webhook_timeout_ms": 1500,
    "webhook_connect_timeout_ms": 1000,
    "webhook_poll_ms": 50,
    "webhook_disable_after": 3,
    "webhook_endpoint_concurrency": 4,
}


def settings(database_url: str, **overrides: Any) -> Settings:
    return Settings(
        database_url=database_url,
        access_log=False,
        rate_limit_per_second=0,
        auth_failures_per_minute=0,
        **{**FAST, **overrides},
    )


@pytest.fixture(scope="module")
def hooks_server(database_url: str) -> Iterator[ServerThread]:
    with ServerThread(settings(database_url)) as running:
        yield running


@pytest.fixture
def hapi(hooks_server: ServerThread) -> Iterator[Api]:
    client = Api(hooks_server.base_url)
    yield client
    client.close()


def endpoint(api: Api, tenant: Tenant, url: str, **fields: Any) -> tuple[str, str]:
    made = api.ok("CreateWebhookEndpoint", {"url": url, **fields}, tenant.admin)
    assert made["secret"].startswith("whsec_")
    return made["endpoint"]["id"], made["secret"]


def at_least(receiver: Receiver, count: int, *, within: float = 10) -> list[Received]:
    def check() -> list[Received] | None:
        got = receiver.events()
        return got if len(got) >= count else None

    return eventually(check, within=within)


def verified(secret: str, got: Received) -> Any:
    """The payload, once the public library accepts its signature."""
    return Webhook(secret).verify(got.body, got.headers)


def test_every_change_arrives_signed_in_the_list_shape(
    hapi: Api, database_url: str, hooks_server: ServerThread
) -> None:
    tenant = new_tenant(database_url)
    with Receiver() as receiver:
        _, secret = endpoint(hapi, tenant, receiver.url, description="CRM")
        acks = hapi.ingest(tenant.ingest, [call(f"w{i}") for i in range(12)])
        hapi.ingest(tenant.ingest, [call(f"w{i}", note="called back") for i in range(3)])
        at_least(receiver, 15)
        erased = hapi.ok("DeleteCallLogs", {"ids": [acks[11]["id"]]}, tenant.admin)
        assert erased["deleted"] == 1
        got = at_least(receiver, 16)
        time.sleep(0.3)
        assert len(receiver.events()) == 16  # nothing sent twice when all went well
    payloads = [verified(secret, r) for r in got]
    by_type: dict[str, list[Any]] = {}
    for p in payloads:
        by_type.setdefault(p["type"], []).append(p)
    assert len(by_type["call_log.created"]) == 12
    assert len(by_type["call_log.updated"]) == 3
    assert by_type["call_log.deleted"] == [
        {**by_type["call_log.deleted"][0], "data": {"id": acks[11]["id"]}}
    ]
    listed = {
        row["id"]: row
        for row in hapi.ok("ListCallLogs", {"paging": {"limit": 100}}, tenant.read)["call_logs"]
    }
    for p in by_type["call_log.updated"]:
        assert p["data"] == listed[p["data"]["id"]]  # exactly what ListCallLogs shows
        assert p["data"]["note"] == "called back"
    assert {p["data"]["id"] for p in by_type["call_log.created"]} == {a["id"] for a in acks}
    # A call's events in the order they happened; each message its own id, in the header too.
    for ack in acks[:3]:
        kinds = [p["type"] for p in payloads if p["data"]["id"] == ack["id"]]
        assert kinds == ["call_log.created", "call_log.updated"]
    assert len({r.headers["webhook-id"] for r in got}) == 16
    assert all(r.headers["webhook-id"] == p["id"] for r, p in zip(got, payloads, strict=True))
    tampered = Received(got[0].path, got[0].headers, got[0].body.replace(b"w", b"x"), 0)
    with pytest.raises(WebhookVerificationError):
        verified(secret, tampered)


def test_erasing_a_call_takes_back_its_undelivered_events(hapi: Api, database_url: str) -> None:
    tenant = new_tenant(database_url)

    def answer(got: Received) -> Answer:
        return Answer(410 if got.json["type"] == "call_log.created" else 200)

    with Receiver(answer) as receiver:
        endpoint_id, secret = endpoint(hapi, tenant, receiver.url)
        ack = hapi.ingest(tenant.ingest, [call("e1", caller="0987654321")])[0]
        at_least(receiver, 1)
        time.sleep(0.2)  # its outcome recorded
        hapi.ok("DeleteCallLogs", {"number": "0987654321"}, tenant.admin)
        got = at_least(receiver, 2)
    assert verified(secret, got[1]) == {**verified(secret, got[1]), "data": {"id": ack["id"]}}
    held = run_sql(
        database_url,
        "SELECT count(*) FROM webhook_events WHERE tenant_id = :t AND data LIKE :n",
        t=int(tenant.id),
        n="%0987654321%",
    )
    assert held[0][0] == 0  # the number is gone from the outbox too
    deliveries = hapi.ok("ListWebhookDeliveries", {"endpoint_id": endpoint_id}, tenant.admin)
    assert [d["event_type"] for d in deliveries["deliveries"]] == ["call_log.deleted"]


def test_retried_until_accepted_in_order_and_recorded(hapi: Api, database_url: str) -> None:
    tenant = new_tenant(database_url)
    answers = iter([Answer(500), Answer(503), Answer(delay=2.5)])

    def answer(_: Received) -> Answer:
        return next(answers, Answer())

    with Receiver(answer) as receiver:
        endpoint_id, secret = endpoint(hapi, tenant, receiver.url)
        ack = hapi.ingest(tenant.ingest, [call("r1")])[0]
        hapi.ingest(tenant.ingest, [call("r1", note="later")])
        eventually(lambda: [r for r in receiver.events() if b"later" in r.body] or None, within=20)
        got = receiver.events()
    kinds = [verified(secret, r)["type"] for r in got]
    # The update waited for the call's creation to be accepted: never overtaking it.
    assert kinds == ["call_log.created"] * 4 + ["call_log.updated"]
    assert len({r.headers["webhook-id"] for r in got[:4]}) == 1  # the same message, retried
    deliveries = hapi.ok(
        "ListWebhookDeliveries", {"endpoint_id": endpoint_id, "call_id": ack["id"]}, tenant.admin
    )["deliveries"]
    assert [d["event_type"] for d in deliveries] == ["call_log.updated", "call_log.created"]
    created = deliveries[1]
    assert created["state"] == "succeeded" and created["next_attempt_at"] is None
    attempts = created["attempts"]
    assert [a["response_code"] for a in attempts] == [500, 503, None, 200]
    assert [a["succeeded"] for a in attempts] == [False, False, False, True]
    assert "timed out" in attempts[2]["error"]
    assert attempts[2]["latency_ms"] >= 1400


def test_a_receiver_that_was_down_gets_everything_once_it_is_back(
    hapi: Api, database_url: str
) -> None:
    tenant = new_tenant(database_url)
    port = free_port()
    endpoint_id, secret = endpoint(hapi, tenant, f"http://127.0.0.1:{port}/hook")
    acks = hapi.ingest(tenant.ingest, [call(f"u{i}") for i in range(5)])

    def refused() -> Any:
        found = hapi.ok("ListWebhookDeliveries", {"endpoint_id": endpoint_id}, tenant.admin)
        tried = [a for d in found["deliveries"] for a in d["attempts"]]
        return tried if len(tried) >= 5 else None

    assert all("could not connect" in a["error"] for a in eventually(refused))
    with Receiver(port=port) as receiver:
        got = at_least(receiver, 5)
    assert {verified(secret, r)["data"]["id"] for r in got} == {a["id"] for a in acks}


def test_refusals_stop_retries_and_disable_the_endpoint(hapi: Api, database_url: str) -> None:
    tenant = new_tenant(database_url)
    status = {"code": 410}
    with Receiver(lambda _: Answer(status["code"])) as receiver:
        endpoint_id, _ = endpoint(hapi, tenant, receiver.url)
        hapi.ingest(tenant.ingest, [call(f"g{i}") for i in range(6)])

        def disabled() -> Any:
            listed = hapi.ok("ListWebhookEndpoints", {}, tenant.admin)["endpoints"]
            return listed[0] if not listed[0]["enabled"] else None

        eventually(disabled, within=15)
        time.sleep(0.5)  # attempts in flight when it was disabled finish meanwhile
        gone = hapi.ok("ListWebhookEndpoints", {}, tenant.admin)["endpoints"][0]
        # Off after 3 in a row (webhook_disable_after); those already in flight then (up to 3
        # more: at most 4 go to one endpoint at once) still count.
        failures = gone["failures"]
        assert 3 <= failures <= 6 and "HTTP 410" in gone["disabled_reason"]
        assert not gone["enabled"]
        # A 4xx is not retried: one attempt each, and nothing sent once it was disabled.
        assert len(receiver.events()) == failures
        deliveries = hapi.ok("ListWebhookDeliveries", {"endpoint_id": endpoint_id}, tenant.admin)[
            "deliveries"
        ]
        failed = [d for d in deliveries if d["state"] == "failed"]
        assert len(failed) == failures and all(len(d["attempts"]) == 1 for d in failed)
        # The receiver is mended: enabled again, the pending one goes, and a retry of a failed one.
        status["code"] = 200
        hapi.ok("UpdateWebhookEndpoint", {"id": endpoint_id, "enabled": True}, tenant.admin)
        hapi.ok("RetryWebhookDelivery", {"id": failed[0]["id"]}, tenant.admin)
        at_least(receiver, 7)
    states = {
        d["id"]: d["state"]
        for d in hapi.ok("ListWebhookDeliveries", {"endpoint_id": endpoint_id}, tenant.admin)[
            "deliveries"
        ]
    }
    assert states[failed[0]["id"]] == "succeeded"
    assert sorted(states.values()) == ["failed"] * (failures - 1) + ["succeeded"] * (7 - failures)


def test_retry_after_is_honoured(hapi: Api, database_url: str) -> None:
    tenant = new_tenant(database_url)
    answers = iter([Answer(429, headers={"Retry-After": "2"})])
    with Receiver(lambda _: next(answers, Answer())) as receiver:
        endpoint(hapi, tenant, receiver.url)
        hapi.ingest(tenant.ingest, [call("t1")])
        got = at_least(receiver, 2)
    assert got[1].at - got[0].at >= 1.9


def test_a_slow_endpoint_does_not_hold_up_another(hapi: Api, database_url: str) -> None:
    slow_tenant, quick_tenant = new_tenant(database_url), new_tenant(database_url)
    with (
        Receiver(lambda _: Answer(delay=3)) as slow,
        Receiver() as quick,
    ):
        endpoint(hapi, slow_tenant, slow.url)
        endpoint(hapi, quick_tenant, quick.url)
        hapi.ingest(slow_tenant.ingest, [call(f"s{i}") for i in range(40)])
        time.sleep(0.2)
        started = time.monotonic()
        hapi.ingest(quick_tenant.ingest, [call(f"q{i}") for i in range(10)])
        at_least(quick, 10)
        assert time.monotonic() - started < 1.4  # before any of the slow one's timed out
        # At most four at once to one endpoint (webhook_endpoint_concurrency).
        assert len(slow.events()) <= 4


def test_urls_that_must_not_be_reached(
    hapi: Api, database_url: str, fresh_database_url: str
) -> None:
    tenant = new_tenant(database_url)
    for url, why in [
        ("http://example.com/hook", "must be https"),
        ("https://169.254.169.254/latest/meta-data", "not a public address"),
        ("https://10.1.2.3/hook", "not a public address"),
        ("https://[::1]/hook", "not a public address"),
        ("https://[::ffff:192.168.0.1]/hook", "not a public address"),
        ("https://user:pw@example.com/hook", "user name or password"),
        ("ftp://example.com/hook", "https"),
        ("hook", "https"),
        ("https://exämple.com/hook", "ASCII"),
        ("https://exa mple.com/hook", "ASCII"),
    ]:
        error = hapi.error(
            "CreateWebhookEndpoint", {"url": url}, tenant.admin, 400, "invalid_argument"
        )
        assert error["meta"]["field"] == "url" and why in error["msg"], (url, error)
    # A name is checked where the connection is made, on what it resolves to then: here by
    # the one server of a store whose operator allowed nothing (the tests' own allow
    # 127.0.0.1, and every deliverer of a store shares the work).
    with ServerThread(settings(fresh_database_url, webhook_allow="")) as strict:
        sapi = Api(strict.base_url)
        alone = new_tenant(fresh_database_url)
        endpoint_id, _ = endpoint(sapi, alone, "https://localhost:9/hook")
        sapi.ingest(alone.ingest, [call("p1")])

        def attempted() -> Any:
            found = sapi.ok("ListWebhookDeliveries", {"endpoint_id": endpoint_id}, alone.admin)
            return found["deliveries"][0]["attempts"] or None

        first = eventually(attempted)[0]
        sapi.close()
    assert first["response_code"] is None
    assert "resolves to" in first["error"] and "not a public address" in first["error"]


def test_redirects_are_not_followed(hapi: Api, database_url: str) -> None:
    tenant = new_tenant(database_url)
    with Receiver() as target:
        moved = Answer(302, headers={"Location": target.url})
        with Receiver(lambda _: moved) as receiver:
            endpoint_id, _ = endpoint(hapi, tenant, receiver.url)
            hapi.ingest(tenant.ingest, [call("m1")])
            eventually(lambda: receiver.events() or None)
            time.sleep(0.5)
        assert target.events() == []
    found = hapi.ok("ListWebhookDeliveries", {"endpoint_id": endpoint_id}, tenant.admin)
    attempt = found["deliveries"][0]["attempts"][0]
    assert attempt["response_code"] == 302 and "not followed" in attempt["error"]


def test_a_rotated_secret_and_its_predecessor_both_sign(hapi: Api, database_url: str) -> None:
    tenant = new_tenant(database_url)
    with Receiver() as receiver:
        endpoint_id, old = endpoint(hapi, tenant, receiver.url)
        rotated = hapi.ok("RotateWebhookSecret", {"id": endpoint_id}, tenant.admin)
        new = rotated["secret"]
        assert new != old and new.startswith("whsec_")
        hapi.ingest(tenant.ingest, [call("k1")])
        got = eventually(lambda: receiver.events() or None)[0]
    assert len(got.headers["webhook-signature"].split()) == 2
    assert verified(old, got) == verified(new, got)
    stored = run_sql(
        database_url,
        "SELECT secret, previous_secret FROM webhook_endpoints WHERE tenant_id = :t AND id = :id",
        t=int(tenant.id),
        id=int(endpoint_id),
    )[0]
    assert old not in stored[1] and new not in stored[0]  # sealed, never kept in the clear


def test_endpoints_belong_to_their_tenant_and_need_an_admin_key(
    hapi: Api, database_url: str
) -> None:
    mine, theirs = new_tenant(database_url), new_tenant(database_url)
    endpoint_id, _ = endpoint(hapi, mine, "https://crm.example.com/hook")
    hapi.error("ListWebhookEndpoints", {}, mine.read, 403, "permission_denied")
    hapi.error(
        "CreateWebhookEndpoint", {"url": "https://a.example"}, mine.ingest, 403, "permission_denied"
    )
    for method, body in [
        ("UpdateWebhookEndpoint", {"id": endpoint_id, "enabled": False}),
        ("RotateWebhookSecret", {"id": endpoint_id}),
        ("DeleteWebhookEndpoint", {"id": endpoint_id}),
        ("ListWebhookDeliveries", {"endpoint_id": endpoint_id}),
    ]:
        hapi.error(method, body, theirs.admin, 404, "not_found")
    assert hapi.ok("ListWebhookEndpoints", {}, theirs.admin)["endpoints"] == []
    listed = hapi.ok("ListWebhookEndpoints", {}, mine.admin)["endpoints"]
    assert [e["id"] for e in listed] == [endpoint_id] and "secret" not in listed[0]
    hapi.ok("DeleteWebhookEndpoint", {"id": endpoint_id}, mine.admin)
    assert hapi.ok("ListWebhookEndpoints", {}, mine.admin)["endpoints"] == []


ENV = {f"CALLHISTORY_{name.upper()}": str(value) for name, value in FAST.items()}


def _created_ids(receiver: Receiver) -> set[str]:
    return {r.json["data"]["id"] for r in receiver.events() if r.json["type"] == "call_log.created"}


def test_every_acknowledged_call_is_delivered_after_a_kill(fresh_database_url: str) -> None:
    """SIGKILL while a PBX posts and deliveries are in flight; after a restart, each call the
    PBX got a 200 for reaches the receiver."""
    env = {**ENV, "CALLHISTORY_WEBHOOK_ENDPOINT_CONCURRENCY": "16"}
    with Receiver(lambda _: Answer(delay=0.05)) as receiver:
        process, base = start_serve(fresh_database_url, env=env)
        acked: list[str] = []
        try:
            tenant = new_tenant(fresh_database_url)
            api = Api(base)
            endpoint(api, tenant, receiver.url)
            stop = threading.Event()

            def post() -> None:
                n = 0
                while not stop.is_set():
                    try:
                        got = api.ingest(tenant.ingest, [call(f"k{n}-{i}") for i in range(50)])
                    except (httpx.HTTPError, AssertionError):
                        return  # the server died under this post: not acknowledged
                    acked.extend(a["id"] for a in got)
                    n += 1

            poster = threading.Thread(target=post)
            poster.start()
            eventually(lambda: (len(acked) >= 500 and receiver.events()) or None, within=30)
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=10)
            stop.set()
            poster.join(timeout=30)
            api.close()
            assert len(_created_ids(receiver)) < len(acked)  # some were still to go
            process, _ = start_serve(fresh_database_url, env=env)
            eventually(lambda: set(acked) <= _created_ids(receiver) or None, within=60)
        finally:
            process.kill()
            process.wait(timeout=10)


def test_delivery_processes_share_a_burst_without_sending_twice(
    fresh_database_url: str,
) -> None:
    # Each answer takes 50 ms and a process sends 2 at once, so the burst lasts a few seconds
    # and needs every process.
    with Receiver(lambda _: Answer(delay=0.05)) as receiver:
        env = {**ENV, "CALLHISTORY_DELIVER": "false", "CALLHISTORY_WEBHOOK_CONCURRENCY": "2"}
        process, base = start_serve(fresh_database_url, env=env)
        workers: list[subprocess.Popen[bytes]] = []
        try:
            tenant = new_tenant(fresh_database_url)
            api = Api(base)
            endpoint(api, tenant, receiver.url)
            endpoint(api, tenant, receiver.url + "?second")
            api.ingest(tenant.ingest, [call(f"b{i}") for i in range(400)])
            api.close()
            assert receiver.events() == []  # nothing sends while no deliverer runs
            command = [sys.executable, "-m", "callhistory", "deliver"]
            workers = [
                subprocess.Popen(
                    [*command, "--database", fresh_database_url],
                    env={**os.environ, **env},
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                )
                for _ in range(3)
            ]
            at_least(receiver, 800, within=60)
            time.sleep(1)
            for worker in workers:
                worker.send_signal(signal.SIGTERM)
            outputs = [worker.communicate(timeout=30) for worker in workers]
        finally:
            for worker in workers:
                worker.kill()
            process.kill()
            process.wait(timeout=10)
    assert [worker.returncode for worker in workers] == [0, 0, 0], outputs
    got = receiver.events()
    sent = [(r.path, r.headers["webhook-id"]) for r in got]
    assert len(sent) == 800 and len(set(sent)) == 800  # each message once to each endpoint
    # Attempts made: a few more than 800 when a connection failed and was tried again.
    made = [int(out.decode().split()[0]) for out, _ in outputs]
    assert sum(made) >= 800 and sum(1 for n in made if n) >= 2, made  # shared, not one alone


def test_a_stopped_deliverer_hands_back_what_it_had_not_sent(fresh_database_url: str) -> None:
    """A deliverer leases a few deliveries ahead of sending them; stopped, it finishes the
    attempt under way and gives the others back at once, so another process sends them
    without waiting for a lease to run out."""
    with Receiver(lambda _: Answer(delay=0.5)) as receiver:
        env = {
            **ENV,
            "CALLHISTORY_DELIVER": "false",
            "CALLHISTORY_WEBHOOK_CONCURRENCY": "1",
            "CALLHISTORY_WEBHOOK_TIMEOUT_MS": "5000",  # leases of half a minute
        }
        process, base = start_serve(fresh_database_url, env=env)
        first: subprocess.Popen[bytes] | None = None
        try:
            tenant = new_tenant(fresh_database_url)
            api = Api(base)
            endpoint(api, tenant, receiver.url)
            acked = {a["id"] for a in api.ingest(tenant.ingest, [call(f"h{i}") for i in range(6)])}
            api.close()
            command = [sys.executable, "-m", "callhistory", "deliver", "--database"]
            first = subprocess.Popen(
                [*command, fresh_database_url],
                env={**os.environ, **env},
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
            at_least(receiver, 1, within=30)
            first.send_signal(signal.SIGTERM)
            out, err = first.communicate(timeout=10)
            assert first.returncode == 0, err
            stopped_after = int(out.decode().split()[0])
            assert 1 <= stopped_after < 6  # it stopped before sending its whole queue
            began = time.monotonic()
            second = subprocess.run(
                [*command, fresh_database_url, "--once"],
                env={**os.environ, **env},
                capture_output=True,
                timeout=60,
                check=True,
            )
            assert time.monotonic() - began < 20  # not after the leases ran out
            assert int(second.stdout.decode().split()[0]) == 6 - stopped_after
        finally:
            if first is not None:
                first.kill()
            process.kill()
            process.wait(timeout=10)
    assert _created_ids(receiver) == acked
    assert len(receiver.events()) == 6  # none sent twice


def test_signing_secrets_survive_the_data_key_rotation(fresh_database_url: str) -> None:
    first, second = new_key(), new_key()
    with Receiver() as receiver:
        with ServerThread(settings(fresh_database_url, data_key=first)) as running:
            tenant = new_tenant(fresh_database_url)
            api = Api(running.base_url)
            _, secret = endpoint(api, tenant, receiver.url)
            api.close()
        with ServerThread(settings(fresh_database_url, data_key=f"{second},{first}")):
            pass  # started once with both keys: the secret is sealed anew under the second
        with ServerThread(settings(fresh_database_url, data_key=second)) as running:
            api = Api(running.base_url)
            api.ingest(tenant.ingest, [call("d1")])
            api.close()
            got = at_least(receiver, 1)[0]
    assert verified(secret, got)["type"] == "call_log.created"


def test_a_bad_allow_list_is_refused_in_one_line(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLHISTORY_WEBHOOK_ALLOW", "crm.internal,not a host")
    result = CliRunner().invoke(
        cli_app, ["webhook", "list", "--tenant", "1", "--database", database_url]
    )
    assert result.exit_code == 2 and "CALLHISTORY_WEBHOOK_ALLOW" in result.output, result.output
    assert "Traceback" not in result.output
