"""The call page plays an uploaded recording in Chromium and seeks in it (Range requests to a
signed link); what the PBX named but nobody uploaded is listed, not played. A module of its
own: the browser's event loop would stop the other modules' ``asyncio.run``."""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from callhistory.kit.config import Settings
from tests.harness import ServerThread, new_tenant
from tests.test_ingest import call
from tests.test_recordings import PBX_PATH, wav
from tests.test_web import browser, page, sign_in  # noqa: F401 (fixtures)


@pytest.fixture(scope="module")
def recorded(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    settings = Settings(
        database_url=database_url,
        deliver=False,
        access_log=False,
        rate_limit_per_second=0,
        auth_failures_per_minute=0,
        recordings_url=Path(tmp_path_factory.mktemp("recordings")).as_uri(),
    )
    with ServerThread(settings) as server, httpx.Client(base_url=server.base_url) as http:
        # In a thread: the browser of an earlier parameter keeps an event loop running here.
        tenant = ThreadPoolExecutor(1).submit(new_tenant, database_url).result()
        named = [PBX_PATH.format("p1"), PBX_PATH.format("p1-b")]
        body = {"call_logs": [call("p1", caller="0977000888", recording_urls=named)]}
        stored = http.post(
            "/v1/pbx.Etelecom/IngestCallLogs",
            json=body,
            headers={"Authorization": f"Bearer {tenant.ingest}"},
        )
        assert stored.status_code == 200, stored.text
        sent = http.put(
            "/v1/recordings" + named[0],
            params={"source_id": "p1"},
            content=wav(4),
            headers={"Authorization": f"Bearer {tenant.ingest}"},
        )
        assert sent.status_code == 200, sent.text
        yield server, tenant


def test_the_page_plays_an_uploaded_recording_and_seeks(
    recorded: Any,
    page: Any,  # noqa: F811 (the fixture)
) -> None:
    server, tenant = recorded
    ranges: list[str] = []

    def seen(request: Any) -> None:
        if "/v1/recordings/" in request.url:
            ranges.append(request.all_headers().get("range", ""))

    page.on("request", seen)
    sign_in(page, server.base_url, tenant.read, "/calls?call_number=0977000888")
    page.locator("button.legs-toggle").first.click()
    legs = page.locator("tr.legs:not([hidden])")
    assert "p1-b.wav" in legs.locator("p.sources").inner_text()  # named, never uploaded
    player = legs.locator("audio")
    assert player.count() == 1 and "/v1/recordings/" in str(player.get_attribute("src"))
    duration, position = player.evaluate(
        """async (audio) => {
            const once = (name) => new Promise((done) =>
                audio.addEventListener(name, done, { once: true }));
            audio.preload = "auto";
            audio.load();
            await once("loadedmetadata");
            audio.currentTime = 3;
            await once("seeked");
            return [audio.duration, audio.currentTime];
        }"""
    )
    assert abs(duration - 4) < 0.05 and abs(position - 3) < 0.05
    assert any(value.startswith("bytes=") for value in ranges), ranges  # it asked for ranges
