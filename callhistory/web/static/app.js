// The call list: every ListCallLogs filter (kept in the address bar), paging, a call's legs and
// recordings, and a CSV export of the current filter. Shared parts are in common.js.
"use strict";

const FILTERS = ["date_from", "date_to", "direction", "call_state", "call_number", "user_id",
  "department_id", "duration_comparison", "duration_value"];
const LISTS = ["extension_ids", "hotline_ids"];

Object.assign(TEXT.vi, {
  title: "Lịch sử cuộc gọi",
  dateFrom: "Từ ngày", dateTo: "Đến ngày", direction: "Hướng gọi", any: "Tất cả",
  dir_in: "Gọi vào", dir_out: "Gọi ra", dir_ext: "Nội bộ", dir_ext_in: "Chuyển vào",
  dir_ext_out: "Chuyển ra", dir_unknown: "Không rõ", callState: "Trạng thái",
  state_answered: "Đã trả lời", state_not_answered: "Không trả lời", state_unknown: "Đang gọi",
  callNumber: "Số điện thoại", extensions: "Máy nhánh", hotlines: "Hotline", user: "Nhân viên",
  department: "Phòng ban", duration: "Thời lượng (giây)", seconds: "Số giây", apply: "Lọc",
  reset: "Xoá bộ lọc", exportCsv: "Xuất CSV", exporting: "Đang xuất…", results: "Cuộc gọi",
  startedAt: "Bắt đầu", caller: "Người gọi", callee: "Người nhận", talk: "Đàm thoại",
  details: "Chi tiết", empty: "Không có cuộc gọi nào.", prev: "← Trang trước",
  next: "Trang sau →", legs: "Các máy đã đổ chuông", show: "Xem", hide: "Ẩn", target: "Số",
  ring: "Đổ chuông", answered: "Trả lời", ended: "Kết thúc", status: "Kết quả", reason: "Lý do",
  trunk: "Trung kế", recording: "Ghi âm", leg_answered: "Trả lời", leg_no_answer: "Không trả lời",
  leg_busy: "Máy bận", leg_cancelled: "Đã huỷ", leg_failed: "Lỗi",
  noLegs: "Không có máy nào đổ chuông.", notUploaded: "Ghi âm chưa tải lên",
});
Object.assign(TEXT.en, {
  title: "Call history",
  dateFrom: "From", dateTo: "To", direction: "Direction", any: "Any",
  dir_in: "Inbound", dir_out: "Outbound", dir_ext: "Internal", dir_ext_in: "Transfer in",
  dir_ext_out: "Transfer out", dir_unknown: "Unknown", callState: "State",
  state_answered: "Answered", state_not_answered: "Not answered", state_unknown: "In progress",
  callNumber: "Phone number", extensions: "Extensions", hotlines: "Hotlines", user: "Agent",
  department: "Department", duration: "Talk time (s)", seconds: "Seconds", apply: "Filter",
  reset: "Clear filters", exportCsv: "Export CSV", exporting: "Exporting…", results: "Calls",
  startedAt: "Started", caller: "Caller", callee: "Callee", talk: "Talk time",
  details: "Details", empty: "No calls.", prev: "← Previous", next: "Next →",
  legs: "Phones that rang", show: "Show", hide: "Hide", target: "Number", ring: "Ringing",
  answered: "Answered", ended: "Ended", status: "Outcome", reason: "Reason", trunk: "Trunk",
  recording: "Recording", leg_answered: "Answered", leg_no_answer: "No answer", leg_busy: "Busy",
  leg_cancelled: "Cancelled", leg_failed: "Failed", noLegs: "No phone rang.",
  notUploaded: "Recordings not uploaded",
});

const list = { paging: {}, lastPage: null };

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
  // Named by the PBX but never uploaded: shown as written, not played.
  if (call.recording_sources && call.recording_sources.length) {
    cell.append(el("p", `${t("notUploaded")}: ${call.recording_sources.join(", ")}`, { class: "sources" }));
  }
  row.append(cell);
  return row;
}

function render(page) {
  list.lastPage = page;
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
    list.paging = page.paging;
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

boot({
  main: "calls",
  signedIn: async () => {
    await loadDirectory();
    writeForm(new URLSearchParams(location.search));
    await load();
    $("date_from").focus();
  },
  signedOut: () => { list.lastPage = null; },
  language: () => { if (list.lastPage) render(list.lastPage); },
}, () => {
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
  $("next").addEventListener("click", () => load({ after: list.paging.next, limit: list.paging.limit }));
  $("prev").addEventListener("click", () => load({ before: list.paging.prev, limit: list.paging.limit }));
});
