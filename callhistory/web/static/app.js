// The call-history page: signs in with an API key kept in sessionStorage only, and calls the
// same ListCallLogs / Get* methods as any integration. Data is written with textContent only.
"use strict";

const KEY = "callhistory.key";
const LANG = "callhistory.lang";
const FILTERS = ["date_from", "date_to", "direction", "call_state", "call_number", "user_id",
  "department_id", "duration_comparison", "duration_value"];
const LISTS = ["extension_ids", "hotline_ids"];

const TEXT = {
  vi: {
    title: "Lịch sử cuộc gọi", language: "Ngôn ngữ", signOut: "Đăng xuất",
    signInTitle: "Đăng nhập bằng khoá API", apiKey: "Khoá API", signIn: "Đăng nhập",
    keyHint: "Khoá chỉ được giữ trong tab này (sessionStorage) và mất khi đóng tab.",
    dateFrom: "Từ ngày", dateTo: "Đến ngày", direction: "Hướng gọi", any: "Tất cả",
    dir_in: "Gọi vào", dir_out: "Gọi ra", dir_ext: "Nội bộ", dir_ext_in: "Chuyển vào",
    dir_ext_out: "Chuyển ra", dir_unknown: "Không rõ", callState: "Trạng thái",
    state_answered: "Đã trả lời", state_not_answered: "Không trả lời", state_unknown: "Đang gọi",
    callNumber: "Số điện thoại", extensions: "Máy nhánh", hotlines: "Hotline", user: "Nhân viên",
    department: "Phòng ban", duration: "Thời lượng (giây)", seconds: "Số giây", apply: "Lọc",
    reset: "Xoá bộ lọc", exportCsv: "Xuất CSV", exporting: "Đang xuất…", results: "Cuộc gọi", startedAt: "Bắt đầu", caller: "Người gọi",
    callee: "Người nhận", talk: "Đàm thoại", details: "Chi tiết", empty: "Không có cuộc gọi nào.",
    prev: "← Trang trước", next: "Trang sau →", legs: "Các máy đã đổ chuông", show: "Xem",
    hide: "Ẩn", target: "Số", ring: "Đổ chuông", answered: "Trả lời", ended: "Kết thúc",
    status: "Kết quả", reason: "Lý do", trunk: "Trung kế", recording: "Ghi âm",
    leg_answered: "Trả lời", leg_no_answer: "Không trả lời", leg_busy: "Máy bận",
    leg_cancelled: "Đã huỷ", leg_failed: "Lỗi", noLegs: "Không có máy nào đổ chuông.",
    badKey: "Khoá API sai hoặc đã bị thu hồi.", loading: "Đang tải…",
    tenant: (name, tz) => `${name} — giờ ${tz}`,
  },
  en: {
    title: "Call history", language: "Language", signOut: "Sign out",
    signInTitle: "Sign in with an API key", apiKey: "API key", signIn: "Sign in",
    keyHint: "The key is kept in this tab only (sessionStorage) and forgotten when it closes.",
    dateFrom: "From", dateTo: "To", direction: "Direction", any: "Any",
    dir_in: "Inbound", dir_out: "Outbound", dir_ext: "Internal", dir_ext_in: "Transfer in",
    dir_ext_out: "Transfer out", dir_unknown: "Unknown", callState: "State",
    state_answered: "Answered", state_not_answered: "Not answered", state_unknown: "In progress",
    callNumber: "Phone number", extensions: "Extensions", hotlines: "Hotlines", user: "Agent",
    department: "Department", duration: "Talk time (s)", seconds: "Seconds", apply: "Filter",
    reset: "Clear filters", exportCsv: "Export CSV", exporting: "Exporting…", results: "Calls", startedAt: "Started", caller: "Caller",
    callee: "Callee", talk: "Talk time", details: "Details", empty: "No calls.",
    prev: "← Previous", next: "Next →", legs: "Phones that rang", show: "Show", hide: "Hide",
    target: "Number", ring: "Ringing", answered: "Answered", ended: "Ended", status: "Outcome",
    reason: "Reason", trunk: "Trunk", recording: "Recording", leg_answered: "Answered",
    leg_no_answer: "No answer", leg_busy: "Busy", leg_cancelled: "Cancelled", leg_failed: "Failed",
    noLegs: "No phone rang.", badKey: "Wrong or revoked API key.", loading: "Loading…",
    tenant: (name, tz) => `${name} — times in ${tz}`,
  },
};

const $ = (id) => document.getElementById(id);
const state = { lang: "vi", tenant: null, paging: {}, lastPage: null };

function t(name) { return TEXT[state.lang][name] ?? name; }

function el(tag, text, attrs = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  return node;
}

function setLanguage(lang) {
  state.lang = TEXT[lang] ? lang : "vi";
  localStorage.setItem(LANG, state.lang);
  document.documentElement.lang = state.lang;
  $("lang").value = state.lang;
  for (const node of document.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  document.title = `${t("title")} — callhistory`;
  if (state.tenant) showTenant();
  if (state.lastPage) render(state.lastPage);
}

function say(text) {
  $("message").textContent = text;
  $("message").hidden = !text;
}

class ApiError extends Error {
  constructor(status, body) { super(body.msg || `HTTP ${status}`); this.status = status; this.body = body; }
}

async function api(method, body) {
  const response = await fetch(`/v1/shop.Etelecom/${method}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${sessionStorage.getItem(KEY)}` },
    body: JSON.stringify(body),
  });
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new ApiError(response.status, answer);
  return answer;
}

async function all(method, field) {
  const out = [];
  let paging = { limit: 1000 };
  for (;;) {
    const page = await api(method, { paging });
    out.push(...page[field]);
    if (!page.paging.next) return out;
    paging = { limit: 1000, after: page.paging.next };
  }
}

function fill(select, items, label, keepFirst) {
  const first = keepFirst ? select.options[0] : null;
  select.replaceChildren(...(first ? [first] : []));
  for (const item of items) select.append(el("option", label(item), { value: item.id }));
}

async function loadDirectory() {
  const [extensions, hotlines, users, departments] = await Promise.all([
    all("GetExtensions", "extensions"), all("GetHotlines", "hotlines"),
    all("GetUsers", "users"), all("GetDepartments", "departments"),
  ]);
  const sorted = (items, key) => items.sort((a, b) => String(a[key]).localeCompare(String(b[key]), undefined, { numeric: true }));
  fill($("extension_ids"), sorted(extensions, "extension_number"), (e) => e.extension_number, false);
  fill($("hotline_ids"), sorted(hotlines, "hotline"), (h) => (h.name ? `${h.hotline} (${h.name})` : h.hotline), false);
  fill($("user_id"), sorted(users, "full_name"), (u) => u.full_name, true);
  fill($("department_id"), sorted(departments, "name"), (d) => d.name, true);
}

function showTenant() {
  $("tenant").textContent = t("tenant")(state.tenant.name, state.tenant.timezone);
}

// --- filters <-> URL (the key never goes there) ---

function readForm() {
  const query = new URLSearchParams();
  for (const name of FILTERS) { const value = $(name).value.trim(); if (value) query.set(name, value); }
  for (const name of LISTS) for (const option of $(name).selectedOptions) query.append(name, option.value);
  return query;
}

function writeForm(query) {
  for (const name of FILTERS) $(name).value = query.get(name) ?? "";
  for (const name of LISTS) {
    const wanted = new Set(query.getAll(name));
    for (const option of $(name).options) option.selected = wanted.has(option.value);
  }
}

function toFilter(query) {
  const filter = {};
  for (const name of ["date_from", "date_to", "direction", "call_state", "call_number", "user_id", "department_id"]) {
    if (query.get(name)) filter[name] = query.get(name);
  }
  for (const name of LISTS) if (query.getAll(name).length) filter[name] = query.getAll(name);
  if (query.get("duration_comparison")) {
    filter.duration = { comparison: query.get("duration_comparison"), value: query.get("duration_value") || "0" };
  }
  return filter;
}

// --- rendering ---

function when(value) {
  if (!value) return "";
  return new Intl.DateTimeFormat(state.lang === "vi" ? "vi-VN" : "en-GB", {
    timeZone: state.tenant.timezone, dateStyle: "short", timeStyle: "medium",
  }).format(new Date(value));
}

function talk(seconds) {
  const m = Math.floor(seconds / 60);
  return `${m}:${String(seconds % 60).padStart(2, "0")}`;
}

function legsRow(call, id) {
  const row = el("tr", null, { id, class: "legs", hidden: "" });
  const cell = el("td", null, { colspan: "7" });
  if (call.call_targets.length) {
    const table = el("table");
    table.append(el("caption", t("legs")));
    const head = el("tr");
    for (const name of ["target", "ring", "answered", "ended", "status", "reason", "trunk"]) head.append(el("th", t(name), { scope: "col" }));
    const thead = el("thead");
    thead.append(head);
    table.append(thead);
    const body = el("tbody");
    for (const leg of call.call_targets) {
      const tr = el("tr");
      for (const value of [leg.target_number, when(leg.ring_time), when(leg.answered_time), when(leg.ended_time),
        t(`leg_${leg.status}`), leg.end_reason, leg.trunk_name]) tr.append(el("td", value));
      body.append(tr);
    }
    table.append(body);
    cell.append(table);
  } else {
    cell.append(el("p", t("noLegs")));
  }
  for (const url of call.recording_urls) {
    const audio = el("audio", null, { controls: "", preload: "none", src: url, "aria-label": `${t("recording")} ${call.id}` });
    cell.append(audio);
  }
  row.append(cell);
  return row;
}

function render(page) {
  state.lastPage = page;
  const body = $("results").querySelector("tbody");
  body.replaceChildren();
  for (const call of page.call_logs) {
    const row = el("tr", null, { "data-id": call.id });
    row.append(el("td", when(call.started_at)), el("td", t(`dir_${call.direction}`)),
      el("td", call.caller), el("td", call.callee),
      el("td", t(`state_${call.call_state}`), { class: `state-${call.call_state}` }),
      el("td", talk(call.duration), { class: "num" }));
    const legsId = `legs-${call.id}`;
    const toggle = el("button", t("show"), { type: "button", class: "legs-toggle", "aria-expanded": "false", "aria-controls": legsId });
    toggle.addEventListener("click", () => {
      const open = toggle.getAttribute("aria-expanded") !== "true";
      toggle.setAttribute("aria-expanded", String(open));
      toggle.textContent = t(open ? "hide" : "show");
      $(legsId).hidden = !open;
    });
    const cell = el("td");
    cell.append(toggle);
    row.append(cell);
    body.append(row, legsRow(call, legsId));
  }
  $("empty").hidden = page.call_logs.length > 0;
  $("prev").disabled = !page.paging.prev;
  $("next").disabled = !page.paging.next;
}

async function load(paging = {}) {
  say("");
  $("results").setAttribute("aria-busy", "true");
  try {
    const page = await api("ListCallLogs", { filter: toFilter(new URLSearchParams(location.search)), paging });
    state.paging = page.paging;
    render(page);
  } catch (error) {
    handle(error);
  } finally {
    $("results").removeAttribute("aria-busy");
  }
}

// The current filter's calls as CSV (with a BOM, so Excel reads Vietnamese names right).
async function exportCsv() {
  say(t("exporting"));
  const response = await fetch("/v1/export/call_logs.csv", {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${sessionStorage.getItem(KEY)}` },
    body: JSON.stringify({ filter: toFilter(new URLSearchParams(location.search)), bom: true }),
  });
  if (!response.ok) {
    handle(new ApiError(response.status, await response.json().catch(() => ({}))));
    return;
  }
  const link = el("a", "", { href: URL.createObjectURL(await response.blob()), download: "call_logs.csv" });
  document.body.append(link);
  link.click();
  link.remove();
  URL.revokeObjectURL(link.href);
  say("");
}

function handle(error) {
  if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
    signOut();
    say(error.status === 401 ? t("badKey") : error.message);
  } else {
    say(error.message);
  }
}

// --- session ---

async function signIn(key) {
  sessionStorage.setItem(KEY, key);
  try {
    state.tenant = await api("GetTenant", {});
  } catch (error) {
    handle(error);
    return;
  }
  $("sign-in").hidden = true;
  $("calls").hidden = false;
  $("sign-out").hidden = false;
  showTenant();
  try {
    await loadDirectory();
  } catch (error) {
    handle(error);
    return;
  }
  writeForm(new URLSearchParams(location.search));
  await load();
  $("date_from").focus();
}

function signOut() {
  sessionStorage.removeItem(KEY);
  state.tenant = null;
  state.lastPage = null;
  $("calls").hidden = true;
  $("sign-out").hidden = true;
  $("sign-in").hidden = false;
  $("api-key").value = "";
  $("api-key").focus();
}

document.addEventListener("DOMContentLoaded", () => {
  setLanguage(localStorage.getItem(LANG) || (navigator.language.startsWith("vi") ? "vi" : "en"));
  $("lang").addEventListener("change", (event) => setLanguage(event.target.value));
  $("sign-in-form").addEventListener("submit", (event) => {
    event.preventDefault();
    signIn($("api-key").value.trim());
  });
  $("sign-out").addEventListener("click", () => { say(""); signOut(); });
  $("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    const query = readForm();
    history.replaceState(null, "", `${location.pathname}${query.size ? `?${query}` : ""}`);
    load();
  });
  $("filters").addEventListener("reset", () => {
    history.replaceState(null, "", location.pathname);
    setTimeout(load, 0);
  });
  $("export").addEventListener("click", () => exportCsv().catch(handle));
  $("next").addEventListener("click", () => load({ after: state.paging.next, limit: state.paging.limit }));
  $("prev").addEventListener("click", () => load({ before: state.paging.prev, limit: state.paging.limit }));
  if (sessionStorage.getItem(KEY)) signIn(sessionStorage.getItem(KEY));
});
