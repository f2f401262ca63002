// What both pages share: the API key kept in sessionStorage only, the language switch, calls to
// the same RPC methods as any integration, and values written with textContent only.
"use strict";

const KEY = "callhistory.key";
const LANG = "callhistory.lang";

const TEXT = {
  vi: {
    language: "Ngôn ngữ", signOut: "Đăng xuất", signInTitle: "Đăng nhập bằng khoá API",
    apiKey: "Khoá API", signIn: "Đăng nhập",
    keyHint: "Khoá chỉ được giữ trong tab này (sessionStorage) và mất khi đóng tab.",
    navCalls: "Cuộc gọi", navDashboard: "Thống kê", badKey: "Khoá API sai hoặc đã bị thu hồi.",
    loading: "Đang tải…", tenant: (name, tz) => `${name} — giờ ${tz}`,
  },
  en: {
    language: "Language", signOut: "Sign out", signInTitle: "Sign in with an API key",
    apiKey: "API key", signIn: "Sign in",
    keyHint: "The key is kept in this tab only (sessionStorage) and forgotten when it closes.",
    navCalls: "Calls", navDashboard: "Dashboard", badKey: "Wrong or revoked API key.",
    loading: "Loading…", tenant: (name, tz) => `${name} — times in ${tz}`,
  },
};

const $ = (id) => document.getElementById(id);
const state = { lang: "vi", tenant: null };
// What the page does when it signs in or out, or its language changes (boot sets these).
const hooks = { main: "", signedIn: async () => {}, signedOut: () => {}, language: () => {} };

function t(name) { return TEXT[state.lang][name] ?? name; }

function el(tag, text, attrs = {}) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  return node;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
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
  hooks.language();
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

function when(value) {
  if (!value) return "";
  return new Intl.DateTimeFormat(state.lang === "vi" ? "vi-VN" : "en-GB", {
    timeZone: state.tenant.timezone, dateStyle: "short", timeStyle: "medium",
  }).format(new Date(value));
}

function talk(seconds) {
  const s = Math.round(seconds);
  const m = Math.floor(s / 60);
  return `${m}:${String(s % 60).padStart(2, "0")}`;
}

function showTenant() {
  $("tenant").textContent = t("tenant")(state.tenant.name, state.tenant.timezone);
}

function handle(error) {
  if (error instanceof ApiError && (error.status === 401 || error.status === 403)) {
    signOut();
    say(error.status === 401 ? t("badKey") : error.message);
  } else {
    say(error.message);
  }
}

async function signIn(key) {
  sessionStorage.setItem(KEY, key);
  try {
    state.tenant = await api("GetTenant", {});
  } catch (error) {
    handle(error);
    return;
  }
  $("sign-in").hidden = true;
  $(hooks.main).hidden = false;
  $("sign-out").hidden = false;
  showTenant();
  try {
    await hooks.signedIn();
  } catch (error) {
    handle(error);
  }
}

function signOut() {
  sessionStorage.removeItem(KEY);
  state.tenant = null;
  hooks.signedOut();
  $(hooks.main).hidden = true;
  $("sign-out").hidden = true;
  $("sign-in").hidden = false;
  $("api-key").value = "";
  $("api-key").focus();
}

// Wires the page: its main section's id, its hooks, and what it does once the DOM is there.
function boot(page, ready) {
  Object.assign(hooks, page);
  document.addEventListener("DOMContentLoaded", () => {
    setLanguage(localStorage.getItem(LANG) || (navigator.language.startsWith("vi") ? "vi" : "en"));
    $("lang").addEventListener("change", (event) => setLanguage(event.target.value));
    $("sign-in-form").addEventListener("submit", (event) => {
      event.preventDefault();
      signIn($("api-key").value.trim());
    });
    $("sign-out").addEventListener("click", () => { say(""); signOut(); });
    ready();
    if (sessionStorage.getItem(KEY)) signIn(sessionStorage.getItem(KEY));
  });
}
