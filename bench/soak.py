"""`make soak`: a bounded load at a fixed rate against a server on loopback.

A demo tenant on a fresh SQLite file; a separate load process mixes ListCallLogs pages (with
random filters, following `next`) and IngestCallLogs batches at SOAK_RATE requests/s for
SOAK_SECONDS (default 300). Reports errors, p50/p99, and the server's RSS and the size of SQLite's
-wal file over time; exits 1 on any error, if RSS grew by more than 20% after the first minute,
or if the -wal file ended above 64 MB (it is checkpointed and started over every 1,000 pages).
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

from bench.run import rss_mb
from tests.harness import start_serve

SECONDS = int(os.environ.get("SOAK_SECONDS", 300))
RATE = float(os.environ.get("SOAK_RATE", 100))
WAL_LIMIT_MB = 64
FILTERS = [
    {},
    {"direction": "in"},
    {"call_state": "not_answered"},
    {"call_number": "0901234567"},
    {"duration": {"comparison": "greater_than", "value": 60}},
    {"date_from": "2026-10-01"},
]


def load(base: str, read_key: str, ingest_key: str, out: Path) -> None:
    """The load, meant to run in its own process: fixed-rate requests, one JSON line each."""
    rng = random.Random(1)
    interval = 1 / RATE
    ends = time.monotonic() + SECONDS
    cursor, cursor_filter = "", {}
    serial = 0
    with httpx.Client(base_url=base, timeout=30) as http, out.open("w") as log:
        next_at = time.monotonic()
        while time.monotonic() < ends:
            roll = rng.random()
            if roll < 0.1:
                serial += 1
                items = [
                    {
                        "source_id": f"soak-{serial}-{i}",
                        "started_at": "2026-11-01T09:00:00+07:00",
                        "caller": f"09{rng.randrange(10**8):08d}",
                        "direction": "in",
                    }
                    for i in range(50)
                ]
                path, key, body = (
                    "/v1/pbx.Etelecom/IngestCallLogs",
                    ingest_key,
                    {"call_logs": items},
                )
            else:
                paging = {"limit": 100, **({"after": cursor} if cursor and roll < 0.3 else {})}
                f = cursor_filter if "after" in paging else rng.choice(FILTERS)
                path, key, body = (
                    "/v1/shop.Etelecom/ListCallLogs",
                    read_key,
                    {"filter": f, "paging": paging},
                )
            began = time.perf_counter()
            try:
                response = http.post(path, json=body, headers={"Authorization": f"Bearer {key}"})
                status = response.status_code
                if status == 200 and path.endswith("ListCallLogs"):
                    cursor, cursor_filter = response.json()["paging"]["next"], f
            except httpx.HTTPError:
                status = 0
            log.write(
                json.dumps(
                    {
                        "t": time.monotonic(),
                        "ms": (time.perf_counter() - began) * 1000,
                        "status": status,
                    }
                )
                + "\n"
            )
            next_at += interval
            time.sleep(max(0.0, next_at - time.monotonic()))


def main() -> int:
    workdir = Path(tempfile.mkdtemp(prefix="soak-"))
    url = f"sqlite:///{workdir / 'soak.db'}"
    env = {**os.environ, "CALLHISTORY_RATE_LIMIT_PER_SECOND": "0"}
    subprocess.run(
        [sys.executable, "-m", "callhistory", "migrate", "--database", url], check=True, env=env
    )
    demo = subprocess.run(
        [
            sys.executable,
            "-m",
            "callhistory",
            "demo",
            "--calls",
            "20000",
            "--database",
            url,
            "--json",
        ],
        check=True,
        capture_output=True,
        text=True,
        env=env,
    )
    keys = {k["scope"]: k["key"] for k in json.loads(demo.stdout)["keys"]}
    os.environ["CALLHISTORY_RATE_LIMIT_PER_SECOND"] = "0"
    process, base = start_serve(url)
    samples: list[tuple[float, float, float]] = []
    wal = workdir / "soak.db-wal"
    stop = threading.Event()

    def sample() -> None:
        began = time.monotonic()
        while not stop.wait(10):
            wal_mb = wal.stat().st_size / 2**20 if wal.exists() else 0.0
            samples.append((time.monotonic() - began, rss_mb(process.pid), wal_mb))

    sampler = threading.Thread(target=sample)
    sampler.start()
    out = workdir / "requests.jsonl"
    loader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"from bench.soak import load; from pathlib import Path; "
            f"load({base!r}, {keys['read']!r}, {keys['ingest']!r}, Path({str(out)!r}))",
        ],
    )
    loader.wait()
    stop.set()
    sampler.join()
    process.terminate()
    process.wait(timeout=30)
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    errors = [r for r in rows if r["status"] != 200]
    ms = sorted(r["ms"] for r in rows)
    statuses = sorted({r["status"] for r in errors})
    print(
        f"soak: {len(rows)} requests in {SECONDS}s at {RATE:g}/s, {len(errors)} errors {statuses}"
    )
    print(f"latency p50 {ms[len(ms) // 2]:.2f} ms, p99 {ms[int(len(ms) * 0.99)]:.2f} ms")
    print("server RSS over time (s, MB): " + ", ".join(f"{t:.0f}:{m:.0f}" for t, m, _ in samples))
    print("-wal file over time (s, MB): " + ", ".join(f"{t:.0f}:{w:.1f}" for t, _, w in samples))
    settled = [m for t, m, _ in samples if t >= 60] or [m for _, m, _ in samples]
    growth = (settled[-1] - settled[0]) / settled[0] if settled else 0.0
    print(f"RSS growth after the first minute: {growth:.1%}")
    wal_end = samples[-1][2] if samples else 0.0
    return 1 if errors or growth > 0.2 or wal_end > WAL_LIMIT_MB else 0


if __name__ == "__main__":
    sys.exit(main())
