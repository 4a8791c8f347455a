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
    "sound-on": "声音提示", "new-critical": "新的严重报警", "dismiss": "关闭",
    "err-bad_request": "请求有误", "err-not_found": "未找到", "err-bad_registry": "名册文件有误，未导入",
    "err-unavailable": "服务暂不可用", "err-unauthorized": "请先登录", "err-forbidden": "无权执行此操作",
    "err-method_not_allowed": "不支持的操作", "err-too_large": "内容过大", "err-internal": "服务器内部错误",
    "err-too_many_requests": "登录失败次数过多，请稍后再试",
    "since-registered": "自列入名册起", "since-registered-at": "自 %1 列入名册起",
    "since-registered-for": "自 %1 列入名册起，已 %2",
    "kind-gb_device": "视频平台设备", "kind-gb_channel": "视频平台通道", "kind-gb_alarm": "视频平台报警",
    "on": "在线", "off": "离线",
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
    "other": "Other", "sound-on": "Sound", "new-critical": "New critical alert",
    "dismiss": "Dismiss", "err-bad_request": "Bad request", "err-not_found": "Not found",
    "err-bad_registry": "The registry file has errors; nothing was imported",
    "err-unavailable": "Not available now", "err-unauthorized": "Please sign in",
    "err-forbidden": "You may not do this", "err-method_not_allowed": "Not supported",
    "err-too_large": "Too large", "err-internal": "Internal error of the server",
    "err-too_many_requests": "Too many failed sign-ins; try again later",
    "since-registered": "since it was registered", "since-registered-at": "since it was registered on %1",
    "since-registered-for": "since it was registered on %1: %2",
    "kind-gb_device": "video platform device", "kind-gb_channel": "video platform channel",
    "kind-gb_alarm": "video platform alarm", "on": "ON", "off": "OFF",
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

/** The colour step of a rate: 0 % is the loudest (`r0`), then below 50 %, 80 %, 90 %,
 *  98 %, and the rest (`r5`); `rn` when there is no rate. One scale for tables, tiles
 *  and the map, so that 76.9 % and 89.7 % never look the same and 0 % is never blank. */
function step(rate) {
  if (rate == null) return "rn";
  if (rate <= 0) return "r0";
  if (rate < 0.5) return "r1";
  if (rate < 0.8) return "r2";
  if (rate < 0.9) return "r3";
  if (rate < 0.98) return "r4";
  return "r5";
}

/** A rate's bar: always drawn (a 0 % bar is a full-height red stub), coloured by step. */
function bar(rate) {
  const w = rate == null ? 0 : Math.max(Math.round(rate * 60), 3);
  return `<span class="bar ${step(rate)}" style="width:${w}px"></span>`;
}

/** A table cell of a rate: its step's colour, its bar and its figure. */
function rateCell(rate, extra) {
  return `<td class="rate ${step(rate)}" data-rate="${rate == null ? "" : rate}">${bar(rate)}${extra == null ? "" : extra + " "}<b>${pct(rate)}</b></td>`;
}

// ---- sortable tables ---------------------------------------------------------------------

/** Each sortable table's order, by table id, kept across live redraws: `{ key, desc }`. */
const SORTS = {};

/** A sortable table: `columns` are `{ key, label, value(row), cell(row) }` (`value` is
 *  what sorts: a number or a text); clicking a header sorts by it, again reverses. Rows
 *  with no value sort last either way. `order` is the initial `{ key, desc }`. */
function sortable(id, columns, rows, order, attrs) {
  const o = SORTS[id] || (SORTS[id] = Object.assign({}, order));
  const col = columns.find(c => c.key === o.key) || columns[0];
  const sorted = rows.slice().sort((a, b) => {
    const x = col.value(a), y = col.value(b);
    if (x == null || x === "") return y == null || y === "" ? 0 : 1;
    if (y == null || y === "") return -1;
    const c = typeof x === "number" && typeof y === "number" ? x - y : String(x).localeCompare(String(y), locale());
    return o.desc ? -c : c;
  });
  const head = columns.map(c => {
    const here = c.key === col.key;
    return `<th data-sort="${c.key}"${here ? ` aria-sort="${o.desc ? "descending" : "ascending"}" class="sorted"` : ""}><button type="button">${c.label}${here ? (o.desc ? " ▼" : " ▲") : ""}</button></th>`;
  }).join("");
  return `<table id="${id}" class="sortable"><thead><tr>${head}</tr></thead><tbody>
    ${sorted.length ? sorted.map(r => `<tr${attrs ? " " + attrs(r) : ""}>${columns.map(c => c.cell(r)).join("")}</tr>`).join("")
      : `<tr><td colspan="${columns.length}">${t("none")}</td></tr>`}</tbody></table>`;
}

// A header of a sortable table sorts it (the page draws it again in the new order).
document.addEventListener("click", ev => {
  const th = ev.target.closest("table.sortable th[data-sort]");
  if (!th) return;
  const id = th.closest("table").id, key = th.dataset.sort, o = SORTS[id];
  if (o.key === key) o.desc = !o.desc; else { o.key = key; o.desc = false; }
  render(false);
});

/** The server's time zone (its `time_zone` setting, told by GET /api/v1/session). Every
 *  time on every page is shown in it, as `2026-12-05 08:22:23`: the browser's own zone
 *  never changes what is shown. */
let zone = "Asia/Shanghai";
let zoneFormat = null;

/** The wall-clock fields of instant `ms` in the server's zone, as numbers. */
function zoned(ms) {
  if (!zoneFormat || zoneFormat.zone !== zone) {
    zoneFormat = new Intl.DateTimeFormat("en-US", {
      timeZone: zone, hourCycle: "h23", year: "numeric", month: "2-digit", day: "2-digit",
      hour: "2-digit", minute: "2-digit", second: "2-digit",
    });
    zoneFormat.zone = zone;
  }
  const p = {};
  for (const part of zoneFormat.formatToParts(new Date(ms))) p[part.type] = Number(part.value);
  return p;
}

/** How far the server's zone is ahead of UTC at instant `ms`, in milliseconds. */
function zoneOffset(ms) {
  const p = zoned(ms);
  return Date.UTC(p.year, p.month - 1, p.day, p.hour, p.minute, p.second) - Math.floor(ms / 1000) * 1000;
}

/** The zone's offset at `ms` as the API writes it: `+08:00`. */
function offsetText(ms) {
  const m = Math.round(zoneOffset(ms) / 60000), a = Math.abs(m);
  return (m < 0 ? "-" : "+") + String(Math.floor(a / 60)).padStart(2, "0") + ":" + String(a % 60).padStart(2, "0");
}

const two = n => String(n).padStart(2, "0");

/** A time (an API timestamp or milliseconds) as `2026-12-05 08:22:23` in the server's
 *  zone; `–` when there is none. */
function when(ts) {
  const ms = typeof ts === "number" ? ts : Date.parse(ts);
  if (ts == null || isNaN(ms)) return "–";
  const p = zoned(ms);
  return `${p.year}-${two(p.month)}-${two(p.day)} ${two(p.hour)}:${two(p.minute)}:${two(p.second)}`;
}

/** The same to the minute: `2026-12-05 08:22`. */
function whenMinute(ts) { return ts == null ? "–" : when(ts).slice(0, 16); }

/** The day of a time in the server's zone: `2026-12-05`. */
function dayOf(ts) { return ts == null ? "–" : when(ts).slice(0, 10); }

/** The first midnight of the server's zone after instant `ms`. */
function nextMidnight(ms) {
  const p = zoned(ms);
  const local = Date.UTC(p.year, p.month - 1, p.day + 1);
  // Local midnight as an instant: take off the offset in force then.
  return local - zoneOffset(local - zoneOffset(ms));
}

/** The names of the divisions the server knows (`/console/assets/regions.json`), by
 *  code: `{ name, name_en }`. */
const REGIONS = new Map();

async function loadRegionNames() {
  try {
    const resp = await fetch("/console/assets/regions.json", { credentials: "same-origin" });
    if (resp.ok) for (const r of await resp.json()) REGIONS.set(r.code, r);
  } catch (e) { /* names as the API gives them */ }
}

/** A region's name in the console's language; `fallback` (the API's name) or the code
 *  when the table does not know it. */
function rname(code, fallback) {
  const r = REGIONS.get(code);
  if (!r) return fallback || code;
  return lang === "en" && r.name_en ? r.name_en : r.name;
}

function locale() { return lang === "zh" ? "zh-CN" : "en-GB"; }

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
    try {
      body = await resp.json();
      // The error's code, in the console's language; the server's words as the detail.
      const said = body.code && TEXT[lang]["err-" + body.code];
      message = !said ? body.error || message : lang === "zh" ? `${said}（${body.error}）` : `${said} (${body.error})`;
    } catch (e) { /* not JSON */ }
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

/** What the page on show last loaded, to draw it again without asking the server (a
 *  sort, a filter, the language): `{ key, data }`. */
let loaded = null;

/** Replaces what `html` changes in `main`: each top-level element with an id is put in
 *  only if it differs from the one on show, so a live refresh leaves the rest (and the
 *  field being typed in, and the scroll position) alone. */
function patch(main, html) {
  const next = document.createElement("div");
  next.innerHTML = html;
  const fresh = [...next.children];
  const same = fresh.length === main.children.length && fresh.every((el, i) => el.id && main.children[i].id === el.id);
  if (!same) { main.innerHTML = html; return; }
  fresh.forEach((el, i) => {
    const old = main.children[i];
    if (old.outerHTML !== el.outerHTML) old.replaceWith(el);
  });
}

let rendering = null;
/** Draws the current page; with `reload` false, from what it last loaded. */
async function render(reload = true) {
  if (!me) return;
  drawNav();
  const main = document.getElementById("page");
  const spec = PAGES[current.name];
  const key = current.name + "|" + current.arg + "|" + location.search;
  // A live refresh redraws the page: keep the field being typed in focused.
  const active = document.activeElement && document.activeElement.id ? document.activeElement : null;
  const caret = active && "selectionStart" in active ? [active.selectionStart, active.selectionEnd] : null;
  // This drawing's mark: a newer one started meanwhile draws instead. Set before the
  // drawing starts, which may finish without waiting (the page's data already loaded).
  const mine = {};
  rendering = mine;
  const run = (async () => {
    try {
      if (spec.load) {
        if (reload || !loaded || loaded.key !== key) loaded = { key, data: await spec.load(current.arg) };
        if (rendering !== mine) return;
        patch(main, spec.draw(loaded.data, current.arg));
        if (spec.wire) spec.wire(main, loaded.data, current.arg);
      } else {
        await spec.render(main, current.arg);
      }
      const again = active && document.getElementById(active.id);
      if (again && again !== active) {
        again.focus();
        if (caret && again.setSelectionRange) try { again.setSelectionRange(caret[0], caret[1]); } catch (e) { /* not a text field */ }
      }
    } catch (e) {
      if (e.message !== "unauthorized") main.innerHTML = `<p class="error">${t("failed")}: ${esc(e.message)}</p>`;
    }
  })();
  await run;
  document.body.dataset.page = current.name;
  if (rendering === mine) document.body.dataset.ready = "1";
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

/** Live changes load the page again at most once every `CALM_MS` (the first at once):
 *  a busy network's stream of changes costs the server a few requests a minute per open
 *  console, and the page does not flicker. */
const CALM_MS = 10000;
let pending = null, lastLoad = 0;
function soon() {
  if (pending) return;
  const wait = Math.max(300, lastLoad + CALM_MS - Date.now());
  pending = setTimeout(() => { pending = null; lastLoad = Date.now(); render(); }, wait);
}

/** The live stream, while the page is on show. */
let stream = null;

function listen() {
  const badge = document.getElementById("link");
  const es = new EventSource("/api/v1/live");
  stream = es;
  es.onopen = () => { badge.classList.remove("lost"); badge.dataset.t = "live-ok"; badge.textContent = t("live-ok"); soon(); };
  es.onerror = () => { badge.classList.add("lost"); badge.dataset.t = "live-lost"; badge.textContent = t("live-lost"); };
  for (const kind of ["transition", "alert", "incident", "gb_device", "registry", "resync"]) {
    es.addEventListener(kind, ev => {
      if (kind === "alert") try { maybePopup(JSON.parse(ev.data).data); } catch (e) { /* not JSON */ }
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

// A page left for another may be kept by the browser to come back to (the back-forward
// cache) with its stream open; a browser opens at most six connections to one server, so
// a few pages left behind would leave none for the page on show. Close the stream when
// the page is hidden so, and open it again (loading the page afresh) if it comes back.
window.addEventListener("pagehide", () => { if (stream) { stream.close(); stream = null; } });
window.addEventListener("pageshow", ev => { if (ev.persisted && me && !stream && params.get("live") !== "off") listen(); });

// ---- new critical alerts: a popup, and a sound if the operator turned it on ----------

/** Acknowledges alert `id` as the signed-in user (with sign-in on, the server records
 *  the user whatever `by` says). */
async function acknowledgeAlert(id, comment) {
  return post(`/api/v1/alerts/${id}/ack`, comment ? { by: me.name, comment } : { by: me.name });
}

/** Alerts already popped up (or on show): id → when it opened (ms). One older than
 *  `POPUP_MAX_AGE_MS` never pops up, so its id is forgotten: a console left alone (a
 *  wallboard) holds only the last few minutes' ids. */
const popped = new Map();
const POPUP_MAX_AGE_MS = 5 * 60e3;
/** Popups on show at most, the newest; older ones go (the alarm centre lists them all),
 *  so an unattended console does not pile up one per alert. */
const POPUPS_SHOWN = 5;

function soundOn() { return localStorage.getItem("cw-sound") === "1"; }

/** Two short tones, made by the browser itself (nothing to fetch). */
function chime() {
  try {
    const ctx = new (window.AudioContext || window.webkitAudioContext)();
    [0, 0.35].forEach(at => {
      const o = ctx.createOscillator(), g = ctx.createGain();
      o.frequency.value = 880;
      g.gain.setValueAtTime(0.25, ctx.currentTime + at);
      g.gain.exponentialRampToValueAtTime(0.001, ctx.currentTime + at + 0.3);
      o.connect(g).connect(ctx.destination);
      o.start(ctx.currentTime + at);
      o.stop(ctx.currentTime + at + 0.3);
    });
  } catch (e) { /* no audio here */ }
}

/** A live alert change: a critical alert that has just opened and been told pops up. */
function maybePopup(a) {
  if (!a || a.state !== "open" || a.severity !== "critical" || !a.notified || popped.has(a.id)) return;
  const now = Date.now(), opened = Date.parse(a.opened_at) || now;
  if (now - opened > POPUP_MAX_AGE_MS) return;
  for (const [id, at] of popped) if (now - at > POPUP_MAX_AGE_MS) popped.delete(id);
  popped.set(a.id, opened);
  let box = document.getElementById("popups");
  if (!box) {
    box = document.createElement("div");
    box.id = "popups";
    box.setAttribute("role", "alert");
    document.body.appendChild(box);
  }
  const card = document.createElement("div");
  card.className = "popup";
  card.dataset.popup = a.id;
  card.innerHTML = `<b>${t("new-critical")}</b>
    <a href="/console/campus/${encodeURIComponent(a.campus)}${keep()}" data-nav>${esc(a.campus)}</a>
    <span>${t("kind-" + a.kind)}${a.device ? " " + esc(a.device) : ""} · ${when(a.since)}</span>
    <span>${causeText(a)}</span>
    <div>${canDo("operator") ? `<button type="button" data-popup-ack>${t("ack")}</button>` : ""}
      <button type="button" data-popup-close>${t("dismiss")}</button></div>`;
  card.querySelector("[data-popup-close]").onclick = () => card.remove();
  const ack = card.querySelector("[data-popup-ack]");
  if (ack) ack.onclick = async () => {
    ack.disabled = true;
    try { await acknowledgeAlert(a.id); card.remove(); soon(); } catch (e) { ack.disabled = false; }
  };
  box.prepend(card);
  while (box.children.length > POPUPS_SHOWN) box.lastElementChild.remove();
  if (soundOn()) chime();
}

/** The header's sound switch. */
function drawSound() {
  let label = document.getElementById("sound");
  if (!label) {
    label = document.createElement("label");
    label.id = "sound";
    document.getElementById("lang").before(label);
  }
  label.innerHTML = `<input type="checkbox"${soundOn() ? " checked" : ""}> ${t("sound-on")}`;
  label.querySelector("input").onchange = ev => {
    localStorage.setItem("cw-sound", ev.target.checked ? "1" : "0");
    if (ev.target.checked) chime();
  };
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
  if (me.time_zone) zone = me.time_zone;
  await loadRegionNames();
  document.getElementById("who").textContent = me.name === "anonymous" ? "" : me.name;
  document.getElementById("signout").hidden = me.name === "anonymous";
  document.getElementById("signin").hidden = true;
  document.getElementById("page").hidden = false;
  drawSound();
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
  if (me) drawSound();
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
