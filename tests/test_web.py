"""The web pages in a real browser (Debian's Chromium driven by Playwright) against the real
server. The call list: sign in, every filter, paging, legs, language, a wrong key, a
phone-sized screen. The dashboard: every number it draws equals what GetCallStats and
ListMissedCalls answer for the same period; its links filter the call list; the period buttons.
Screenshots go to test-artifacts/."""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from tests.dataset import Dataset, build, expected
from tests.harness import Api, ServerThread, new_tenant

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect
CHROMIUM = os.environ.get("CALLHISTORY_CHROMIUM", "/usr/bin/chromium")
# The page is the same on every backend: checked once, on SQLite.
pytestmark = pytest.mark.only_on("sqlite")

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture(scope="module")
def web(database_url: str, server: ServerThread, api: Api) -> tuple[ServerThread, Dataset, str]:
    data = build(api, new_tenant(database_url, name="Cửa hàng Web"), calls=130, seed=21)
    recorded = {
        "source_id": "with-recording",
        "started_at": "2025-03-25T10:00:00+07:00",
        "ended_at": "2025-03-25T10:01:00+07:00",
        "caller": "0911222333",
        "callee": "02873001234",
        "direction": "in",
        "recording_urls": ["/static/no-such-recording.mp3"],
        "call_targets": [
            {
                "target_number": "101",
                "ring_time": "2025-03-25T10:00:02+07:00",
                "answered_time": "2025-03-25T10:00:07+07:00",
                "ended_time": "2025-03-25T10:01:00+07:00",
            }
        ],
    }
    recording_tenant = new_tenant(database_url)
    api.ingest(recording_tenant.ingest, [recorded])
    return server, data, recording_tenant.read


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        pytest.fail(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Any, request: pytest.FixtureRequest) -> Iterator[Any]:
    context = browser.new_context(locale="en-GB", viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    yield tab
    failed = getattr(request.node, "rep_call", None)
    if failed is not None and failed.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        tab.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()


def ids(page: Any) -> list[str]:
    return page.locator("#results tbody tr[data-id]").evaluate_all(  # type: ignore[no-any-return]
        "rows => rows.map(r => r.dataset.id)"
    )


def sign_in(page: Any, base: str, key: str, path: str = "/calls") -> None:
    page.goto(base + path)
    page.get_by_label("API key", exact=True).fill(key)
    page.get_by_role("button", name="Sign in").click()
    page.locator("#results tbody tr[data-id]").first.wait_for()


def test_sign_in_and_page_forward_and_back(web: Any, page: Any) -> None:
    server, data, _ = web
    sign_in(page, server.base_url, data.tenant.read)
    assert page.locator("#tenant").inner_text().startswith("Cửa hàng Web")
    first = ids(page)
    assert len(first) == 100
    page.get_by_role("button", name="Next →").click()
    expect(page.locator("#results tbody tr[data-id]")).to_have_count(30)
    second = ids(page)
    assert page.get_by_role("button", name="Next →").is_disabled()
    assert len(set(first) | set(second)) == 130
    page.get_by_role("button", name="← Previous").click()
    expect(page.locator("#results tbody tr[data-id]")).to_have_count(100)
    assert ids(page) == first
    assert page.get_by_role("button", name="← Previous").is_disabled()
    assert data.tenant.read not in page.url


def apply(page: Any) -> None:
    with page.expect_response(re.compile("ListCallLogs")):
        page.get_by_role("button", name="Filter", exact=True).click()
    expect(page.locator("#results")).not_to_have_attribute("aria-busy", "true")


@pytest.mark.parametrize(
    ("control", "action", "oracle"),
    [
        ("Direction", ("select", "out"), {"direction": "out"}),
        ("State", ("select", "not_answered"), {"call_state": "not_answered"}),
        ("Phone number", ("fill", "+84 987 654 321"), {"call_number_party": "987654321"}),
        ("From", ("fill", "2025-03-05"), {"date_from": "2025-03-05"}),
        ("To", ("fill", "2025-03-04"), {"date_to": "2025-03-04"}),
    ],
)
def test_each_filter_control(
    web: Any, page: Any, control: str, action: tuple[str, str], oracle: dict[str, Any]
) -> None:
    server, data, _ = web
    sign_in(page, server.base_url, data.tenant.read)
    field = page.get_by_label(control, exact=True)
    field.select_option(action[1]) if action[0] == "select" else field.fill(action[1])
    apply(page)
    assert ids(page) == expected(data, oracle)[:100]
    assert data.tenant.read not in page.url


def test_directory_pickers_and_duration(web: Any, page: Any) -> None:
    server, data, _ = web
    sign_in(page, server.base_url, data.tenant.read)
    ext_id = next(iter(data.extensions))
    page.get_by_label("Extensions").select_option(ext_id)
    hotline_id = next(iter(data.hotlines))
    page.get_by_label("Hotlines").select_option(hotline_id)
    apply(page)
    assert (
        ids(page) == expected(data, {"extension_ids": [ext_id], "hotline_ids": [hotline_id]})[:100]
    )
    page.get_by_role("button", name="Clear filters").click()
    user_id = next(iter(data.user_department))
    page.get_by_label("Agent").select_option(user_id)
    page.get_by_label("Talk time (s)").select_option("greater_than")
    page.get_by_label("Seconds").fill("30")
    apply(page)
    want = expected(
        data, {"user_id": user_id, "duration": {"comparison": "greater_than", "value": 30}}
    )
    assert ids(page) == want[:100]
    page.get_by_role("button", name="Clear filters").click()
    page.get_by_label("Department").select_option(data.departments[1])
    apply(page)
    assert ids(page) == expected(data, {"department_id": data.departments[1]})[:100]


def test_filters_live_in_the_url_and_can_be_shared(web: Any, page: Any) -> None:
    server, data, _ = web
    sign_in(page, server.base_url, data.tenant.read, "/calls?direction=in&call_state=answered")
    assert page.get_by_label("Direction").input_value() == "in"
    assert ids(page) == expected(data, {"direction": "in", "call_state": "answered"})[:100]
    page.get_by_label("State").select_option("not_answered")
    apply(page)
    assert "call_state=not_answered" in page.url and "ch_" not in page.url


def test_expand_a_call_shows_its_legs_and_recording(web: Any, page: Any) -> None:
    server, _, recording_key = web
    sign_in(page, server.base_url, recording_key, "/calls?call_number=0911222333")
    toggle = page.locator("button.legs-toggle").first
    assert toggle.inner_text() == "Show"
    toggle.focus()
    page.keyboard.press("Enter")
    assert toggle.get_attribute("aria-expanded") == "true"
    legs = page.locator("tr.legs:not([hidden])")
    assert "101" in legs.inner_text() and "Answered" in legs.inner_text()
    assert legs.locator("audio").get_attribute("src") == "/static/no-such-recording.mp3"


def test_language_switch(web: Any, page: Any) -> None:
    server, data, _ = web
    sign_in(page, server.base_url, data.tenant.read)
    page.get_by_label("Language").select_option("vi")
    assert page.get_by_role("heading", level=1).inner_text() == "Lịch sử cuộc gọi"
    assert page.get_by_role("button", name="Trang sau →").is_enabled()
    assert page.locator("html").get_attribute("lang") == "vi"
    page.get_by_label("Ngôn ngữ").select_option("en")
    assert page.get_by_role("heading", level=1).inner_text() == "Call history"


def test_wrong_key_gets_a_clear_message(web: Any, page: Any) -> None:
    server, _, _ = web
    page.goto(server.base_url + "/")
    page.get_by_label("API key", exact=True).fill("ch_this-is-not-a-key")
    page.get_by_role("button", name="Sign in").click()
    alert = page.get_by_role("alert")
    alert.wait_for()
    assert alert.inner_text() == "Wrong or revoked API key."
    assert page.evaluate("sessionStorage.getItem('callhistory.key')") is None


def test_readable_on_a_phone(web: Any, browser: Any) -> None:
    server, data, _ = web
    context = browser.new_context(locale="vi-VN", viewport={"width": 360, "height": 740})
    phone = context.new_page()
    phone.goto(server.base_url + "/calls")
    phone.get_by_label("Khoá API", exact=True).fill(data.tenant.read)
    phone.get_by_role("button", name="Đăng nhập").click()
    phone.locator("#results tbody tr[data-id]").first.wait_for()
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    ARTIFACTS.mkdir(exist_ok=True)
    phone.screenshot(path=str(ARTIFACTS / "phone-vi.png"), full_page=False)
    context.close()


def test_page_sends_security_headers(web: Any, api: Api) -> None:
    response = api.http.get("/calls")
    assert response.status_code == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["referrer-policy"] == "no-referrer"


def test_export_csv_of_the_current_filter(web: Any, page: Any) -> None:
    server, data, _ = web
    sign_in(page, server.base_url, data.tenant.read)
    page.get_by_label("Direction", exact=True).select_option("out")
    apply(page)
    with page.expect_download() as download:
        page.get_by_role("button", name="Export CSV").click()
    text = Path(download.value.path()).read_text(encoding="utf-8")
    assert text.startswith("\ufeff")  # so that Excel reads Vietnamese names right
    rows = text.lstrip("\ufeff").splitlines()
    assert rows[0].startswith("id,started_at,ended_at,direction")
    assert [row.split(",")[0] for row in rows[1:]] == expected(data, {"direction": "out"})


# --- the dashboard ---

FROM, TO = "2025-03-01", "2025-03-21"
FILTER = {"date_from": FROM, "date_to": TO}


def open_dashboard(page: Any, base: str, key: str, query: str, label: str = "API key") -> None:
    page.goto(f"{base}/dashboard{query}")
    page.get_by_label(label, exact=True).fill(key)
    page.locator("#sign-in-form button[type=submit]").click()
    page.locator("#bars g.bar").first.wait_for()
    expect(page.locator("#dashboard")).not_to_have_attribute("aria-busy", "true")


def digits(text: str) -> int:
    return int(re.sub(r"\D", "", text) or 0)


def test_the_numbers_on_the_page_are_the_apis(web: Any, page: Any, api: Api) -> None:
    server, data, _ = web
    key = data.tenant.read
    open_dashboard(page, server.base_url, key, f"?from={FROM}&to={TO}")
    days = api.ok("GetCallStats", {"group_by": ["day"], "filter": FILTER}, key)["buckets"]
    assert sum(b["calls"] for b in days) > 50  # the period holds the data set
    bars = page.locator("#bars g.bar").evaluate_all(
        "gs => gs.map(g => [g.dataset.key, +g.dataset.calls, +g.dataset.answered,"
        " +g.dataset.missed, +g.dataset.other])"
    )
    assert bars == [
        [b["key"]["day"], b["calls"], b["answered"], b["missed"],
         b["calls"] - b["answered"] - b["missed"]]
        for b in days
    ]  # fmt: skip
    totals = {k: sum(b[k] for b in days) for k in ("calls", "answered", "missed")}
    assert digits(page.locator("#total-calls").inner_text()) == totals["calls"]
    assert digits(page.locator("#total-answered").inner_text()) == totals["answered"]
    assert digits(page.locator("#total-missed").inner_text()) == totals["missed"]
    heat = api.ok("GetCallStats", {"group_by": ["weekday", "hour"], "filter": FILTER}, key)
    cells = page.locator("#heat td[data-key]").evaluate_all(
        "cs => Object.fromEntries(cs.map(c => [c.dataset.key, +c.textContent]))"
    )
    assert len(cells) == 7 * 24
    assert cells == {
        f"{b['key']['weekday']}-{b['key']['hour']}": b["calls"] for b in heat["buckets"]
    }
    agents = api.ok("GetCallStats", {"group_by": ["user"], "filter": FILTER}, key)["buckets"]
    rows = page.locator("#agents tbody tr").evaluate_all(
        "rs => rs.map(r => [r.dataset.user, ...[...r.cells].slice(1, 4).map(c => +c.textContent)])"
    )
    assert sorted(rows) == sorted(
        [b["key"]["user"], b["calls"], b["answered"], b["missed"]] for b in agents if b["calls"]
    )
    missed = api.ok("ListMissedCalls", {"filter": FILTER, "paging": {"limit": 20}}, key)[
        "missed_calls"
    ]
    listed = page.locator("#missed tbody tr").evaluate_all(
        "rs => rs.map(r => [r.dataset.number, +r.cells[1].textContent])"
    )
    assert missed and listed == [[m["number"], m["attempts"]] for m in missed]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-en.png"), full_page=True)


def test_an_agent_and_a_missed_number_open_their_calls(web: Any, page: Any) -> None:
    server, data, _ = web
    open_dashboard(page, server.base_url, data.tenant.read, f"?from={FROM}&to={TO}")
    agent = page.locator("#agents tbody tr[data-user] a").first
    user_id = agent.evaluate("a => a.closest('tr').dataset.user")
    agent.click()
    page.locator("#results tbody tr[data-id]").first.wait_for()
    assert page.locator("#user_id").input_value() == user_id
    assert page.locator("#date_from").input_value() == FROM
    page.go_back()
    page.locator("#missed tbody tr a").first.wait_for()
    number_link = page.locator("#missed tbody tr a").first
    number = number_link.inner_text()
    number_link.click()
    page.locator("#results tbody tr[data-id]").first.wait_for()
    assert page.locator("#call_number").input_value() == number


def test_the_period_buttons_use_the_tenants_calendar(web: Any, page: Any) -> None:
    server, data, _ = web
    open_dashboard(page, server.base_url, data.tenant.read, f"?from={FROM}&to={TO}")
    today = dt.datetime.now(ZoneInfo("Asia/Ho_Chi_Minh")).date()
    with page.expect_response(re.compile("ListMissedCalls")):
        page.get_by_role("button", name="7 days").click()
    assert page.locator("#from").input_value() == str(today - dt.timedelta(days=6))
    assert page.locator("#to").input_value() == str(today)
    assert f"from={today - dt.timedelta(days=6)}" in page.url
    with page.expect_response(re.compile("ListMissedCalls")):
        page.get_by_role("button", name="Today").click()
    assert page.locator("#bars g.bar").count() == 24  # one bar per hour


def test_the_dashboard_on_a_phone_in_vietnamese(web: Any, browser: Any) -> None:
    server, data, _ = web
    context = browser.new_context(locale="vi-VN", viewport={"width": 360, "height": 740})
    phone = context.new_page()
    open_dashboard(phone, server.base_url, data.tenant.read, f"?from={FROM}&to={TO}", "Khoá API")
    assert phone.evaluate("document.documentElement.scrollWidth") <= 360
    assert phone.locator("h1").inner_text() == "Thống kê cuộc gọi"
    ARTIFACTS.mkdir(exist_ok=True)
    phone.screenshot(path=str(ARTIFACTS / "dashboard-phone-vi.png"), full_page=True)
    context.close()


def test_the_dashboard_switches_language_in_place(web: Any, page: Any) -> None:
    server, data, _ = web
    open_dashboard(page, server.base_url, data.tenant.read, f"?from={FROM}&to={TO}")
    rows = page.locator("#missed tbody tr")
    english = rows.first.locator("td").nth(1).inner_text()
    count = rows.count()
    page.get_by_label("Language").select_option("vi")
    expect(page.locator("h1")).to_have_text("Thống kê cuộc gọi")
    assert rows.count() == count
    assert rows.first.locator("td").nth(1).inner_text() != english  # dates written the vi way
    assert page.locator("#agents caption").inner_text() == "Nhân viên"
