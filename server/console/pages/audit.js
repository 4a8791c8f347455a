// The audit log (administrators): who did what, when, from where — registry imports,
// users, tokens, maintenance windows and acknowledgements — within the administrator's
// scope, newest first, filtered by action, user and days, a page at a time.
"use strict";

texts({
  "zh": {
    "audit": "审计日志", "audit-note": "记录导入名册、用户、令牌、维护计划和报警确认等管理操作；保存天数见 history.audit_days。",
    "all-actions": "全部操作", "actor": "操作人", "action": "操作", "target": "对象", "details": "详情",
    "source": "来源地址", "at": "时间", "from-day": "起始日期", "to-day": "截止日期", "by-token": "（令牌 %1）",
    "act-registry.import": "导入名册", "act-user.create": "添加用户", "act-user.password": "重设用户密码",
    "act-user.disable": "停用用户", "act-user.enable": "启用用户", "act-token.create": "创建令牌",
    "act-token.revoke": "吊销令牌", "act-maintenance.create": "新建维护计划", "act-maintenance.delete": "撤销维护计划",
    "act-alert.acknowledge": "确认报警", "whole-area": "全辖区", "local": "本机（命令行）",
  },
  "en": {
    "audit": "Audit log", "audit-note": "Administrative actions: registry imports, users, tokens, maintenance windows and acknowledgements; kept history.audit_days days.",
    "all-actions": "All actions", "actor": "By", "action": "Action", "target": "On", "details": "Details",
    "source": "From", "at": "Time", "from-day": "From", "to-day": "To", "by-token": " (token %1)",
    "act-registry.import": "registry imported", "act-user.create": "user added", "act-user.password": "user's password set",
    "act-user.disable": "user disabled", "act-user.enable": "user enabled", "act-token.create": "token made",
    "act-token.revoke": "token revoked", "act-maintenance.create": "maintenance planned", "act-maintenance.delete": "maintenance withdrawn",
    "act-alert.acknowledge": "alert acknowledged", "whole-area": "whole area", "local": "local (command line)",
  },
});

const AUDIT_ACTIONS = ["registry.import", "user.create", "user.password", "user.disable", "user.enable",
  "token.create", "token.revoke", "maintenance.create", "maintenance.delete", "alert.acknowledge"];
const AUDIT_PAGE = 100;
const auditView = { action: "", actor: "", from: "", to: "", page: 0 };

/** Local midnight (server's zone) of day `d` (`2026-03-01`) as an API time. */
function dayStart(d) {
  const [y, m, day] = d.split("-").map(Number);
  const local = Date.UTC(y, m - 1, day);
  return new Date(local - zoneOffset(local - zoneOffset(local))).toISOString();
}

async function loadAudit() {
  const q = new URLSearchParams({ limit: AUDIT_PAGE, offset: auditView.page * AUDIT_PAGE });
  if (auditView.action) q.set("action", auditView.action);
  if (auditView.actor.trim()) q.set("actor", auditView.actor.trim());
  if (auditView.from) q.set("since", dayStart(auditView.from));
  if (auditView.to) q.set("until", new Date(nextMidnight(Date.parse(dayStart(auditView.to)))).toISOString());
  return (await api("/api/v1/audit?" + q)).entries;
}

/** The details of an entry, as `key: value` pairs. */
function auditDetails(details) {
  if (!details || typeof details !== "object") return "";
  return Object.entries(details).filter(([, v]) => v != null && v !== "")
    .map(([k, v]) => `<span class="kv">${esc(k)}: ${esc(typeof v === "object" ? JSON.stringify(v) : v)}</span>`).join(" ");
}

function drawAudit(entries) {
  const options = [["", t("all-actions")]].concat(AUDIT_ACTIONS.map(a => [a, t("act-" + a)]));
  return `<section id="audit-log"><h2>${t("audit")}</h2><p class="note">${t("audit-note")}</p>
    <form class="filters" id="audit-filters">
      <select id="au-action">${options.map(([v, label]) => `<option value="${v}"${v === auditView.action ? " selected" : ""}>${label}</option>`).join("")}</select>
      <input id="au-actor" type="search" placeholder="${t("actor")}" value="${esc(auditView.actor)}">
      <label class="inline">${t("from-day")} <input id="au-from" type="date" value="${esc(auditView.from)}"></label>
      <label class="inline">${t("to-day")} <input id="au-to" type="date" value="${esc(auditView.to)}"></label>
    </form>
    <table id="audit-rows"><thead><tr><th>${t("at")}</th><th>${t("actor")}</th><th>${t("action")}</th><th>${t("target")}</th><th>${t("region")}</th><th>${t("details")}</th><th>${t("source")}</th></tr></thead><tbody>
    ${entries.length ? entries.map(e => `<tr data-audit="${e.id}" data-action="${esc(e.action)}"><td>${when(e.at)}</td>
      <td>${e.actor === "local" ? t("local") : esc(e.actor)}${e.token != null ? fill(t("by-token"), e.token) : ""}</td>
      <td>${t("act-" + e.action)}</td><td>${esc(e.target)}</td>
      <td>${e.region ? esc(rname(e.region, e.region)) : t("whole-area")}</td>
      <td class="details">${auditDetails(e.details)}</td><td>${esc(e.source || "–")}</td></tr>`).join("")
      : `<tr><td colspan="7">${t("none")}</td></tr>`}</tbody></table>
    ${pager(auditView.page + 1, entries.length === AUDIT_PAGE ? auditView.page + 2 : auditView.page + 1)}</section>`;
}

function wireAudit(main) {
  const set = (key, value) => { auditView[key] = value; auditView.page = 0; render(); };
  document.getElementById("au-action").onchange = ev => set("action", ev.target.value);
  document.getElementById("au-actor").onchange = ev => set("actor", ev.target.value);
  document.getElementById("au-from").onchange = ev => set("from", ev.target.value);
  document.getElementById("au-to").onchange = ev => set("to", ev.target.value);
  document.getElementById("audit-filters").onsubmit = ev => ev.preventDefault();
  main.querySelectorAll("#pager button").forEach(b => b.onclick = () => {
    auditView.page = Math.max(0, auditView.page + Number(b.dataset.page));
    render();
  });
}

page("audit", { nav: "audit", role: "admin", load: loadAudit, draw: drawAudit, wire: wireAudit, events: [] });
