// The dashboard: GetCallStats and ListMissedCalls for a period, drawn as stacked bars (hand-written
// SVG: smaller than any chart library, and nothing to load from elsewhere), a weekday x hour
// table shaded by calls, an agents table linking to their calls, and the customers to call back.
"use strict";

Object.assign(TEXT.vi, {
  title: "Thống kê cuộc gọi", period: "Khoảng thời gian", today: "Hôm nay", days7: "7 ngày",
  days30: "30 ngày", dateFrom: "Từ ngày", dateTo: "Đến ngày", show: "Xem", calls: "Cuộc gọi",
  answered: "Đã trả lời", missed: "Gọi nhỡ", answerRate: "Tỉ lệ trả lời",
  talkTime: "Thời gian đàm thoại", other: "Khác (gọi ra, nội bộ không trả lời)", otherShort: "Khác",
  asTable: "Xem dạng bảng", byHour: "Cuộc gọi theo giờ", byDay: "Cuộc gọi theo ngày",
  hour: "Giờ", day: "Ngày", heatTitle: "Cuộc gọi theo thứ và giờ", weekday: "Thứ",
  weekdays: ["T2", "T3", "T4", "T5", "T6", "T7", "CN"], agentsTitle: "Nhân viên",
  agent: "Nhân viên", noAgent: "(không có nhân viên)", timeToAnswer: "Thời gian chờ trả lời (TB)",
  missedTitle: "Gọi nhỡ chưa gọi lại", number: "Số điện thoại", attempts: "Số lần gọi",
  lastTry: "Lần gọi cuối", callbacks: "Đã gọi lại (không nghe)",
  missedEmpty: "Không còn cuộc gọi nhỡ nào chưa gọi lại.", more: "Xem thêm",
  missedTooLong: "Danh sách gọi nhỡ chỉ xem được tối đa 92 ngày.",
});
Object.assign(TEXT.en, {
  title: "Call dashboard", period: "Period", today: "Today", days7: "7 days", days30: "30 days",
  dateFrom: "From", dateTo: "To", show: "Show", calls: "Calls", answered: "Answered",
  missed: "Missed", answerRate: "Answer rate", talkTime: "Talk time",
  other: "Other (outbound, internal not answered)", otherShort: "Other", asTable: "Show as a table",
  byHour: "Calls by hour", byDay: "Calls by day", hour: "Hour", day: "Day",
  heatTitle: "Calls by weekday and hour", weekday: "Weekday",
  weekdays: ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"], agentsTitle: "Agents",
  agent: "Agent", noAgent: "(no agent)", timeToAnswer: "Avg time to answer",
  missedTitle: "Missed calls not returned", number: "Phone number", attempts: "Tries",
  lastTry: "Last try", callbacks: "Called back (no answer)",
  missedEmpty: "No missed call is waiting for a call back.", more: "More",
  missedTooLong: "Missed calls can be listed for at most 92 days.",
});

const board = { from: "", to: "", users: new Map(), data: null, missed: [], missedNext: "" };
const DAY_MS = 86_400_000;

// Dates are the tenant's calendar dates (YYYY-MM-DD), whatever the browser's zone.
function tenantToday() {
  return new Intl.DateTimeFormat("en-CA", { timeZone: state.tenant.timezone }).format(new Date());
}

function shift(date, days) {
  return new Date(Date.parse(`${date}T00:00:00Z`) + days * DAY_MS).toISOString().slice(0, 10);
}

function number(value) {
  return new Intl.NumberFormat(state.lang === "vi" ? "vi-VN" : "en-GB").format(value);
}

function percent(value) {
  return new Intl.NumberFormat(state.lang === "vi" ? "vi-VN" : "en-GB", { style: "percent", maximumFractionDigits: 1 }).format(value);
}

// Talk time summed over many calls: hours:minutes:seconds.
function hours(seconds) {
  const s = Math.round(seconds);
  const pad = (n) => String(n).padStart(2, "0");
  return `${Math.floor(s / 3600)}:${pad(Math.floor(s / 60) % 60)}:${pad(s % 60)}`;
}

function callsLink(params) {
  const query = new URLSearchParams({ date_from: board.from, date_to: board.to, ...params });
  return `/calls?${query}`;
}

function dayLabel(day) {
  const [, m, d] = day.split("-");
  return `${d}/${m}`;
}

function drawBars(buckets, dimension) {
  const width = Math.max(320, buckets.length * 22 + 40);
  const height = 220;
  const top = 10;
  const bottom = 30;
  const left = 36;
  const plot = height - top - bottom;
  const most = Math.max(1, ...buckets.map((b) => b.calls));
  const step = (width - left - 4) / Math.max(1, buckets.length);
  const chart = svg("svg", { viewBox: `0 0 ${width} ${height}`, width, height, role: "img", "aria-labelledby": "bars-title", class: "bars" });
  for (const fraction of [0, 0.5, 1]) {
    const y = top + plot - fraction * plot;
    chart.append(svg("line", { x1: left, x2: width, y1: y, y2: y, class: "grid" }));
    const tick = svg("text", { x: left - 4, y: y + 4, class: "tick", "text-anchor": "end" });
    tick.textContent = String(Math.round(most * fraction));
    chart.append(tick);
  }
  const labelEvery = Math.ceil(buckets.length / 16);
  buckets.forEach((bucket, i) => {
    const key = bucket.key[dimension];
    const other = bucket.calls - bucket.answered - bucket.missed;
    const x = left + i * step + 2;
    const group = svg("g", { class: "bar", "data-key": key, "data-calls": bucket.calls, "data-answered": bucket.answered, "data-missed": bucket.missed, "data-other": other });
    let y = top + plot;
    for (const [part, count] of [["answered", bucket.answered], ["missed", bucket.missed], ["other", other]]) {
      if (!count) continue;
      const h = (count / most) * plot;
      y -= h;
      group.append(svg("rect", { x, y, width: Math.max(2, step - 4), height: h, class: `bar-${part}` }));
    }
    const title = svg("title");
    title.textContent = `${dimension === "day" ? key : `${key}:00`} — ${t("calls")} ${bucket.calls}, ${t("answered")} ${bucket.answered}, ${t("missed")} ${bucket.missed}, ${t("otherShort")} ${other}`;
    group.append(title);
    chart.append(group);
    if (i % labelEvery === 0) {
      const label = svg("text", { x: x + (step - 4) / 2, y: height - bottom + 16, class: "tick", "text-anchor": "middle" });
      label.textContent = dimension === "day" ? dayLabel(key) : key;
      chart.append(label);
    }
  });
  $("bars").replaceChildren(chart);
  $("bars-title").textContent = t(dimension === "day" ? "byDay" : "byHour");
  $("bars-key-head").textContent = t(dimension);
  $("bars-table").querySelector("tbody").replaceChildren(...buckets.map((b) => {
    const row = el("tr");
    row.append(el("th", b.key[dimension], { scope: "row" }), el("td", b.calls, { class: "num" }),
      el("td", b.answered, { class: "num" }), el("td", b.missed, { class: "num" }),
      el("td", b.calls - b.answered - b.missed, { class: "num" }));
    return row;
  }));
}

function drawTotals(buckets) {
  const sum = (field) => buckets.reduce((total, b) => total + b[field], 0);
  const calls = sum("calls");
  const answered = sum("answered");
  $("total-calls").textContent = number(calls);
  $("total-answered").textContent = number(answered);
  $("total-missed").textContent = number(sum("missed"));
  $("total-rate").textContent = percent(calls ? answered / calls : 0);
  $("total-talk").textContent = hours(sum("talk_time"));
}

function drawHeat(buckets) {
  const counts = new Map(buckets.map((b) => [`${b.key.weekday}-${b.key.hour}`, b.calls]));
  const most = Math.max(1, ...counts.values());
  const head = el("tr");
  head.append(el("th", t("weekday"), { scope: "col" }));
  for (let hour = 0; hour < 24; hour += 1) head.append(el("th", String(hour).padStart(2, "0"), { scope: "col" }));
  $("heat").querySelector("thead").replaceChildren(head);
  const rows = [];
  for (let day = 1; day <= 7; day += 1) {
    const row = el("tr");
    row.append(el("th", t("weekdays")[day - 1], { scope: "row" }));
    for (let hour = 0; hour < 24; hour += 1) {
      const key = `${day}-${String(hour).padStart(2, "0")}`;
      const calls = counts.get(key) ?? 0;
      const level = calls ? Math.min(4, 1 + Math.floor((calls / most) * 4)) : 0;
      row.append(el("td", calls, { class: `num heat-${level}`, "data-key": key }));
    }
    rows.push(row);
  }
  $("heat").querySelector("tbody").replaceChildren(...rows);
}

function drawAgents(buckets) {
  const rows = buckets
    .filter((b) => b.calls)
    .sort((a, b) => b.answered - a.answered || b.calls - a.calls)
    .map((b) => {
      const id = b.key.user;
      const row = el("tr", null, { "data-user": id });
      const name = el("th", null, { scope: "row" });
      if (id) {
        name.append(el("a", board.users.get(id) ?? id, { href: callsLink({ user_id: id }) }));
      } else {
        name.textContent = t("noAgent");
      }
      const wait = b.avg_time_to_answer === null ? "—" : `${b.avg_time_to_answer.toFixed(1)} s`;
      row.append(name, el("td", b.calls, { class: "num" }), el("td", b.answered, { class: "num" }),
        el("td", b.missed, { class: "num" }), el("td", hours(b.talk_time), { class: "num" }),
        el("td", wait, { class: "num" }));
      return row;
    });
  $("agents").querySelector("tbody").replaceChildren(...rows);
}

function missedRow(entry) {
  const row = el("tr", null, { "data-number": entry.number });
  const cell = el("th", null, { scope: "row" });
  cell.append(el("a", entry.number, { href: callsLink({ call_number: entry.number }) }));
  row.append(cell, el("td", entry.attempts, { class: "num" }), el("td", when(entry.last_try_at)),
    el("td", entry.callback_attempts ? `${entry.callback_attempts} (${when(entry.last_callback_at)})` : "0", { class: "num" }));
  return row;
}

async function loadMissed(after) {
  const body = $("missed").querySelector("tbody");
  if (!after) body.replaceChildren();
  const days = (Date.parse(board.to) - Date.parse(board.from)) / DAY_MS + 1;
  if (days > 92) {
    $("missed-empty").hidden = true;
    $("missed-more").hidden = true;
    say(t("missedTooLong"));
    return;
  }
  const page = await api("ListMissedCalls", {
    filter: { date_from: board.from, date_to: board.to }, paging: { limit: 20, ...(after ? { after } : {}) },
  });
  if (!after) board.missed = [];
  board.missed.push(...page.missed_calls);
  body.append(...page.missed_calls.map(missedRow));
  board.missedNext = page.paging.next;
  $("missed-more").hidden = !page.paging.next;
  $("missed-empty").hidden = body.rows.length > 0;
}

function draw() {
  const { bars, dimension, heat, agents } = board.data;
  drawTotals(bars);
  drawBars(bars, dimension);
  drawHeat(heat);
  drawAgents(agents);
  $("missed").querySelector("tbody").replaceChildren(...board.missed.map(missedRow));
}

async function load() {
  say("");
  $("dashboard").setAttribute("aria-busy", "true");
  try {
    const filter = { date_from: board.from, date_to: board.to };
    const dimension = board.from === board.to ? "hour" : "day";
    const [bars, heat, agents, users] = await Promise.all([
      api("GetCallStats", { group_by: [dimension], filter }),
      api("GetCallStats", { group_by: ["weekday", "hour"], filter }),
      api("GetCallStats", { group_by: ["user"], filter }),
      board.users.size ? null : all("GetUsers", "users"),
    ]);
    if (users) board.users = new Map(users.map((u) => [u.id, u.full_name]));
    board.data = { bars: bars.buckets, dimension, heat: heat.buckets, agents: agents.buckets };
    board.missed = [];
    draw();
    await loadMissed("");
  } catch (error) {
    handle(error);
  } finally {
    $("dashboard").removeAttribute("aria-busy");
  }
}

// The period lives in the address bar (?from=…&to=…), so a view can be bookmarked.
function choose(from, to) {
  board.from = from;
  board.to = to;
  $("from").value = from;
  $("to").value = to;
  history.replaceState(null, "", `${location.pathname}?${new URLSearchParams({ from, to })}`);
  return load();
}

boot({
  main: "dashboard",
  signedIn: async () => {
    const query = new URLSearchParams(location.search);
    const today = tenantToday();
    await choose(query.get("from") || shift(today, -6), query.get("to") || today);
  },
  signedOut: () => { board.data = null; board.users = new Map(); },
  language: () => { if (board.data) draw(); },
}, () => {
  for (const button of document.querySelectorAll("[data-days]")) {
    button.addEventListener("click", () => {
      const today = tenantToday();
      choose(shift(today, 1 - Number(button.dataset.days)), today);
    });
  }
  $("range").addEventListener("submit", (event) => {
    event.preventDefault();
    if ($("from").value > $("to").value) [$("from").value, $("to").value] = [$("to").value, $("from").value];
    choose($("from").value, $("to").value);
  });
  $("missed-more").addEventListener("click", () => loadMissed(board.missedNext).catch(handle));
});
