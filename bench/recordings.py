"""`make bench`'s recording rows: a 50 MB recording uploaded and served by `serve` (1 worker,
SQLite, recordings in a local directory): upload and download throughput, the server's RSS
while 20 clients download it at once, and the time to the first byte of a Range request in the
middle of the file."""

from __future__ import annotations

import statistics
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench.data import Dataset
from tests.harness import new_tenant
from tests.test_ingest import call

SIZE = 50 * 1000 * 1000
CLIENTS = 20
TTFB_REQUESTS = 50


def _wav(size: int) -> bytes:
    """A WAV header (8 kHz mono 16-bit) and ``size`` bytes of samples."""
    header = (
        b"RIFF" + (36 + size).to_bytes(4, "little") + b"WAVEfmt " + (16).to_bytes(4, "little")
        + (1).to_bytes(2, "little") + (1).to_bytes(2, "little") + (8000).to_bytes(4, "little")
        + (16000).to_bytes(4, "little") + (2).to_bytes(2, "little") + (16).to_bytes(2, "little")
        + b"data" + size.to_bytes(4, "little")
    )  # fmt: skip
    return header + bytes(range(256)) * (size // 256) + bytes(size % 256)


def recordings() -> dict[str, float]:
    from bench.run import rss_mb, server

    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as scratch:
        url = f"sqlite:///{scratch}/bench-recordings.db"
        data = Dataset(backend="sqlite", url=url, total=0, tenants=[])
        env = {"CALLHISTORY_RECORDINGS_URL": Path(scratch, "store").as_uri()}
        with (
            server(data, 1, env=env) as (base, pids),
            httpx.Client(base_url=base, timeout=120) as http,
        ):
            tenant = new_tenant(url, name="recordings bench")
            named = "/var/lib/freeswitch/recordings/bench.wav"
            stored = http.post(
                "/v1/pbx.Etelecom/IngestCallLogs",
                json={"call_logs": [call("bench", recording_urls=[named])]},
                headers={"Authorization": f"Bearer {tenant.ingest}"},
            )
            assert stored.status_code == 200, stored.text
            audio = _wav(SIZE)
            began = time.perf_counter()
            sent = http.put(
                "/v1/recordings" + named,
                params={"source_id": "bench"},
                content=audio,
                headers={"Authorization": f"Bearer {tenant.ingest}"},
            )
            out["upload_mb_s"] = len(audio) / 1e6 / (time.perf_counter() - began)
            assert sent.status_code == 200, sent.text
            link = sent.json()["url"]
            out["rss_idle_mb"] = rss_mb(pids[0])

            def fetch() -> int:
                got = 0
                with httpx.stream("GET", link, timeout=300) as response:
                    for chunk in response.iter_bytes():
                        got += len(chunk)
                return got

            began = time.perf_counter()
            assert fetch() == len(audio)
            out["download_mb_s"] = len(audio) / 1e6 / (time.perf_counter() - began)
            peak = [0.0]
            done = threading.Event()

            def sample() -> None:
                while not done.is_set():
                    peak[0] = max(peak[0], rss_mb(pids[0]))
                    time.sleep(0.05)

            sampler = threading.Thread(target=sample)
            sampler.start()
            threads = [threading.Thread(target=fetch) for _ in range(CLIENTS)]
            began = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            spent = time.perf_counter() - began
            done.set()
            sampler.join()
            out["concurrent_mb_s"] = CLIENTS * len(audio) / 1e6 / spent
            out["rss_peak_mb"] = peak[0]
            waits = []
            middle = len(audio) // 2
            with httpx.Client(timeout=60) as player:
                for i in range(TTFB_REQUESTS):
                    start = middle + i * 4096
                    began = time.perf_counter()
                    with player.stream(
                        "GET", link, headers={"Range": f"bytes={start}-{start + 65535}"}
                    ) as response:
                        assert response.status_code == 206
                        for _ in response.iter_raw():
                            if not waits or len(waits) == i:
                                waits.append((time.perf_counter() - began) * 1000)
            out["ttfb_p50_ms"] = statistics.median(waits)
            out["ttfb_max_ms"] = max(waits)
    return out


if __name__ == "__main__":
    for name, value in recordings().items():
        print(f"{name:20s} {value:10.1f}")
