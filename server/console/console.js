// campuswatch console, the core every page builds on: texts in two languages, the API,
// sign-in, page routing under /console/, and live updates.
// Everything it needs is served by the server; it works in a closed network.
//
// A page is a script of its own (pages/*.js) that calls
//   page("name", { nav: "text key" | null, render: async (main, arg) => ...,
//                  events: [live event kinds it redraws on; all if absent],
//                  concerns: (change, arg) => whether a live change is about what it shows })
// and adds its texts with texts({ "zh": {...}, "en": {...} }). `render` draws the page into
// `main` (again on every live change it listens to); `arg` is the path after the name:
// /console/campus/k-1 renders page "campus" with arg "k-1".
"use strict";

const TEXT = { zh: {}, en: {} };

function texts(byLang) {
  for (const lang of Object.keys(TEXT)) Object.assign(TEXT[lang], byLang[lang]);
}

texts({
  "zh": {
    "title": "校园安防联网监测", "sign-in": "登录", "sign-out": "退出", "user": "用户名",
    "password": "密码", "live-ok": "实时", "live-lost": "连接中断，正在重连", "none": "无",
    "wrong": "用户名或密码错误", "lang": "English", "failed": "加载失败",
    "not-allowed": "无权执行此操作", "kind-gateway": "网关", "kind-alarm": "一键报警",
    "kind-camera": "摄像机", "kind-video": "视频联网",
    "kind-alarm_networking": "报警联网", "online": "在线", "offline": "离线",
    "stale": "失联", "never_seen": "从未上报", "up": "正常", "down": "掉线",
    "degraded": "降级", "unknown": "未知", "maintenance": "维护中",
    "kindergarten": "幼儿园", "primary": "小学", "secondary": "中学", "other": "其他",
  },
  "en": {
    "title": "Campus safety network monitor", "sign-in": "Sign in", "sign-out": "Sign out",
    "user": "User", "password": "Password", "live-ok": "Live",
    "live-lost": "Connection lost, reconnecting", "none": "None",
    "wrong": "Wrong user or password", "lang": "中文", "failed": "Could not load",
    "not-allowed": "You may not do this", "kind-gateway": "gateway", "kind-alarm": "alarm",
    "kind-camera": "camera", "kind-video": "video networking",
    "kind-alarm_networking": "alarm networking", "online": "online", "offline": "offline",
    "stale": "stale", "never_seen": "never seen", "up": "up", "down": "down",
    "degraded": "degraded", "unknown": "unknown", "maintenance": "maintenance",
    "kindergarten": "Kindergarten", "primary": "Primary", "secondary": "Secondary",
    "other": "Other",
  },
});

const params = new URLSearchParams(location.search);
let lang = params.get("lang") || localStorage.getItem("cw-lang") || "zh";
if (!TEXT[lang]) lang = "zh";
/** The signed-in user: { name, role, scope }. */
let me = null;

function t(key) { return (TEXT[lang] && TEXT[lang][key]) || key; }

/** A text with %1, %2, … filled in by the values, in order. */
function fill(text, ...values) {
  return values.reduce((s, v, i) => s.split("%" + (i + 1)).join(v), text);
}

function esc(s) {
  return String(s == null ? "" : s).replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

function pct(rate) { return rate == null ? "–" : (rate * 100).toFixed(1) + "%"; }

function bar(rate) {
  const w = rate == null ? 0 : Math.round(rate * 80);
  return `<span class="bar${rate != null && rate < 0.9 ? " low" : ""}" style="width:${w}px"></span>`;
}

/** The UTC offset reports and daily history are kept in (the API's default, China
 *  Standard Time): report pages ask for it and show times in it, whatever the browser's
 *  zone. */
const REPORT_OFFSET = "+08:00";
const REPORT_OFFSET_MS = 8 * 3600 * 1000;

function locale() { return lang === "zh" ? "zh-CN" : "en-GB"; }

function when(ts) { return ts == null ? "–" : new Date(ts).toLocaleString(locale()); }

/** A duration in milliseconds, in words: "3 h 12 min". */
function span(ms) {
  if (ms == null) return "–";
  const min = Math.floor(ms / 60000), d = Math.floor(min / 1440), h = Math.floor(min % 1440 / 60);
  const parts = lang === "zh"
    ? [[d, "天"], [h, "小时"], [min % 60, "分钟"]]
    : [[d, " d"], [h, " h"], [min % 60, " min"]];
  const shown = parts.filter(([n]) => n > 0).slice(0, 2).map(([n, u]) => n + u);
  return shown.length ? shown.join(lang === "zh" ? "" : " ") : (lang === "zh" ? "不到1分钟" : "< 1 min");
}

function canDo(role) {
  const rank = { viewer: 0, operator: 1, admin: 2 };
  return me != null && rank[me.role] >= rank[role];
}

/** Calls the API; a 401 shows the sign-in form, any other failure throws with the
 *  server's own error message. */
async function api(path, options) {
  const resp = await fetch(path, Object.assign({ credentials: "same-origin" }, options));
  if (resp.status === 401) { showSignIn(); throw new Error("unauthorized"); }
  if (!resp.ok) {
    let message = path + ": " + resp.status, body = null;
    try { body = await resp.json(); message = body.error || message; } catch (e) { /* not JSON */ }
    const err = new Error(message);
    err.status = resp.status;
    // The whole answer too: a refused registry import lists its bad lines in it.
    err.body = body;
    throw err;
  }
  return resp.status === 204 ? null : resp.json();
}

async function post(path, body, contentType) {
  return api(path, {
    method: "POST",
    headers: { "content-type": contentType || "application/json" },
    body: contentType ? body : JSON.stringify(body),
  });
}

// ---- pages and routing ---------------------------------------------------------------

const PAGES = {};
let current = { name: "overview", arg: "" };

function page(name, spec) { PAGES[name] = spec; }

function route() {
  const rest = location.pathname.replace(/^\/console\/?/, "");
  const [name, ...arg] = rest.split("/");
  current = { name: PAGES[name] ? name : "overview", arg: decodeURIComponent(arg.join("/")) };
}

/** Goes to a console address (path and query) without reloading. */
function go(href) {
  history.pushState(null, "", href);
  route();
  render();
}

/** A query string that keeps the console's own options (language, still snapshot). */
function keep(extra) {
  const q = new URLSearchParams(extra || {});
  for (const k of ["lang", "live"]) if (params.has(k) && !q.has(k)) q.set(k, params.get(k));
  const s = q.toString();
  return s ? "?" + s : "";
}

function drawNav() {
  document.getElementById("nav").innerHTML = Object.entries(PAGES)
    .filter(([, p]) => p.nav && (!p.role || canDo(p.role)))
    .map(([name, p]) => `<a href="/console/${name === "overview" ? "" : name}${keep()}" data-nav${name === current.name ? ' class="here"' : ""}>${t(p.nav)}</a>`)
    .join("");
}

let rendering = null;
async function render() {
  if (!me) return;
  drawNav();
  const main = document.getElementById("page");
  const spec = PAGES[current.name];
  // A live refresh redraws the page: keep the field being typed in focused.
  const active = document.activeElement && document.activeElement.id ? document.activeElement : null;
  const caret = active && "selectionStart" in active ? [active.selectionStart, active.selectionEnd] : null;
  const run = (async () => {
    try {
      await spec.render(main, current.arg);
      const again = active && document.getElementById(active.id);
      if (again && again !== active) {
        again.focus();
        if (caret && again.setSelectionRange) try { again.setSelectionRange(caret[0], caret[1]); } catch (e) { /* not a text field */ }
      }
    } catch (e) {
      if (e.message !== "unauthorized") main.innerHTML = `<p class="error">${t("failed")}: ${esc(e.message)}</p>`;
    }
  })();
  rendering = run;
  await run;
  document.body.dataset.page = current.name;
  if (rendering === run) document.body.dataset.ready = "1";
}

// Console links (`data-nav`) change the page without reloading.
document.addEventListener("click", ev => {
  const a = ev.target.closest("a[data-nav]");
  if (!a || ev.ctrlKey || ev.metaKey || ev.shiftKey || ev.button !== 0) return;
  ev.preventDefault();
  go(a.getAttribute("href"));
});
window.addEventListener("popstate", () => { route(); render(); });

// ---- live updates --------------------------------------------------------------------

let pending = null;
function soon() { if (!pending) pending = setTimeout(() => { pending = null; render(); }, 300); }

function listen() {
  const badge = document.getElementById("link");
  const es = new EventSource("/api/v1/live");
  es.onopen = () => { badge.classList.remove("lost"); badge.dataset.t = "live-ok"; badge.textContent = t("live-ok"); soon(); };
  es.onerror = () => { badge.classList.add("lost"); badge.dataset.t = "live-lost"; badge.textContent = t("live-lost"); };
  for (const kind of ["transition", "alert", "incident", "registry", "resync"]) {
    es.addEventListener(kind, ev => {
      const spec = PAGES[current.name];
      if (kind !== "resync" && spec.events && !spec.events.includes(kind)) return;
      if (kind !== "resync" && spec.concerns) {
        let change = null;
        try { change = JSON.parse(ev.data); } catch (e) { /* redraw to be safe */ }
        if (change && !spec.concerns(change, current.arg)) return;
      }
      soon();
    });
  }
}

// ---- the frame: language, sign-in, sign-out -------------------------------------------

function translate() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-t]").forEach(el => { el.textContent = t(el.dataset.t); });
  document.getElementById("lang").textContent = t("lang");
}

function showSignIn() {
  me = null;
  document.getElementById("signin").hidden = false;
  document.getElementById("page").hidden = true;
  document.getElementById("nav").innerHTML = "";
  document.body.dataset.ready = "signin";
}

async function start() {
  route();
  translate();
  try { me = await api("/api/v1/session"); } catch (e) { return; }
  document.getElementById("who").textContent = me.name === "anonymous" ? "" : me.name;
  document.getElementById("signout").hidden = me.name === "anonymous";
  document.getElementById("signin").hidden = true;
  document.getElementById("page").hidden = false;
  await render();
  // `live=off`: a still snapshot (for printing, or a browser that must finish loading).
  if (params.get("live") !== "off") listen();
}

document.getElementById("lang").onclick = () => {
  lang = lang === "zh" ? "en" : "zh";
  localStorage.setItem("cw-lang", lang);
  if (params.has("lang")) {
    params.set("lang", lang);
    history.replaceState(null, "", location.pathname + "?" + params.toString());
  }
  translate();
  render();
};

document.getElementById("signout").onclick = async () => {
  await fetch("/api/v1/session", { method: "DELETE", credentials: "same-origin" });
  location.reload();
};

document.getElementById("signin").onsubmit = async ev => {
  ev.preventDefault();
  const f = new FormData(ev.target);
  const resp = await fetch("/api/v1/session", {
    method: "POST", credentials: "same-origin", headers: { "content-type": "application/json" },
    body: JSON.stringify({ name: f.get("name"), password: f.get("password") }),
  });
  if (resp.ok) { document.getElementById("signin-error").textContent = ""; start(); } else { document.getElementById("signin-error").textContent = t("wrong"); }
};

// Pages register themselves in the scripts after this one; start once all are loaded.
document.addEventListener("DOMContentLoaded", start);
