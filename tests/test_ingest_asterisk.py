"""Asterisk Master.csv imported with the CLI, compared field by field with what was recorded."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from callhistory.cli import app
from tests.fixtures.asterisk import csv_row, custom_row
from tests.harness import Api, Tenant, new_tenant

LOCAL = dt.timezone(dt.timedelta(hours=7))  # the tenant's zone, Asia/Ho_Chi_Minh
T = dt.datetime(2025, 10, 14, 9, 12, 3, tzinfo=LOCAL)


def s(seconds: int) -> dt.datetime:
    return T + dt.timedelta(seconds=seconds)


def z(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def run_import(path: Path, tenant: Tenant, database_url: str, *extra: str) -> Any:
    result = CliRunner().invoke(
        app,
        [
            "import",
            "asterisk-csv",
            str(path),
            "--tenant",
            tenant.id,
            "--database",
            database_url,
            *extra,
        ],
    )
    return result


def calls(api: Api, tenant: Tenant) -> list[dict[str, Any]]:
    return [r for p in api.walk(tenant.read, {"paging": {"limit": 1000}}) for r in p]


def by_caller(api: Api, tenant: Tenant) -> dict[str, dict[str, Any]]:
    return {c["caller"] + "→" + c["callee"]: c for c in calls(api, tenant)}


def scenarios() -> list[str]:
    trunk = "PJSIP/viettel-trunk-0000000{}"
    return [
        # answered inbound through the hotline
        csv_row(
            src="0912345678",
            dst="02873001234",
            channel=trunk.format(1),
            dstchannel="PJSIP/101-00000002",
            start=s(0),
            answer=s(7),
            end=s(67),
            disposition="ANSWERED",
            uniqueid="1760408523.1",
            linkedid="1760408523.1",
            sequence=1,
            context="from-trunk",
        ),
        # missed: rang 101, nobody answered
        csv_row(
            src="0912000222",
            dst="02873001234",
            channel=trunk.format(3),
            dstchannel="PJSIP/101-00000004",
            start=s(100),
            answer=None,
            end=s(125),
            disposition="NO ANSWER",
            uniqueid="1760408623.3",
            linkedid="1760408623.3",
            sequence=3,
            context="from-trunk",
        ),
        # busy
        csv_row(
            src="0912000333",
            dst="02873001234",
            channel=trunk.format(5),
            dstchannel="PJSIP/102-00000006",
            start=s(200),
            answer=None,
            end=s(202),
            disposition="BUSY",
            uniqueid="1760408723.5",
            linkedid="1760408723.5",
            sequence=5,
            context="from-trunk",
        ),
        # ring group: three phones, 102 answers
        csv_row(
            src="0903111222",
            dst="600",
            channel=trunk.format(7),
            dstchannel="PJSIP/101-00000008",
            start=s(300),
            answer=None,
            end=s(309),
            disposition="NO ANSWER",
            uniqueid="1760408823.7",
            linkedid="1760408823.7",
            sequence=7,
            context="from-trunk",
        ),
        csv_row(
            src="0903111222",
            dst="600",
            channel=trunk.format(7),
            dstchannel="PJSIP/102-00000009",
            start=s(300),
            answer=s(309),
            end=s(429),
            disposition="ANSWERED",
            uniqueid="1760408823.7",
            linkedid="1760408823.7",
            sequence=8,
            context="from-trunk",
        ),
        csv_row(
            src="0903111222",
            dst="600",
            channel=trunk.format(7),
            dstchannel="PJSIP/103-0000000a",
            start=s(300),
            answer=None,
            end=s(309),
            disposition="NO ANSWER",
            uniqueid="1760408823.7",
            linkedid="1760408823.7",
            sequence=9,
        ),
        # outbound through a trunk
        csv_row(
            src="101",
            dst="0987654321",
            channel="PJSIP/101-0000000b",
            dstchannel="PJSIP/viettel-trunk-0000000c",
            lastdata="PJSIP/0987654321@viettel-trunk,60,T",
            start=s(500),
            answer=s(512),
            end=s(552),
            disposition="ANSWERED",
            uniqueid="1760409023.11",
            linkedid="1760409023.11",
            sequence=11,
        ),
        # internal, extension to extension
        csv_row(
            src="101",
            dst="102",
            channel="PJSIP/101-0000000d",
            dstchannel="PJSIP/102-0000000e",
            start=s(600),
            answer=s(603),
            end=s(633),
            disposition="ANSWERED",
            uniqueid="1760409123.13",
            linkedid="1760409123.13",
            sequence=13,
        ),
        # transferred: the customer talks to 101, who transfers to 102 (same linkedid)
        csv_row(
            src="0934555666",
            dst="02873001234",
            channel=trunk.format(15),
            dstchannel="PJSIP/101-00000010",
            start=s(700),
            answer=s(704),
            end=s(740),
            disposition="ANSWERED",
            uniqueid="1760409223.15",
            linkedid="1760409223.15",
            sequence=15,
            context="from-trunk",
        ),
        csv_row(
            src="0934555666",
            dst="02873001234",
            channel=trunk.format(15),
            dstchannel="PJSIP/102-00000011",
            start=s(738),
            answer=s(741),
            end=s(800),
            disposition="ANSWERED",
            uniqueid="1760409223.17",
            linkedid="1760409223.15",
            sequence=17,
            context="from-trunk",
        ),
        # IVR only: answered by the PBX, no phone rang
        csv_row(
            src="0977000111",
            dst="02873001234",
            channel=trunk.format(19),
            dstchannel="",
            start=s(900),
            answer=s(901),
            end=s(931),
            disposition="ANSWERED",
            uniqueid="1760409423.19",
            linkedid="1760409423.19",
            sequence=19,
            lastapp="Playback",
            context="from-trunk",
        ),
    ]


def test_master_csv_scenarios(api: Api, tenant: Tenant, database_url: str, tmp_path: Path) -> None:
    hotline = api.ok("CreateHotline", {"hotline": "02873001234"}, tenant.admin)
    path = tmp_path / "Master.csv"
    path.write_text("\n".join(scenarios()) + "\n")
    result = run_import(path, tenant, database_url)
    assert result.exit_code == 0, result.output
    assert "imported 8, updated 0, unchanged 0, rejected 0" in result.output
    got = by_caller(api, tenant)
    assert len(got) == 8

    answered = got["0912345678→02873001234"]
    assert (answered["direction"], answered["call_state"], answered["call_status"]) == (
        "in",
        "answered",
        "P",
    )
    assert (answered["started_at"], answered["ended_at"], answered["duration"]) == (
        z(s(0)),
        z(s(67)),
        60,
    )
    assert answered["hotline_id"] == hotline["id"]
    assert answered["call_targets"] == [
        {
            "add_time": z(s(0)),
            "answered_time": z(s(7)),
            "end_reason": "ANSWERED",
            "ended_time": z(s(67)),
            "fail_code": 0,
            "ring_duration": 7,
            "ring_time": z(s(0)),
            "status": "answered",
            "target_number": "101",
            "trunk_name": "",
        }
    ]

    missed = got["0912000222→02873001234"]
    assert (missed["call_state"], missed["call_status"], missed["duration"]) == (
        "not_answered",
        "N",
        0,
    )
    assert [
        (t["target_number"], t["status"], t["ring_duration"]) for t in missed["call_targets"]
    ] == [("101", "no_answer", 25)]
    assert got["0912000333→02873001234"]["call_targets"][0]["status"] == "busy"

    group = got["0903111222→600"]
    assert sorted((t["target_number"], t["status"]) for t in group["call_targets"]) == [
        ("101", "cancelled"),  # rang alongside 102 and stopped when it answered
        ("102", "answered"),
        ("103", "cancelled"),
    ]
    assert (group["call_state"], group["duration"]) == ("answered", 120)

    out = got["101→0987654321"]
    assert out["direction"] == "out"
    assert [(t["target_number"], t["trunk_name"]) for t in out["call_targets"]] == [
        ("0987654321", "viettel-trunk")
    ]
    assert got["101→102"]["direction"] == "ext"

    transferred = got["0934555666→02873001234"]
    assert [(t["target_number"], t["status"]) for t in transferred["call_targets"]] == [
        ("101", "answered"),
        ("102", "answered"),
    ]
    assert (transferred["started_at"], transferred["ended_at"], transferred["duration"]) == (
        z(s(700)),
        z(s(800)),
        36 + 59,  # each row's billsec: 101 talked 36 s, 102 59 s after the transfer
    )

    ivr = got["0977000111→02873001234"]
    assert (ivr["call_state"], ivr["duration"], ivr["call_targets"]) == ("answered", 30, [])


def test_reimport_changes_nothing(
    api: Api, tenant: Tenant, database_url: str, tmp_path: Path
) -> None:
    path = tmp_path / "Master.csv"
    path.write_text("\n".join(scenarios()) + "\n")
    assert run_import(path, tenant, database_url).exit_code == 0
    before = calls(api, tenant)
    again = run_import(path, tenant, database_url)
    assert "imported 0, updated 0, unchanged 8, rejected 0" in again.output
    assert calls(api, tenant) == before


def test_cdr_custom_sample_mapping_and_utc(
    api: Api, tenant: Tenant, database_url: str, tmp_path: Path
) -> None:
    start = dt.datetime(2025, 10, 14, 2, 0, 0)
    path = tmp_path / "Master.csv"
    path.write_text(
        custom_row(
            src="0912345678",
            dst="19006868",
            channel="SIP/trunk-00000001",
            dstchannel="SIP/105-00000002",
            start=start,
            answer=start + dt.timedelta(seconds=4),
            end=start + dt.timedelta(seconds=64),
            disposition="ANSWERED",
            uniqueid="1760407200.1",
            sequence=1,
        )
        + "\n"
    )
    result = run_import(path, tenant, database_url, "--timezone", "UTC")
    assert result.exit_code == 0, result.output
    (call,) = calls(api, tenant)
    assert (call["started_at"], call["duration"]) == ("2025-10-14T02:00:00Z", 60)
    assert call["call_targets"][0]["target_number"] == "105"


def test_bad_rows_are_reported_with_their_line_and_do_not_stop_the_import(
    api: Api, tenant: Tenant, database_url: str, tmp_path: Path
) -> None:
    rows = scenarios()
    rows.insert(1, '"only","three","columns"')
    rows.insert(3, rows[0].replace("2025-10-14 09:12:03", "yesterday", 1))
    rows.insert(5, rows[0].replace('"ANSWERED"', '"EXPLODED"'))
    path = tmp_path / "Master.csv"
    path.write_text("\n".join(rows) + "\n")
    result = run_import(path, tenant, database_url)
    assert result.exit_code == 1
    assert "Master.csv:2: rejected: 3 columns" in result.output
    assert "Master.csv:4: rejected: start 'yesterday' is not a time" in result.output
    assert "Master.csv:6: rejected: disposition 'EXPLODED' is unknown" in result.output
    assert "imported 8, updated 0, unchanged 0, rejected 3" in result.output
    assert len(calls(api, tenant)) == 8


def test_a_call_refused_when_its_rows_are_put_together_is_reported_and_the_rest_stored(
    api: Api, tenant: Tenant, database_url: str, tmp_path: Path
) -> None:
    """A row that parses but makes a call the store refuses (a 100-digit caller): its line is
    reported, the file's other calls are stored."""
    rows = scenarios()
    long_caller = "9" * 100
    rows.insert(
        2,
        rows[0]
        .replace("0912345678", long_caller)
        .replace("1760408523.1", "1760408999.9")
        .replace("2025-10-14 09:12:03", "2025-10-14 09:40:03"),
    )
    path = tmp_path / "Master.csv"
    path.write_text("\n".join(rows) + "\n")
    result = run_import(path, tenant, database_url)
    assert result.exit_code == 1, result.output
    assert "Master.csv:3: rejected: call_logs[" in result.output
    assert "caller" in result.output
    assert "imported 8, updated 0, unchanged 0, rejected 1" in result.output
    assert "Traceback" not in result.output
    stored = calls(api, tenant)
    assert len(stored) == 8
    assert all(call["caller"] != long_caller for call in stored)


def test_import_killed_midway_and_rerun_stores_every_call_once(
    api: Api, database_url: str, tmp_path: Path
) -> None:
    total = 6000
    lines = []
    for i in range(total):
        begin = T + dt.timedelta(seconds=37 * i)
        uniqueid = f"{1760408523 + i}.{i}"
        lines.append(
            csv_row(
                src=f"09{i:08d}",
                dst="19006868",
                channel=f"PJSIP/trunk-{i:08x}",
                dstchannel=f"PJSIP/101-{i:08x}",
                start=begin,
                answer=None,
                end=begin + dt.timedelta(seconds=20),
                disposition="NO ANSWER",
                uniqueid=uniqueid,
                linkedid=uniqueid,
                sequence=2 * i,
            )
        )
        lines.append(
            csv_row(
                src=f"09{i:08d}",
                dst="19006868",
                channel=f"PJSIP/trunk-{i:08x}",
                dstchannel=f"PJSIP/102-{i:08x}",
                start=begin,
                answer=begin + dt.timedelta(seconds=5),
                end=begin + dt.timedelta(seconds=65),
                disposition="ANSWERED",
                uniqueid=uniqueid,
                linkedid=uniqueid,
                sequence=2 * i + 1,
            )
        )
    path = tmp_path / "Master.csv"
    path.write_text("\n".join(lines) + "\n")
    killed, clean = new_tenant(database_url), new_tenant(database_url)
    command = [
        sys.executable,
        "-m",
        "callhistory",
        "import",
        "asterisk-csv",
        str(path),
        "--database",
        database_url,
    ]
    process = subprocess.Popen(
        [*command, "--tenant", killed.id], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 120
    seen = 0
    while seen == 0 and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.05)
        seen = len(api.ok("ListCallLogs", {"paging": {"limit": 1000}}, killed.read)["call_logs"])
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    partial = len(calls(api, killed))
    assert 0 < partial < total, "the import was not stopped midway"
    subprocess.run([*command, "--tenant", killed.id], check=True, capture_output=True, timeout=600)
    subprocess.run([*command, "--tenant", clean.id], check=True, capture_output=True, timeout=600)
    after_kill, reference = calls(api, killed), calls(api, clean)
    assert len(after_kill) == total
    keys = ("caller", "callee", "started_at", "ended_at", "duration", "call_state", "call_targets")
    assert sorted(tuple(str(c[k]) for k in keys) for c in after_kill) == sorted(
        tuple(str(c[k]) for k in keys) for c in reference
    )


def test_queue_calls_are_answered_only_by_a_member(
    api: Api, tenant: Tenant, database_url: str, tmp_path: Path
) -> None:
    """app_queue answers the caller's channel (a greeting, music on hold) long before a member
    picks up: Asterisk then fills every member row's answer from the caller's channel."""
    trunk = "PJSIP/viettel-trunk-000000{}"
    queue = {"lastapp": "Queue", "lastdata": "support,t,,,300", "context": "from-trunk"}
    rows = [
        # abandoned after waiting 45 s: the queue had answered the channel
        csv_row(
            src="0912000444", dst="19006868", channel=trunk.format("a1"), dstchannel="",
            start=s(0), answer=s(1), end=s(46), disposition="ANSWERED",
            uniqueid="1760409000.1", linkedid="1760409000.1", sequence=1, **queue,
        ),
        # member 101 rang 15 s and did not answer; member 102 answered and talked 30 s
        csv_row(
            src="0912000555", dst="19006868", channel=trunk.format("b1"),
            dstchannel="PJSIP/101-000000b2", start=s(100), answer=s(101), end=s(125),
            disposition="NO ANSWER", uniqueid="1760409100.2", linkedid="1760409100.2",
            sequence=2, **queue,
        ),
        csv_row(
            src="0912000555", dst="19006868", channel=trunk.format("b1"),
            dstchannel="PJSIP/102-000000b3", start=s(125), answer=s(131), end=s(161),
            disposition="ANSWERED", uniqueid="1760409100.2", linkedid="1760409100.2",
            sequence=3, **queue,
        ),
    ]  # fmt: skip
    path = tmp_path / "Master.csv"
    path.write_text("\n".join(rows) + "\n")
    assert run_import(path, tenant, database_url).exit_code == 0
    got = by_caller(api, tenant)
    abandoned = got["0912000444→19006868"]
    assert (abandoned["call_state"], abandoned["call_status"], abandoned["duration"]) == (
        "not_answered",
        "N",
        0,
    )
    answered = got["0912000555→19006868"]
    assert (answered["call_state"], answered["duration"], answered["direction"]) == (
        "answered",
        30,
        "in",
    )
    assert [
        (t["target_number"], t["status"], t["answered_time"]) for t in answered["call_targets"]
    ] == [("101", "no_answer", None), ("102", "answered", z(s(131)))]
