// campuswatch console: coverage overview with drill-down, the open alerts, live updates.
// Everything it needs is served by the server; it works in a closed network.
"use strict";

const TEXT = {
  "zh": {
    "title": "校园安防联网监测", "sign-in": "登录", "sign-out": "退出", "user": "用户名",
    "password": "密码", "name": "名称", "registered": "登记", "reporting": "在线上报",
    "alarm": "一键报警联网", "video": "视频联网", "full": "全部联网", "open-alerts": "当前掉线",
    "severity": "级别", "campus": "校园", "link": "链路", "since": "开始时间", "cause": "原因",
    "live-ok": "实时", "live-lost": "连接中断，正在重连", "all": "全部地区", "none": "无",
    "critical": "严重", "warning": "警告", "info": "提示",
    "gateway": "网关", "camera": "摄像机", "wrong": "用户名或密码错误",
    "lang": "English",
  },
  "en": {
    "title": "Campus safety network monitor", "sign-in": "Sign in", "sign-out": "Sign out",
    "user": "User", "password": "Password", "name": "Name", "registered": "Registered",
    "reporting": "Reporting", "alarm": "Alarm networked", "video": "Video networked",
    "full": "Fully networked", "open-alerts": "Dropped links now", "severity": "Severity",
    "campus": "Campus", "link": "Link", "since": "Since", "cause": "Cause",
    "live-ok": "Live", "live-lost": "Connection lost, reconnecting", "all": "All regions",
    "none": "None", "critical": "critical", "warning": "warning", "info": "info",
    "gateway": "gateway", "camera": "camera", "wrong": "Wrong user or password",
    "lang": "中文",
  },
};

const params = new URLSearchParams(location.search);
let lang = params.get("lang") || localStorage.getItem("cw-lang") || "zh";
if (!TEXT[lang]) lang = "zh";
let region = params.get("region") || "";
let crumbs = [];

function t(key) { return (TEXT[lang] && TEXT[lang][key]) || key; }

function translate() {
  document.documentElement.lang = lang === "zh" ? "zh-CN" : "en";
  document.querySelectorAll("[data-t]").forEach(el => { el.textContent = t(el.dataset.t); });
  document.getElementById("lang").textContent = t("lang");
}

async function api(path, options) {
  const resp = await fetch(path, Object.assign({ credentials: "same-origin" }, options));
  if (resp.status === 401) { showSignIn(); throw new Error("unauthorized"); }
  if (!resp.ok) throw new Error(path + ": " + resp.status);
  return resp.status === 204 ? null : resp.json();
}

function pct(rate) { return rate == null ? "–" : (rate * 100).toFixed(1) + "%"; }

function bar(rate) {
  const w = rate == null ? 0 : Math.round(rate * 80);
  return `<span class="bar${rate != null && rate < 0.9 ? " low" : ""}" style="width:${w}px"></span>`;
}

function cell(count, rate) { return `<td>${bar(rate)}${count} (${pct(rate)})</td>`; }

function esc(s) {
  return String(s == null ? "" : s).replace(/[&<>"']/g, c => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}

async function loadOverview() {
  const c = await api("/api/v1/coverage" + (region ? "?region=" + region : ""));
  document.getElementById("area").textContent = c.region ? c.region.name : t("all");
  document.getElementById("totals").innerHTML = [
    ["registered", c.registered, null], ["reporting", c.reporting, c.reporting_rate],
    ["alarm", c.alarm_networked, c.alarm_networked_rate], ["video", c.video_networked, c.video_networked_rate],
    ["full", c.fully_networked, c.fully_networked_rate],
  ].map(([k, n, r]) => `<div class="total" data-figure="${k}"><span>${t(k)}</span><b>${n}</b>${r == null ? "" : bar(r) + pct(r)}</div>`).join("");
  document.querySelector("#children tbody").innerHTML = c.children.map(ch => `<tr data-code="${esc(ch.code)}">
      <td>${ch.level === "campus" ? esc(ch.name) : `<a data-region="${esc(ch.code)}">${esc(ch.name)}</a>`}</td>
      <td>${ch.registered}</td>${cell(ch.reporting, ch.reporting_rate)}${cell(ch.alarm_networked, ch.alarm_networked_rate)}
      ${cell(ch.video_networked, ch.video_networked_rate)}${cell(ch.fully_networked, ch.fully_networked_rate)}</tr>`).join("");
  document.querySelectorAll("#children a[data-region]").forEach(a => a.onclick = () => drill(a.dataset.region, a.textContent));
  document.getElementById("crumbs").innerHTML = [`<a data-back="">${t("all")}</a>`]
    .concat(crumbs.map(([code, name]) => `<a data-back="${esc(code)}">${esc(name)}</a>`)).join(" › ");
  document.querySelectorAll("#crumbs a").forEach(a => a.onclick = () => back(a.dataset.back));
}

function drill(code, name) { crumbs.push([code, name]); region = code; refresh(); }

function back(code) {
  const i = crumbs.findIndex(([c]) => c === code);
  crumbs = code === "" ? [] : crumbs.slice(0, i + 1);
  region = code;
  refresh();
}

async function loadAlerts() {
  const a = await api("/api/v1/alerts?state=open" + (region ? "&region=" + region : ""));
  const order = { critical: 0, warning: 1, info: 2 };
  const rows = a.alerts.sort((x, y) => (order[x.severity] - order[y.severity]) || (y.since < x.since ? -1 : 1));
  document.getElementById("alert-rows").innerHTML = rows.length ? rows.map(r => `<tr data-alert="${r.id}">
      <td class="${esc(r.severity)}">${t(r.severity)}</td><td>${esc(r.campus_name || r.campus)}</td>
      <td>${t(r.kind)}${r.device ? " " + esc(r.device) : ""}</td><td>${esc(new Date(r.since).toLocaleString(lang === "zh" ? "zh-CN" : "en-GB"))}</td>
      <td>${esc(r.cause)}</td></tr>`).join("") : `<tr><td colspan="5">${t("none")}</td></tr>`;
}

async function refresh() {
  try { await Promise.all([loadOverview(), loadAlerts()]); } catch (e) { /* shown by the link badge or the sign-in form */ }
}

let pending = null;
function soon() { if (!pending) pending = setTimeout(() => { pending = null; refresh(); }, 300); }

function listen() {
  const badge = document.getElementById("link");
  const es = new EventSource("/api/v1/live");
  es.onopen = () => { badge.classList.remove("lost"); badge.textContent = t("live-ok"); soon(); };
  es.onerror = () => { badge.classList.add("lost"); badge.textContent = t("live-lost"); };
  ["transition", "alert", "incident", "registry", "resync"].forEach(k => es.addEventListener(k, soon));
}

function showSignIn() {
  document.getElementById("signin").hidden = false;
  document.getElementById("overview").hidden = true;
  document.getElementById("alerts").hidden = true;
}

async function start() {
  translate();
  let me;
  try { me = await api("/api/v1/session"); } catch (e) { return; }
  document.getElementById("who").textContent = me.name === "anonymous" ? "" : me.name;
  document.getElementById("signout").hidden = me.name === "anonymous";
  document.getElementById("signin").hidden = true;
  document.getElementById("overview").hidden = false;
  document.getElementById("alerts").hidden = false;
  await refresh();
  // `live=off`: a still snapshot (for printing, or a browser that must finish loading).
  if (params.get("live") !== "off") listen();
}

document.getElementById("lang").onclick = () => {
  lang = lang === "zh" ? "en" : "zh";
  localStorage.setItem("cw-lang", lang);
  translate();
  refresh();
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
  if (resp.ok) { start(); } else { document.getElementById("signin-error").textContent = t("wrong"); }
};

start();
