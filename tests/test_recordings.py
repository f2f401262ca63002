"""Recordings as an integrator and a player see them: uploaded for a call, stored in a local
directory or a real S3-speaking server, played back through signed links with Range, and
refused when a link is altered, expired or another tenant's."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import io
import math
import os
import signal
import struct
import subprocess
import sys
import time
import wave
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import msgspec
import pytest
from typer.testing import CliRunner

from callhistory.app import create_app
from callhistory.cli import app as cli_app
from callhistory.client import AsyncClient, Client, InvalidArgumentError
from callhistory.kit.config import ConfigError, Settings
from callhistory.recordings.storage import Storage
from tests.harness import Api, ServerThread, Tenant, cli_json, eventually, new_tenant
from tests.receiver import Receiver
from tests.s3server import S3Server, use_credentials
from tests.test_ingest import call

PBX_PATH = "/var/lib/freeswitch/recordings/2025-05-01/{}.wav"


def wav(seconds: float, pitch: float = 440.0) -> bytes:
    """A real 8 kHz mono 16-bit WAV file: a tone."""
    out = io.BytesIO()
    with wave.open(out, "wb") as audio:
        audio.setnchannels(1)
        audio.setsampwidth(2)
        audio.setframerate(8000)
        frames = int(8000 * seconds)
        audio.writeframes(
            b"".join(
                struct.pack("<h", int(8000 * math.sin(2 * math.pi * pitch * i / 8000)))
                for i in range(frames)
            )
        )
    return out.getvalue()


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    use_credentials()
    with S3Server() as server:
        yield server


Look = Callable[[], list[str]]


@pytest.fixture(scope="module", params=["file", "s3"])
def storage(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, Look]:
    """The store's URL, and a direct look at the objects in it (not through the service)."""
    if request.param == "file":
        root = tmp_path_factory.mktemp("recordings")
        return root.as_uri(), lambda: sorted(
            str(p.relative_to(root)) for p in Path(root).rglob("*") if p.is_file()
        )
    server: S3Server = request.getfixturevalue("s3")
    bucket = f"rec{int(time.time() * 1000) % 10**9}"
    url = server.bucket(bucket)
    return url, lambda: sorted(k.removeprefix("recordings/") for k in server.keys(bucket))


@pytest.fixture(scope="module")
def rec_server(database_url: str, storage: tuple[str, Look]) -> Iterator[ServerThread]:
    settings = Settings(
        database_url=database_url,
        deliver=False,
        access_log=False,
        rate_limit_per_second=0,
        auth_failures_per_minute=0,
        recordings_url=storage[0],
        recording_max_mb=1,
        recording_purge_seconds=1,
    )
    with ServerThread(settings) as running:
        yield running


@pytest.fixture
def rapi(rec_server: ServerThread) -> Iterator[Api]:
    client = Api(rec_server.base_url)
    yield client
    client.close()


def upload(
    api: Api, tenant: Tenant, path: str, body: bytes, *, key: str = "", **query: str
) -> httpx.Response:
    return api.http.put(
        f"/v1/recordings{path}",
        params=query,
        content=body,
        headers={"Authorization": f"Bearer {key or tenant.ingest}"},
    )


def a_call_with_a_recording(api: Api, tenant: Tenant, name: str) -> str:
    got = api.ingest(tenant.ingest, [call(name, recording_urls=[PBX_PATH.format(name)])])
    return str(got[0]["id"])


def test_an_uploaded_recording_plays_and_seeks(
    rapi: Api, database_url: str, storage: tuple[str, Look]
) -> None:
    tenant = new_tenant(database_url)
    call_id = a_call_with_a_recording(rapi, tenant, "r1")
    audio = wav(3)
    sent = upload(
        rapi,
        tenant,
        PBX_PATH.format("r1"),
        audio,
        source_id="r1",
        **{},
    )
    assert sent.status_code == 200, sent.text
    made = sent.json()
    assert made["call_id"] == call_id and made["name"] == "r1.wav"
    assert made["size"] == len(audio) and made["sha256"] == hashlib.sha256(audio).hexdigest()
    assert made["content_type"] == "audio/wav"
    assert f"{tenant.id}/{made['id']}" in storage[1]()  # the bytes are in the store

    listed = rapi.ok("ListCallRecordings", {"call_id": call_id}, tenant.read)["recordings"]
    assert [r["id"] for r in listed] == [made["id"]]
    link = listed[0]["url"]
    with httpx.Client() as player:  # a browser: no key, only the link
        whole = player.get(link)
        assert whole.status_code == 200 and whole.content == audio
        assert whole.headers["content-type"] == "audio/wav"
        assert whole.headers["accept-ranges"] == "bytes"
        etag = whole.headers["etag"]
        middle = player.get(link, headers={"Range": "bytes=1000-1999"})
        assert middle.status_code == 206 and middle.content == audio[1000:2000]
        assert middle.headers["content-range"] == f"bytes 1000-1999/{len(audio)}"
        first = player.get(link, headers={"Range": "bytes=0-0"})
        assert first.status_code == 206 and first.content == audio[:1]
        last = player.get(link, headers={"Range": "bytes=-1"})
        assert last.status_code == 206 and last.content == audio[-1:]
        tail = player.get(link, headers={"Range": f"bytes={len(audio) - 10}-"})
        assert tail.content == audio[-10:]
        past = player.get(link, headers={"Range": f"bytes={len(audio)}-"})
        assert past.status_code == 416
        assert past.headers["content-range"] == f"bytes */{len(audio)}"
        head = player.head(link)
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-length"] == str(len(audio))
        assert player.get(link, headers={"If-None-Match": etag}).status_code == 304


def test_links_that_are_altered_expired_or_foreign_are_refused(
    rapi: Api, database_url: str, rec_server: ServerThread
) -> None:
    owner, other = new_tenant(database_url), new_tenant(database_url)
    call_id = a_call_with_a_recording(rapi, owner, "r2")
    made = upload(rapi, owner, "/r2.wav", wav(0.5), call_id=call_id).json()
    link = made["url"]
    refusals: list[httpx.Response] = []
    with httpx.Client() as player:
        assert player.get(link).status_code == 200
        tampered = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
        refusals.append(player.get(tampered))
        later = link.replace("expires=", "expires=9")  # a longer life, same signature
        refusals.append(player.get(later))
        # The same recording id under the other tenant: the signature does not hold.
        refusals.append(
            player.get(link.replace(f"/recordings/{owner.id}/", f"/recordings/{other.id}/"))
        )
        refusals.append(player.get(link.split("?")[0]))  # no signature at all
    for refused in refusals:
        assert refused.status_code == 403, refused.text
        assert refused.json()["code"] == "permission_denied"
        assert refused.json()["msg"] == refusals[0].json()["msg"]  # which check failed: not said
    # The other tenant cannot list the call's recordings either.
    rapi.error("ListCallRecordings", {"call_id": call_id}, other.read, 404, "not_found")

    # Links expire: a server whose links live 1 s.
    short = Settings(
        database_url=database_url,
        deliver=False,
        access_log=False,
        rate_limit_per_second=0,
        auth_failures_per_minute=0,
        recording_link_seconds=1,
    )
    with ServerThread(short) as server:
        api = Api(server.base_url)
        listed = api.ok("ListCallRecordings", {"call_id": call_id}, owner.read)["recordings"]
        api.close()
    expiring = listed[0]["url"].replace(server.base_url, rec_server.base_url)
    with httpx.Client() as player:
        assert player.get(expiring).status_code == 200
        time.sleep(2.1)
        assert player.get(expiring).status_code == 403


def test_uploads_that_are_refused_store_nothing(
    rapi: Api, database_url: str, storage: tuple[str, Look]
) -> None:
    tenant = new_tenant(database_url)
    call_id = a_call_with_a_recording(rapi, tenant, "r3")
    audio = wav(0.5)
    before = storage[1]()

    def refused(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
        assert response.status_code == status, response.text
        envelope: dict[str, Any] = response.json()
        assert envelope["code"] == code
        return envelope

    # Not a recording the call's CDR named.
    named = refused(
        upload(rapi, tenant, "/other.wav", audio, call_id=call_id), 400, "invalid_argument"
    )
    assert named["meta"]["field"] == "name" and "r3.wav" in named["msg"]
    # A checksum that does not match the body.
    wrong = refused(
        rapi.http.put(
            "/v1/recordings/r3.wav",
            params={"call_id": call_id},
            content=audio,
            headers={"Authorization": f"Bearer {tenant.ingest}", "X-Checksum-Sha256": "0" * 64},
        ),
        400,
        "invalid_argument",
    )
    assert wrong["meta"]["field"] == "X-Checksum-Sha256"
    # Over the size limit (1 MB here), sent with and without a length announced.
    refused(
        upload(rapi, tenant, "/r3.wav", b"\0" * 1_100_000, call_id=call_id),
        413,
        "resource_exhausted",
    )

    def chunks() -> Iterator[bytes]:
        for _ in range(20):
            yield b"\0" * 64_000

    streamed = rapi.http.put(
        "/v1/recordings/r3.wav",
        params={"call_id": call_id},
        content=chunks(),
        headers={"Authorization": f"Bearer {tenant.ingest}"},
    )
    refused(streamed, 413, "resource_exhausted")
    # A call that is not the tenant's, or not named at all; a read key.
    refused(upload(rapi, tenant, "/r3.wav", audio, source_id="nope"), 404, "not_found")
    missing = refused(upload(rapi, tenant, "/r3.wav", audio), 400, "invalid_argument")
    assert missing["meta"]["field"] == "call_id"
    refused(
        upload(rapi, tenant, "/r3.wav", audio, key=tenant.read, call_id=call_id),
        403,
        "permission_denied",
    )
    not_audio = refused(
        upload(rapi, tenant, "/r3.txt", audio, call_id=call_id), 400, "invalid_argument"
    )
    assert not_audio["meta"]["field"] == "name"

    assert storage[1]() == before  # nothing was left in the store
    assert rapi.ok("ListCallRecordings", {"call_id": call_id}, tenant.read)["recordings"] == []


def test_uploading_again_is_idempotent_and_new_bytes_replace(
    rapi: Api, database_url: str, storage: tuple[str, Look]
) -> None:
    tenant = new_tenant(database_url)
    call_id = a_call_with_a_recording(rapi, tenant, "r4")
    first, second = wav(0.5, 440), wav(0.5, 660)
    one = upload(rapi, tenant, "/r4.wav", first, call_id=call_id).json()
    again = upload(rapi, tenant, "/r4.wav", first, call_id=call_id).json()
    assert again["id"] == one["id"]
    mine = [k for k in storage[1]() if k.startswith(f"{tenant.id}/")]
    assert mine == [f"{tenant.id}/{one['id']}"]  # the same bytes are kept once
    replaced = upload(rapi, tenant, "/r4.wav", second, call_id=call_id).json()
    assert replaced["sha256"] == hashlib.sha256(second).hexdigest()
    listed = rapi.ok("ListCallRecordings", {"call_id": call_id}, tenant.read)["recordings"]
    assert [r["sha256"] for r in listed] == [replaced["sha256"]]
    with httpx.Client() as player:
        assert player.get(listed[0]["url"]).content == second
    mine = [k for k in storage[1]() if k.startswith(f"{tenant.id}/")]
    assert mine == [f"{tenant.id}/{replaced['id']}"]  # the earlier file is gone from the store


def test_call_logs_show_links_to_uploaded_recordings_and_keep_the_rest(
    rapi: Api, database_url: str
) -> None:
    tenant = new_tenant(database_url)
    named = [PBX_PATH.format("r5-a"), PBX_PATH.format("r5-b")]
    got = rapi.ingest(
        tenant.ingest, [call("r5", recording_urls=named), call("r5-none", recording_urls=named)]
    )
    call_id, other_id = str(got[0]["id"]), str(got[1]["id"])
    audio = wav(0.5)
    made = upload(rapi, tenant, named[0], audio, call_id=call_id).json()

    def shown(one: str) -> dict[str, Any]:
        page = rapi.ok("ListCallLogs", {"paging": {"limit": 100}}, tenant.read)["call_logs"]
        return next(c for c in page if c["id"] == one)

    listed = shown(call_id)
    (link,) = listed["recording_urls"]
    assert link.startswith(rapi.http.base_url.scheme + "://") and f"/{made['id']}/" in link
    assert listed["recording_sources"] == [named[1]]  # named by the PBX, never uploaded
    with httpx.Client() as player:
        assert player.get(link).content == audio
    # A call with nothing uploaded is shown as the PBX wrote it.
    untouched = shown(other_id)
    assert untouched["recording_urls"] == named and "recording_sources" not in untouched
    single = rapi.ok("GetCallLog", {"id": call_id}, tenant.read)
    assert len(single["recording_urls"]) == 1 and single["recording_sources"] == [named[1]]
    changes = rapi.ok("ListCallLogChanges", {"limit": 100}, tenant.read)["changes"]
    fed = next(c["call_log"] for c in changes if c["call_log"]["id"] == call_id)
    assert len(fed["recording_urls"]) == 1 and fed["recording_sources"] == [named[1]]


def test_erasing_a_call_deletes_its_recording_from_the_store(
    rapi: Api, database_url: str, storage: tuple[str, Look]
) -> None:
    tenant = new_tenant(database_url)
    call_id = a_call_with_a_recording(rapi, tenant, "r6")
    made = upload(rapi, tenant, "/r6.wav", wav(0.5), call_id=call_id).json()
    stored = f"{tenant.id}/{made['id']}"
    assert stored in storage[1]()
    rapi.ok("DeleteCallLogs", {"ids": [call_id]}, tenant.admin)
    with httpx.Client() as player:
        assert player.get(made["url"]).status_code == 404  # at once, before the bytes go
    eventually(lambda: stored not in storage[1]() or None, within=15)


def test_retention_deletes_recordings(fresh_database_url: str, storage: tuple[str, Look]) -> None:
    url, look = storage
    settings = Settings(database_url=fresh_database_url, access_log=False, recordings_url=url)
    now = dt.datetime.now(dt.UTC)
    with ServerThread(settings) as server:
        api = Api(server.base_url)
        tenant = new_tenant(fresh_database_url)
        got = api.ingest(
            tenant.ingest,
            [
                call("old", started_at=(now - dt.timedelta(days=500)).isoformat(),
                     ended_at=(now - dt.timedelta(days=500)).isoformat()),
                call("new", started_at=(now - dt.timedelta(days=5)).isoformat(),
                     ended_at=(now - dt.timedelta(days=5)).isoformat()),
            ],
        )  # fmt: skip
        kept = {}
        for item in got:
            made = upload(
                api, tenant, f"/{item['source_id']}.wav", wav(0.2), call_id=str(item["id"])
            )
            assert made.status_code == 200, made.text
            kept[item["source_id"]] = f"{tenant.id}/{made.json()['id']}"
        api.close()
    assert {kept["old"], kept["new"]} <= set(look())
    os.environ["CALLHISTORY_RECORDINGS_URL"] = url
    try:
        result = cli_json(
            "retention", "apply", "--older-than", "400d", "--database", fresh_database_url
        )
    finally:
        del os.environ["CALLHISTORY_RECORDINGS_URL"]
    assert result == {"removed": 1}
    left = set(look())
    assert kept["old"] not in left and kept["new"] in left  # the bytes are gone, not only the row


def test_the_python_client_uploads_lists_and_downloads(
    rapi: Api, database_url: str, rec_server: ServerThread, tmp_path: Path
) -> None:
    tenant = new_tenant(database_url)
    call_id = a_call_with_a_recording(rapi, tenant, "r7")
    audio = wav(1.5)
    source = tmp_path / "r7.wav"
    source.write_bytes(audio)
    with Client(rec_server.base_url, tenant.ingest) as uploader:
        made = uploader.upload_recording(source, source_id="r7", name=PBX_PATH.format("r7"))
        assert made.size == len(audio) and made.call_id == call_id
        with pytest.raises(InvalidArgumentError) as refused:
            uploader.upload_recording(source, call_id=call_id, name="/elsewhere/other.wav")
        assert refused.value.meta["field"] == "name"
    with Client(rec_server.base_url, tenant.read) as reader:
        (listed,) = reader.call_recordings(call_id)
        assert listed.id == made.id
        saved = tmp_path / "saved.wav"
        assert reader.download_recording(listed, saved) == len(audio)
        assert saved.read_bytes() == audio

    async def in_async() -> bytes:
        async with AsyncClient(rec_server.base_url, tenant.read) as reader:
            (again,) = await reader.call_recordings(call_id)
            path = tmp_path / "async.wav"
            await reader.download_recording(again.url, path)
            return path.read_bytes()

    assert asyncio.run(in_async()) == audio


def _settled(*paths: Path) -> None:
    """Files written when the calls ended, as a PBX writes them (and more than 2 s ago: the
    sync leaves younger files for later)."""
    past = dt.datetime.fromisoformat(call("x")["ended_at"]).timestamp()
    for path in paths:
        os.utime(path, (past, past))


def test_sync_uploads_a_pbx_directory_once(
    rapi: Api, database_url: str, storage: tuple[str, Look], tmp_path: Path
) -> None:
    url, look = storage
    tenant = new_tenant(database_url)
    got = rapi.ingest(
        tenant.ingest,
        [
            call("s1", recording_urls=[PBX_PATH.format("s1-mix")]),  # named by the CDR
            call("4f1c7d1e-0a7b-4c1e-9d3e-2f6a1b0c9d8e"),  # named by the call's uuid
            call("s3", recording_urls=[PBX_PATH.format("s3-never")]),  # never recorded
        ],
    )
    by_source = {item["source_id"]: str(item["id"]) for item in got}
    day = tmp_path / "2025-05-01"
    day.mkdir()
    files = {
        "s1-mix.wav": wav(0.5, 300),
        "4f1c7d1e-0a7b-4c1e-9d3e-2f6a1b0c9d8e.wav": wav(0.5, 500),
        "nobody.wav": wav(0.2),
    }
    for name, audio in files.items():
        (day / name).write_bytes(audio)
    (day / "notes.txt").write_text("not a recording")
    _settled(*day.iterdir())
    command = (
        "recordings",
        "sync",
        str(tmp_path),
        "--tenant",
        tenant.id,
        "--database",
        database_url,
    )
    os.environ["CALLHISTORY_RECORDINGS_URL"] = url
    try:
        first = CliRunner().invoke(cli_app, [*command, "--json"])
        again = cli_json(*command)
    finally:
        del os.environ["CALLHISTORY_RECORDINGS_URL"]
    assert first.exit_code == 0, first.output
    assert msgspec.json.decode(first.stdout) == {"uploaded": 2, "present": 0, "unmatched": 1}
    assert "nobody.wav: not uploaded: no call names it" in first.stderr
    assert again == {"uploaded": 0, "present": 2, "unmatched": 1}  # nothing sent twice
    assert len([k for k in look() if k.startswith(f"{tenant.id}/")]) == 2
    for source_id, name in (("s1", "s1-mix.wav"), ("4f1c7d1e-0a7b-4c1e-9d3e-2f6a1b0c9d8e", "")):
        (kept,) = rapi.ok("ListCallRecordings", {"call_id": by_source[source_id]}, tenant.read)[
            "recordings"
        ]
        with httpx.Client() as player:
            assert player.get(kept["url"]).content == files[name or f"{source_id}.wav"]
    # A call whose CDR named no recording shows the uploaded one's link.
    shown = rapi.ok(
        "GetCallLog", {"source_id": "4f1c7d1e-0a7b-4c1e-9d3e-2f6a1b0c9d8e"}, tenant.read
    )
    assert len(shown["recording_urls"]) == 1 and shown["recording_sources"] == []


def test_sync_watch_uploads_files_as_they_come(
    rapi: Api, database_url: str, storage: tuple[str, Look], tmp_path: Path
) -> None:
    tenant = new_tenant(database_url)
    call_id = a_call_with_a_recording(rapi, tenant, "w1")
    watcher = subprocess.Popen(
        [sys.executable, "-m", "callhistory", "recordings", "sync", str(tmp_path), "--watch",
         "--every", "0.2", "--tenant", tenant.id, "--database", database_url],
        env={**os.environ, "CALLHISTORY_RECORDINGS_URL": storage[0]},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        time.sleep(1)
        (tmp_path / "w1.wav").write_bytes(wav(0.3))
        listed = eventually(
            lambda: rapi.ok("ListCallRecordings", {"call_id": call_id}, tenant.read)["recordings"],
            within=30,
            every=0.2,
        )
        assert listed[0]["name"] == "w1.wav"
        watcher.send_signal(signal.SIGTERM)
        out, err = watcher.communicate(timeout=30)
        assert watcher.returncode == 0, err
        assert b"uploaded 1, already there 0, not matched 0" in out
    finally:
        watcher.kill()


def test_check_reports_orphan_and_missing_files(
    rapi: Api, database_url: str, storage: tuple[str, Look]
) -> None:
    url, look = storage
    tenant = new_tenant(database_url)
    kept_call = a_call_with_a_recording(rapi, tenant, "c1")
    lost_call = a_call_with_a_recording(rapi, tenant, "c2")
    upload(rapi, tenant, "/c1.wav", wav(0.2), call_id=kept_call)
    lost = upload(rapi, tenant, "/c2.wav", wav(0.2), call_id=lost_call).json()
    store = Storage(url)

    async def damage() -> None:
        async def one() -> AsyncIterator[bytes]:
            yield b"an upload cut off"

        await store.put(f"{tenant.id}/1", one(), content_type="audio/wav")  # no row knows it
        await store.delete(f"{tenant.id}/{lost['id']}")  # a row whose file is gone

    asyncio.run(damage())
    with httpx.Client() as player:  # its link: a clear 404, not a broken download
        gone = player.get(lost["url"])
    assert gone.status_code == 404 and gone.json()["code"] == "not_found", gone.text
    command = ["recordings", "check", "--database", database_url, "--json"]
    os.environ["CALLHISTORY_RECORDINGS_URL"] = url
    try:
        found = CliRunner().invoke(cli_app, command)
        cleaned = CliRunner().invoke(cli_app, [*command, "--delete", "--min-age-minutes", "0"])
    finally:
        del os.environ["CALLHISTORY_RECORDINGS_URL"]
    assert found.exit_code == 1, found.output
    summary = msgspec.json.decode(found.stdout)
    assert summary["orphans"] >= 1 and summary["missing"] >= 1 and summary["deleted"] == 0
    assert f"{tenant.id}/1: a file no recording row knows" in found.stderr
    assert f"{tenant.id}/{lost['id']}: a recording whose file is missing" in found.stderr
    assert f"{tenant.id}/1" not in look()  # --delete removed the orphan
    assert msgspec.json.decode(cleaned.stdout)["deleted"] >= 1


def test_an_upload_is_a_change_those_who_sync_see(rapi: Api, database_url: str) -> None:
    tenant = new_tenant(database_url)
    call_id = a_call_with_a_recording(rapi, tenant, "f1")
    before = rapi.ok("GetCallLog", {"id": call_id}, tenant.read)
    token = ""
    while True:  # caught up with the feed
        page = rapi.ok("ListCallLogChanges", {"since": token, "limit": 1000}, tenant.read)
        token = page["next"]
        if not page["changes"]:
            break
    upload(rapi, tenant, "/f1.wav", wav(0.2), call_id=call_id)
    changes = rapi.ok("ListCallLogChanges", {"since": token}, tenant.read)["changes"]
    (changed,) = [c["call_log"] for c in changes]
    assert changed["id"] == call_id and changed["updated_at"] > before["updated_at"]
    assert "/v1/recordings/" in changed["recording_urls"][0]
    upload(rapi, tenant, "/f1.wav", wav(0.2), call_id=call_id)  # the same file again
    after = rapi.ok("ListCallLogChanges", {"since": token}, tenant.read)
    assert len(after["changes"]) == 1  # no new change


def test_exports_link_uploaded_recordings(rapi: Api, database_url: str) -> None:
    tenant = new_tenant(database_url)
    named = [PBX_PATH.format("x1"), PBX_PATH.format("x1-b")]
    got = rapi.ingest(tenant.ingest, [call("x1", recording_urls=named)])
    made = upload(rapi, tenant, named[0], wav(0.2), call_id=str(got[0]["id"])).json()
    headers = {"Authorization": f"Bearer {tenant.read}"}
    lines = rapi.http.post("/v1/export/call_logs.jsonl", json={}, headers=headers)
    (exported,) = [msgspec.json.decode(line) for line in lines.content.splitlines()]
    assert f"/{made['id']}/x1.wav?" in exported["recording_urls"][0]
    assert exported["recording_sources"] == [named[1]]
    table = rapi.http.post("/v1/export/call_logs.csv", json={}, headers=headers).text
    assert f"/{made['id']}/x1.wav?expires=" in table
    with httpx.Client() as player:
        assert player.get(exported["recording_urls"][0]).status_code == 200


def mp3(seconds: float) -> bytes:
    """An MPEG-1 Layer III stream (128 kbit/s, 44.1 kHz, mono) of silent frames: each a
    frame header and zeroed side information, which decoders play as silence."""
    frame = bytes([0xFF, 0xFB, 0x90, 0xC4]) + bytes(417 - 4)
    return frame * max(1, round(seconds * 44100 / 1152))


def test_an_mp3_is_kept_and_served_as_audio_mpeg(rapi: Api, database_url: str) -> None:
    tenant = new_tenant(database_url)
    got = rapi.ingest(
        tenant.ingest, [call("m1", recording_urls=["/var/spool/asterisk/monitor/m1.mp3"])]
    )
    audio = mp3(2)
    made = upload(rapi, tenant, "/var/spool/asterisk/monitor/m1.mp3", audio, source_id="m1")
    assert made.status_code == 200, made.text
    assert made.json()["content_type"] == "audio/mpeg" and made.json()["call_id"] == str(
        got[0]["id"]
    )
    with httpx.Client() as player:
        served = player.get(made.json()["url"], headers={"Range": "bytes=417-833"})
    assert served.status_code == 206 and served.headers["content-type"] == "audio/mpeg"
    assert served.content == audio[417:834]


def test_webhook_links(fresh_database_url: str, storage: tuple[str, Look]) -> None:
    """Webhooks carry links to recordings when the service knows its public address."""
    settings = Settings(
        database_url=fresh_database_url,
        access_log=False,
        recordings_url=storage[0],
        webhook_allow="127.0.0.1",
        webhook_poll_ms=50,
        public_url="https://calls.example.vn",
    )
    with Receiver() as receiver, ServerThread(settings) as server:
        api = Api(server.base_url)
        tenant = new_tenant(fresh_database_url)
        api.ok("CreateWebhookEndpoint", {"url": receiver.url}, tenant.admin)
        call_id = a_call_with_a_recording(api, tenant, "h1")
        made = upload(api, tenant, "/h1.wav", wav(0.2), call_id=call_id).json()
        api.close()

        def updated() -> Any:
            events = [r.json for r in receiver.events() if r.json["type"] == "call_log.updated"]
            return events[-1] if events else None

        event = eventually(updated, within=15)
    (link,) = event["data"]["recording_urls"]
    assert link.startswith(f"https://calls.example.vn/v1/recordings/{tenant.id}/{made['id']}/")
    assert event["data"]["recording_sources"] == []


def test_a_store_url_that_cannot_work_is_refused_in_one_line(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CALLHISTORY_RECORDINGS_URL", "ftp://recordings.example.vn/calls")
    result = CliRunner().invoke(cli_app, ["recordings", "check", "--database", database_url])
    assert result.exit_code == 2 and "CALLHISTORY_RECORDINGS_URL" in result.output, result.output
    assert "Traceback" not in result.output
    with pytest.raises(ConfigError, match="CALLHISTORY_RECORDINGS_URL"):  # serve: at start-up
        create_app(Settings(database_url=database_url, recordings_url="s3://b/p?secret=x"))
