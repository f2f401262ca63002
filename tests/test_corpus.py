"""Real CDRs from real deployments (``../shared/cdr-corpus``, used as they are), imported and
posted the ways the docs describe, then read back through ListCallLogs and compared with what a
person reading the CDRs would write down. Expected values come from reading the files."""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import httpx
import msgspec
import pytest
from typer.testing import CliRunner

from callhistory.cli import app
from tests.harness import (
    Api,
    Tenant,
    assert_kept_stats_agree,
    assert_outbox_agrees,
    cli_json,
    new_tenant,
    watch_webhooks,
)

CORPUS = Path(
    os.environ.get(
        "CALLHISTORY_CDR_CORPUS", Path(__file__).resolve().parents[2] / "shared" / "cdr-corpus"
    )
)
A1 = "asterisk/a1-mineevburyat-dj-asterisk-cdr-Master.csv"
A2 = "asterisk/a2-KelySaina-cdr-Master.csv"
A4 = "asterisk/a4-asterisk-testsuite-self_test-Master.csv"
FS4 = "freeswitch/fs4-cgrates-cdrs-fscdr_test-body.json"
FS5 = "freeswitch/fs5-md-inbound-A-leg-51156b0b.json"
FS6 = "freeswitch/fs6-md-B-leg-ab0aa08a.json"
FS7 = "freeswitch/fs7-md-originate-leg-16c22a18.json"
# FreeSWITCH's switch_url_encode escapes these (and bytes outside ' '..'~'), but leaves a '%'
# that already starts an escape alone.
URL_UNSAFE = '\r\n #%&+:;<=>?@[\\]^`{|}"'
HEX = "0123456789ABCDEFabcdef"


def corpus(name: str) -> Path:
    path = CORPUS / name
    if not path.is_file():
        if os.environ.get("CI"):
            pytest.fail(f"the CDR corpus is missing: {path}")
        pytest.skip(f"the CDR corpus is not beside this checkout ({CORPUS})")
    return path


def switch_url_encode(text: str) -> str:
    """FreeSWITCH's switch_url_encode (src/switch_utils.c), byte by byte."""
    data = text.encode("utf-8")
    out = []
    for i, byte in enumerate(data):
        ch = chr(byte)
        kept_escape = (
            ch == "%" and i + 2 < len(data) and chr(data[i + 1]) in HEX and chr(data[i + 2]) in HEX
        )
        if not kept_escape and (byte < 0x20 or byte > 0x7E or ch in URL_UNSAFE):
            out.append(f"%{byte:02X}")
        else:
            out.append(ch)
    return "".join(out)


def with_values(doc: dict[str, Any], *, encoded: bool) -> dict[str, Any]:
    """The document as mod_json_cdr writes it with ``encode-values`` on or off (the corpus'
    documents hold their values one way or the other)."""
    variables = doc["variables"]
    raw = {k: unquote(v) if isinstance(v, str) else v for k, v in variables.items()}
    if all(raw[k] == v for k, v in variables.items()):
        raw = variables  # written with encode-values=false already
    values = {k: switch_url_encode(v) if encoded else v for k, v in raw.items()}
    return {**doc, "variables": values}


def mod_json_cdr_request(
    text: bytes, *, encode: str, disable_100_continue: bool
) -> tuple[bytes, dict[str, str]]:
    """The body and headers mod_json_cdr's process_cdr sends for a document's text."""
    if encode == "true":
        body = b"cdr=" + switch_url_encode(text.decode("utf-8")).encode()
        content_type = "application/x-www-form-urlencoded"
    elif encode == "base64":
        body = b"cdr=" + base64.b64encode(text)
        content_type = "application/x-www-form-base64-encoded"
    else:
        body, content_type = text, "application/json"
    if disable_100_continue:
        # The header list is replaced by "Expect:", so libcurl sends its default for
        # POSTFIELDS.
        content_type = "application/x-www-form-urlencoded"
    return body, {"Content-Type": content_type, "User-Agent": "freeswitch-json/1.0"}


def post(
    api: Api, key: str, text: bytes, *, encode: str = "false", disable_100_continue: bool = True,
    user: str = "freeswitch",
) -> httpx.Response:  # fmt: skip
    body, headers = mod_json_cdr_request(
        text, encode=encode, disable_100_continue=disable_100_continue
    )
    headers["Authorization"] = "Basic " + base64.b64encode(f"{user}:{key}".encode()).decode()
    uuid = msgspec.json.decode(text)["variables"]["uuid"]
    return api.http.post(f"/ingest/freeswitch?uuid={uuid}", content=body, headers=headers)


def calls(api: Api, tenant: Tenant) -> list[dict[str, Any]]:
    return [r for p in api.walk(tenant.read, {"paging": {"limit": 1000}}) for r in p]


def by_start(api: Api, tenant: Tenant) -> dict[str, dict[str, Any]]:
    found = calls(api, tenant)
    out = {c["started_at"]: c for c in found}
    assert len(out) == len(found)
    return out


def targets(call: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [(t["target_number"], t["trunk_name"], t["status"]) for t in call["call_targets"]]


def summary(call: dict[str, Any]) -> tuple[str, str, str, str, int]:
    return (call["caller"], call["callee"], call["direction"], call["call_state"], call["duration"])


def import_csv(path: Path, tenant: Tenant, database_url: str) -> Any:
    return CliRunner().invoke(
        app,
        [
            "import", "asterisk-csv", str(path), "--tenant", tenant.id,
            "--timezone", "Asia/Ho_Chi_Minh", "--database", database_url,
        ],
    )  # fmt: skip


def test_asterisk_ring_groups_local_channels_and_missed_calls(
    api: Api, tenant: Tenant, database_url: str
) -> None:
    result = import_csv(corpus(A1), tenant, database_url)
    assert result.exit_code == 0, result.output
    assert "imported 36, updated 0, unchanged 0, rejected 0" in result.output
    got = by_start(api, tenant)
    assert len(got) == 36

    # linkedid 1706369600.6: 301 and 200@stadionpbx rang 60 and 30 s and nobody answered;
    # Asterisk filled `answer` (the caller's channel was up) and billsec 60 on NO ANSWER rows.
    missed = got["2024-01-27T08:33:20Z"]
    assert summary(missed) == ("89245555937", "211553", "in", "not_answered", 0)
    assert missed["call_status"] == "N"
    assert targets(missed) == [("301", "", "no_answer"), ("200", "stadionpbx", "no_answer")]
    assert [t["answered_time"] for t in missed["call_targets"]] == [None, None]

    # 2024-01-28 02:04 +07: a ring group of Local/ch1..ch3; ch1 reached SIP/301, which answered
    # and talked 17 s (billsec); ch2 and ch3 never dialled a phone.
    ring_group = got["2024-01-27T19:04:06Z"]
    assert summary(ring_group) == ("89025348783", "211553", "in", "answered", 17)
    assert targets(ring_group) == [("301", "", "answered")]
    assert ring_group["call_targets"][0]["answered_time"] == "2024-01-27T19:04:12Z"

    # The same ring group, nobody answered: each real phone behind the Local channels once.
    unanswered_group = got["2024-01-27T09:16:36Z"]
    assert summary(unanswered_group) == ("89245555937", "211553", "in", "not_answered", 0)
    assert targets(unanswered_group) == [
        ("301", "", "no_answer"),
        ("154", "stadionpbx", "no_answer"),
        ("158", "stadionpbx", "no_answer"),
        ("200", "stadionpbx", "no_answer"),
    ]

    # A 6-digit city number calling in through the SIP/211553 trunk is a customer.
    assert summary(got["2024-01-27T20:20:22Z"]) == ("214943", "211553", "in", "answered", 23)

    # Ring-all (SIP/301&SIP/200@stadionpbx): the phone that did not answer lost the race.
    race = got["2024-01-27T20:39:25Z"]
    assert summary(race) == ("89085951008", "211474", "in", "answered", 43)
    assert targets(race) == [("301", "", "answered"), ("200", "stadionpbx", "cancelled")]
    other_won = got["2024-01-27T21:10:46Z"]
    assert (other_won["duration"], targets(other_won)) == (
        30,
        [("301", "", "cancelled"), ("200", "stadionpbx", "answered")],
    )
    busy = got["2024-01-28T04:57:38Z"]
    assert (busy["call_state"], targets(busy)) == ("not_answered", [("200", "stadionpbx", "busy")])

    # Answered by the PBX itself (Hangup after an announcement), no phone rang.
    announcement = got["2024-01-27T08:07:24Z"]
    assert summary(announcement) == ("89245555937", "211474", "in", "answered", 27)
    assert announcement["call_targets"] == []

    for call in got.values():
        assert call["direction"] == "in"
        assert call["callee"] in ("211474", "211553")
        assert all(not t["target_number"].startswith("ch") for t in call["call_targets"])
        assert all(t["trunk_name"] in ("", "stadionpbx") for t in call["call_targets"])
        numbers = [(t["target_number"], t["trunk_name"]) for t in call["call_targets"]]
        assert len(numbers) == len(set(numbers)), call

    again = import_csv(corpus(A1), tenant, database_url)
    assert "imported 0, updated 0, unchanged 36, rejected 0" in again.output
    assert by_start(api, tenant) == got


def test_asterisk_directory_decides_and_attributes(
    api: Api, tenant: Tenant, database_url: str
) -> None:
    hotlines = {
        n: api.ok("CreateHotline", {"hotline": n}, tenant.admin)["id"] for n in ("211553", "211474")
    }
    ext = api.ok("CreateExtension", {"extension_number": "301"}, tenant.admin)["id"]
    assert import_csv(corpus(A1), tenant, database_url).exit_code == 0
    got = by_start(api, tenant)
    city = got["2024-01-27T20:20:22Z"]
    assert (city["direction"], city["hotline_id"], city["extension_id"]) == (
        "in",
        hotlines["211553"],
        ext,
    )
    assert all(call["direction"] == "in" for call in got.values())
    answered_by_301 = [
        c for c in got.values() if ("301", "", "answered") in targets(c)
    ]  # fmt: skip
    assert len(answered_by_301) == 19
    assert all(c["extension_id"] == ext for c in answered_by_301)


def test_asterisk_pjsip_endpoints_with_names(api: Api, tenant: Tenant, database_url: str) -> None:
    result = import_csv(corpus(A2), tenant, database_url)
    assert "imported 14, updated 0, unchanged 0, rejected 0" in result.output
    got = by_start(api, tenant)
    # client1 dialled 6789, which rang PJSIP/client2: answered 01:51:50, billsec 13
    # (the whole-second timestamps differ by 14).
    first = got["2023-07-25T18:51:32Z"]
    assert summary(first) == ("client1", "6789", "ext", "answered", 13)
    assert targets(first) == [("client2", "", "answered")]
    missed = got["2023-07-25T18:52:11Z"]
    assert summary(missed) == ("client2", "1234", "ext", "not_answered", 0)
    assert targets(missed) == [("client1", "", "no_answer")]
    assert {c["direction"] for c in got.values()} == {"ext"}
    assert sum(c["duration"] for c in got.values()) == 13 + 13 + 18 + 8 + 8 + 7 + 3 + 2 + 2 + 2 + 2


def test_asterisk_console_without_a_target(api: Api, tenant: Tenant, database_url: str) -> None:
    assert import_csv(corpus(A4), tenant, database_url).exit_code == 0
    got = calls(api, tenant)
    assert [(c["caller"], c["callee"], c["call_state"], c["duration"]) for c in got] == [
        ("", "1", "answered", 7),
        ("", "1", "answered", 7),
    ]


ENCODINGS = [
    (encode, disable, values)
    for encode in ("false", "true", "base64")
    for disable in (False, True)
    for values in (True, False)
]


@pytest.mark.parametrize(("encode", "disable_100_continue", "encode_values"), ENCODINGS)
def test_freeswitch_every_mod_json_cdr_encoding(
    api: Api, tenant: Tenant, encode: str, disable_100_continue: bool, encode_values: bool
) -> None:
    docs = [msgspec.json.decode(corpus(name).read_bytes()) for name in (FS5, FS6, FS7)]
    texts = [msgspec.json.encode(with_values(doc, encoded=encode_values)) for doc in docs]
    answers = [
        post(api, tenant.ingest, text, encode=encode, disable_100_continue=disable_100_continue)
        for text in texts
    ]
    if encode == "true" and encode_values:
        # URL-encoding values already URL-encoded cannot be undone: refused, naming the fix.
        for answer in answers:
            assert answer.status_code == 400, answer.text
            assert "encode-values=false" in answer.json()["msg"]
        assert calls(api, tenant) == []
        return
    assert [a.status_code for a in answers] == [200, 200, 200], [a.text for a in answers]
    got = by_start(api, tenant)
    # fs5 (A-leg) + fs6 (its B-leg): 1001 called 1003 and hung up while it rang (SIP 487).
    cancelled = got["2025-11-12T04:51:42.707743Z"]
    assert summary(cancelled) == ("1001", "1003", "ext", "not_answered", 0)
    assert [
        (t["target_number"], t["status"], t["fail_code"], t["end_reason"])
        for t in cancelled["call_targets"]
    ] == [("1003", "cancelled", 487, "ORIGINATOR_CANCEL")]
    # fs7: a dialler's originate to 3868158407 through gateway sipptester, presenting
    # 9111110001; answered, 7 s.
    placed = got["2025-11-12T07:33:58.915872Z"]
    assert summary(placed) == ("9111110001", "3868158407", "out", "answered", 7)
    assert targets(placed) == [("3868158407", "sipptester", "answered")]


def test_freeswitch_old_callflow_keys_and_user_names(api: Api, tenant: Tenant) -> None:
    text = corpus(FS4).read_bytes()  # two "callflow" keys; values not URL-encoded
    for encode in ("false", "true", "base64"):
        answer = post(api, tenant.ingest, text, encode=encode)
        assert answer.status_code == 200, answer.text
    (call,) = calls(api, tenant)
    # dan (a SIP user) called +4986517174963; the call forked to two of dan's registrations,
    # one answered and the other lost the race; billsec 4.
    assert summary(call) == ("dan", "+4986517174963", "out", "answered", 4)
    assert sorted(targets(call)) == [("dan", "", "answered"), ("dan", "", "cancelled")]


def test_freeswitch_a_leg_alone_then_its_b_leg(api: Api, tenant: Tenant) -> None:
    """With log-b-leg=false only A-legs arrive: the legs an A-leg originated stand in as
    targets, and a B-leg's own CDR replaces its stand-in whichever arrives first."""
    a_leg, b_leg = corpus(FS5).read_bytes(), corpus(FS6).read_bytes()
    assert post(api, tenant.ingest, a_leg).status_code == 200
    (alone,) = calls(api, tenant)
    assert [(t["target_number"], t["status"]) for t in alone["call_targets"]] == [
        ("1003", "cancelled")
    ]
    assert post(api, tenant.ingest, b_leg).status_code == 200
    assert post(api, tenant.ingest, a_leg).status_code == 200
    (both,) = calls(api, tenant)
    assert [(t["target_number"], t["fail_code"]) for t in both["call_targets"]] == [("1003", 487)]


def test_freeswitch_fusionpbx_recording(api: Api, tenant: Tenant) -> None:
    doc = msgspec.json.decode(corpus(FS5).read_bytes())
    folder = "/var/lib/freeswitch/recordings/10.30.40.77/archive/2025/Nov/12"
    doc["variables"]["record_path"] = switch_url_encode(folder)
    doc["variables"]["record_name"] = "51156b0b-f91b-4fd3-9c8f-15226f6098be.wav"
    assert post(api, tenant.ingest, msgspec.json.encode(doc)).status_code == 200
    (call,) = calls(api, tenant)
    assert call["recording_urls"] == [f"{folder}/51156b0b-f91b-4fd3-9c8f-15226f6098be.wav"]


def test_pbx_credentials_never_route_by_the_callers_to_host(api: Api, database_url: str) -> None:
    # fs4 names ipbx.itsyscom.com only in sip_to_host, which is what the caller wrote.
    owner = new_tenant(database_url, domain="ipbx.itsyscom.com")
    bystander = new_tenant(database_url)
    name = f"fs{secrets.token_hex(4)}"
    pbx = cli_json("pbx", "create", name, "--tenant", owner.id, "--tenant", bystander.id,
                   "--database", database_url)  # fmt: skip
    answer = post(api, pbx["secret"], corpus(FS4).read_bytes(), user=name)
    assert answer.status_code == 400, answer.text
    assert answer.json()["meta"]["field"] == "variables.domain_name"
    assert "sip_to_host" in answer.json()["msg"]
    assert calls(api, owner) == [] and calls(api, bystander) == []


def test_import_freeswitch_dir(api: Api, tenant: Tenant, database_url: str, tmp_path: Path) -> None:
    """What mod_json_cdr leaves on disk: log-dir files (the JSON, a newline) and err-log-dir
    files (the text it failed to post: URL-encoded or base64)."""
    fs6, fs7 = (msgspec.json.decode(corpus(n).read_bytes()) for n in (FS6, FS7))
    (tmp_path / "a_51156b0b-f91b-4fd3-9c8f-15226f6098be.cdr.json").write_bytes(
        corpus(FS5).read_bytes() + b"\n"
    )
    (tmp_path / "ab0aa08a-ead3-42c6-a365-99553a001fba.cdr.json").write_bytes(
        base64.b64encode(msgspec.json.encode(fs6)) + b"\n"
    )
    plain_values = msgspec.json.encode(with_values(fs7, encoded=False)).decode()
    (tmp_path / "a_16c22a18-eccc-4974-adf9-44d2b6152838.cdr.json").write_text(
        switch_url_encode(plain_values) + "\n"
    )
    (tmp_path / "a_01df56f4-d99a-4ef6-b7fe-b924b2415b7f.cdr.json").write_bytes(
        corpus(FS4).read_bytes()
    )
    (tmp_path / "a_broken.cdr.json").write_text('{"variables": {"uuid": "x"')

    def run() -> Any:
        return CliRunner().invoke(
            app,
            [
                "import", "freeswitch-dir", str(tmp_path), "--tenant", tenant.id,
                "--database", database_url,
            ],
        )  # fmt: skip

    first = run()
    assert first.exit_code == 1, first.output
    assert f"{tmp_path / 'a_broken.cdr.json'}: rejected: the CDR is not valid JSON" in first.output
    assert "imported 3, updated 0, unchanged 0, rejected 1" in first.output
    got = by_start(api, tenant)
    assert sorted(summary(c) for c in got.values()) == [
        ("1001", "1003", "ext", "not_answered", 0),
        ("9111110001", "3868158407", "out", "answered", 7),
        ("dan", "+4986517174963", "out", "answered", 4),
    ]
    (tmp_path / "a_broken.cdr.json").unlink()
    second = run()
    assert second.exit_code == 0, second.output
    assert "imported 0, updated 0, unchanged 3, rejected 0" in second.output


DOCS = Path(__file__).resolve().parent.parent / "docs"


def documented_block(page: str, fence: str) -> str:
    text = (DOCS / page).read_text()
    return text.split(f"```{fence}\n", 1)[1].split("```", 1)[0]


def test_the_documented_json_cdr_conf(api: Api, tenant: Tenant) -> None:
    """The request the docs' json_cdr.conf.xml makes FreeSWITCH send is stored."""
    import xml.etree.ElementTree as ET

    settings = ET.fromstring(documented_block("ingest-freeswitch.md", "xml")).find("settings")
    assert settings is not None
    params = {p.get("name"): p.get("value") for p in settings.iter("param")}
    assert params["url"] and params["url"].endswith("/ingest/freeswitch")
    for name in (FS5, FS6, FS7):
        doc = msgspec.json.decode(corpus(name).read_bytes())
        text = msgspec.json.encode(with_values(doc, encoded=params["encode-values"] == "true"))
        answer = post(
            api,
            tenant.ingest,
            text,
            encode=str(params["encode"]),
            disable_100_continue=params["disable-100-continue"] == "true",
        )
        assert answer.status_code == 200, answer.text
    assert len(calls(api, tenant)) == 2


def test_the_documented_cdr_conf_writes_the_layout_read(
    api: Api, tenant: Tenant, database_url: str
) -> None:
    import configparser

    conf = configparser.ConfigParser(inline_comment_prefixes=(";",))
    conf.read_string(documented_block("ingest-asterisk.md", "ini"))
    csv_conf = conf["csv"]
    columns = (
        16
        + csv_conf.getboolean("loguniqueid", fallback=False)
        + csv_conf.getboolean("loguserfield", fallback=False)
        + 3 * csv_conf.getboolean("newcdrcolumns", fallback=False)
    )
    first = corpus(A1).read_bytes().decode("utf-8", "replace").splitlines()[0]
    import csv as csv_module

    assert len(next(csv_module.reader([first]))) == columns == 21
    assert not csv_conf.getboolean("usegmtime")  # local times: the import takes a zone
    assert import_csv(corpus(A1), tenant, database_url).exit_code == 0
    assert len(calls(api, tenant)) == 36


def test_every_pbx_field_read_is_in_the_docs() -> None:
    import re

    source = Path(__file__).resolve().parent.parent / "callhistory" / "ingest"
    freeswitch = (source / "freeswitch.py").read_text()
    read = set(re.findall(r'var\("([a-z_]+)"\)', freeswitch))
    for table in ("_RECORDING_VARIABLES", "_DOMAIN_VARIABLES"):
        names = freeswitch.split(f"{table} = ", 1)[1].split("\n", 1)[0]
        read |= set(re.findall(r'"([a-z_]+)"', names))
    for loop in re.findall(r"for name in \(([^)]*)\)", freeswitch):
        read |= set(re.findall(r'"([a-z_]+)"', loop))
    page = (DOCS / "ingest-freeswitch.md").read_text()
    assert len(read) > 20
    assert sorted(name for name in read if f"`{name}`" not in page) == []

    asterisk = (source / "asterisk_csv.py").read_text()
    columns = set(re.findall(r'fields(?:\.get\()?\["?([a-z]+)"', asterisk))
    columns |= set(re.findall(r'fields\.get\("([a-z]+)"', asterisk))
    page = (DOCS / "ingest-asterisk.md").read_text()
    assert len(columns) > 10
    assert sorted(name for name in columns if f"`{name}`" not in page) == []


def test_asterisk_without_linkedid_still_reads_ring_groups_whole(
    api: Api, tenant: Tenant, database_url: str, tmp_path: Path
) -> None:
    """cdr.conf's sample leaves newcdrcolumns off: the same rows without peeraccount, linkedid
    and sequence (18 columns). The Local/ halves' rows still join the call that dialled them."""
    import csv as csv_module
    import io

    text = corpus(A1).read_bytes().decode("utf-8", "replace")
    out = io.StringIO()
    writer = csv_module.writer(out, quoting=csv_module.QUOTE_ALL, lineterminator="\n")
    for row in csv_module.reader(io.StringIO(text, newline="")):
        writer.writerow(row[:18])
    path = tmp_path / "Master.csv"
    path.write_text(out.getvalue())
    result = import_csv(path, tenant, database_url)
    assert "imported 36, updated 0, unchanged 0, rejected 0" in result.output, result.output
    got = by_start(api, tenant)
    ring_group = got["2024-01-27T19:04:06Z"]
    assert summary(ring_group) == ("89025348783", "211553", "in", "answered", 17)
    assert targets(ring_group) == [("301", "", "answered")]
    assert targets(got["2024-01-27T09:16:36Z"]) == [
        ("301", "", "no_answer"),
        ("154", "stadionpbx", "no_answer"),
        ("158", "stadionpbx", "no_answer"),
        ("200", "stadionpbx", "no_answer"),
    ]


def test_cdrs_posted_at_the_same_moment(api: Api, tenant: Tenant) -> None:
    """FreeSWITCH posts a call's A-leg and B-leg as both channels hang up, and retries post the
    same CDR again: every post is stored (no 500), and the call is rebuilt from both legs."""
    from concurrent.futures import ThreadPoolExecutor

    a_text, b_text = corpus(FS5).read_bytes(), corpus(FS6).read_bytes()
    a_uuid, b_uuid = (
        b"51156b0b-f91b-4fd3-9c8f-15226f6098be",
        b"ab0aa08a-ead3-42c6-a365-99553a001fba",
    )
    rounds = []
    for n in range(8):  # distinct calls: the same CDRs under other uuids
        a_new = a_uuid.replace(b"51156b0b", f"{n:08d}".encode())
        b_new = b_uuid.replace(b"ab0aa08a", f"{n:08d}".encode())
        rounds.append([t.replace(a_uuid, a_new).replace(b_uuid, b_new) for t in (a_text, b_text)])
    with ThreadPoolExecutor(max_workers=12) as pool:
        same = list(pool.map(lambda _: post(api, tenant.ingest, a_text).status_code, range(12)))
        pairs = [
            list(pool.map(lambda text: post(api, tenant.ingest, text).status_code, texts))
            for texts in rounds
        ]
    assert same == [200] * 12
    assert pairs == [[200, 200]] * 8
    found = calls(api, tenant)
    assert len(found) == 9
    for call in found:
        assert [(t["target_number"], t["fail_code"]) for t in call["call_targets"]] in (
            [("1003", 487)],  # the B-leg's own CDR
            [("1003", 0)],  # only for the call whose B-leg was never posted
        )
    assert sum(call["call_targets"][0]["fail_code"] == 487 for call in found) == 8


def every(kind: str, pattern: str) -> list[str]:
    return sorted(f"{kind}/{p.name}" for p in (CORPUS / kind).glob(pattern)) or [f"{kind}/missing"]


@pytest.mark.parametrize("name", every("asterisk", "*.csv"))
def test_every_asterisk_file_imports_as_it_is(
    api: Api, tenant: Tenant, database_url: str, name: str
) -> None:
    """Each Master.csv of the corpus, untouched, through `callhistory import asterisk-csv`."""
    watch_webhooks(api, tenant)
    result = import_csv(corpus(name), tenant, database_url)
    assert result.exit_code == 0, result.output
    assert "rejected 0" in result.output and calls(api, tenant)
    assert_kept_stats_agree(api, tenant.read)
    assert_outbox_agrees(api, tenant, database_url)


@pytest.mark.parametrize("name", every("freeswitch", "*.json"))
def test_every_freeswitch_file_posts_as_it_is(
    api: Api, tenant: Tenant, database_url: str, name: str
) -> None:
    """Each CDR of the corpus, byte for byte, as the documented json_cdr.conf sends it
    (encode=false, disable-100-continue=true: the raw document, declared as a form)."""
    watch_webhooks(api, tenant)
    text = corpus(name).read_bytes()
    uuid = msgspec.json.decode(text)["variables"]["uuid"]
    response = api.http.post(
        f"/ingest/freeswitch?uuid={uuid}",
        content=text,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "User-Agent": "freeswitch-json/1.0",
            "Authorization": "Basic "
            + base64.b64encode(f"freeswitch:{tenant.ingest}".encode()).decode(),
        },
    )
    assert response.status_code == 200, response.text
    assert len(calls(api, tenant)) == 1
    assert_kept_stats_agree(api, tenant.read)
    assert_outbox_agrees(api, tenant, database_url)


def test_the_freeswitch_corpus_folder_imports_as_it_is(
    api: Api, tenant: Tenant, database_url: str
) -> None:
    folder = corpus(FS4).parent
    watch_webhooks(api, tenant)
    result = CliRunner().invoke(
        app,
        [
            "import",
            "freeswitch-dir",
            str(folder),
            "--tenant",
            tenant.id,
            "--database",
            database_url,
        ],
    )
    files = len(list(folder.glob("*.json")))
    assert result.exit_code == 0, result.output
    assert f"imported {files - 1}, updated 0, unchanged 0, rejected 0" in result.output  # fs5+fs6
    assert len(calls(api, tenant)) == files - 1
    assert_kept_stats_agree(api, tenant.read)
    assert_outbox_agrees(api, tenant, database_url)


@pytest.mark.parametrize("name", every("asterisk", "*.csv"))
def test_an_erased_call_stays_erased_when_its_file_is_imported_again(
    api: Api, tenant: Tenant, database_url: str, name: str
) -> None:
    """The same Master.csv imported again after an erasure: the erased call is acknowledged
    as unchanged in the report (not lost from it) and not stored again."""
    assert import_csv(corpus(name), tenant, database_url).exit_code == 0
    before = calls(api, tenant)
    gone = before[0]["id"]
    erase = ["erase", "--tenant", tenant.id, "--id", gone, "--database", database_url]
    assert "erased 1 calls" in CliRunner().invoke(app, erase).output
    again = import_csv(corpus(name), tenant, database_url)
    assert again.exit_code == 0, again.output
    assert f"imported 0, updated 0, unchanged {len(before)}, rejected 0" in again.output
    assert sorted(c["id"] for c in calls(api, tenant)) == sorted(
        c["id"] for c in before if c["id"] != gone
    )
    assert_kept_stats_agree(api, tenant.read)
