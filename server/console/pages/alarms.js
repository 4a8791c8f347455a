// The alarm centre: the open alerts of the user's area grouped by campus, worst first,
// with the counts per severity on top; filters by severity, kind, acknowledgement, age
// and text; sorting; paging; the resolved history; CSV of either.
"use strict";

texts({
  "zh": {
    "alarms": "报警中心", "open-tab": "当前报警", "history-tab": "历史记录", "all-severities": "全部级别",
    "ack-any": "全部", "ack-yes": "已确认", "ack-no": "未确认", "age-any": "不限时长",
    "age-10m": "超过10分钟", "age-1h": "超过1小时", "age-24h": "超过24小时", "csv": "导出 CSV",
    "campuses-alerting": "涉及校园", "sort-by": "排序", "sort-severity": "按级别",
    "sort-oldest": "按持续时间", "sort-region": "按地区", "sort-campus": "按校园",
    "page": "第 %1 / %2 页", "prev": "上一页", "next": "下一页", "resolved-at": "恢复时间",
    "alerts-n": "%1 条报警", "acknowledged": "已确认", "unacknowledged": "未确认",
    "ack-history": "确认记录", "ack-history-none": "尚无确认记录",
  },
  "en": {
    "alarms": "Alarm centre", "open-tab": "Open alerts", "history-tab": "History",
    "all-severities": "All severities", "ack-any": "All", "ack-yes": "Acknowledged",
    "ack-no": "Not acknowledged", "age-any": "Any age", "age-10m": "Older than 10 min",
    "age-1h": "Older than 1 h", "age-24h": "Older than 24 h", "csv": "Export CSV",
    "campuses-alerting": "Campuses", "sort-by": "Sort", "sort-severity": "By severity",
    "sort-oldest": "By age", "sort-region": "By region", "sort-campus": "By campus",
    "page": "Page %1 of %2", "prev": "Previous", "next": "Next", "resolved-at": "Resolved",
    "alerts-n": "%1 alerts", "acknowledged": "Acknowledged", "unacknowledged": "Not acknowledged",
    "ack-history": "Acknowledgements", "ack-history-none": "No acknowledgement yet",
  },
});

const ALARM_KINDS = ["gateway", "alarm_networking", "video", "alarm", "camera", "gb_device"];
const AGES = { "age-any": 0, "age-10m": 600e3, "age-1h": 3600e3, "age-24h": 86400e3 };
const CAMPUSES_PER_PAGE = 50;
const HISTORY_PAGE = 100;

/** The alarm centre's choices, kept across live redraws. */
const alarmView = { tab: "open", severity: "", kind: "", ack: "", age: "age-any", text: "", sort: "severity", page: 0 };

function alarmQuery(state) {
  const q = new URLSearchParams({ state });
  const region = new URLSearchParams(location.search).get("region");
  if (region) q.set("region", region);
  if (alarmView.severity) q.set("severity", alarmView.severity);
  if (alarmView.kind) q.set("kind", alarmView.kind);
  if (alarmView.ack) q.set("acknowledged", alarmView.ack === "ack-yes" ? "true" : "false");
  return q;
}

async function loadAlarms() {
  if (alarmView.tab === "history") {
    const q = alarmQuery("resolved");
    q.set("limit", HISTORY_PAGE);
    q.set("offset", alarmView.page * HISTORY_PAGE);
    return { history: (await api("/api/v1/alerts?" + q)).alerts };
  }
  // Every open alert of the area, once: the counts on top are of them all, and the
  // filters pick from them here (the CSV link asks the server with the same filters).
  const all = new URLSearchParams({ state: "open", limit: 10000 });
  const region = new URLSearchParams(location.search).get("region");
  if (region) all.set("region", region);
  return { every: (await api("/api/v1/alerts?" + all)).alerts };
}

const SEVERITY_RANK = { critical: 0, warning: 1, info: 2 };

/** The open alerts, filtered, grouped by campus and sorted. */
function campusGroups(alerts) {
  const text = alarmView.text.trim().toLowerCase();
  const minAge = AGES[alarmView.age] || 0, now = Date.now();
  const acked = alarmView.ack === "ack-yes" ? true : alarmView.ack === "ack-no" ? false : null;
  const groups = new Map();
  for (const a of alerts) {
    if (alarmView.severity && a.severity !== alarmView.severity) continue;
    if (alarmView.kind && a.kind !== alarmView.kind) continue;
    if (acked != null && !!a.acknowledged !== acked) continue;
    if (minAge && now - Date.parse(a.since) < minAge) continue;
    if (text && ![a.campus, a.campus_name, a.device, a.cause, regionLabel(a)].some(v => v && String(v).toLowerCase().includes(text))) continue;
    const g = groups.get(a.campus) || { campus: a.campus, name: a.campus_name || a.campus, region: a.region, place: regionLabel(a), alerts: [] };
    g.alerts.push(a);
    groups.set(a.campus, g);
  }
  const list = [...groups.values()];
  for (const g of list) {
    g.alerts.sort((x, y) => SEVERITY_RANK[x.severity] - SEVERITY_RANK[y.severity] || (x.since < y.since ? -1 : 1));
    g.worst = g.alerts[0].severity;
    g.since = g.alerts.reduce((m, a) => (a.since < m ? a.since : m), g.alerts[0].since);
  }
  const by = {
    severity: (x, y) => SEVERITY_RANK[x.worst] - SEVERITY_RANK[y.worst] || (x.since < y.since ? -1 : 1),
    oldest: (x, y) => (x.since < y.since ? -1 : x.since > y.since ? 1 : 0),
    region: (x, y) => x.region.localeCompare(y.region) || SEVERITY_RANK[x.worst] - SEVERITY_RANK[y.worst],
    campus: (x, y) => x.name.localeCompare(y.name, locale()),
  };
  return list.sort(by[alarmView.sort] || by.severity);
}

/** An alert's county with its city, as the API names them. */
function regionLabel(a) {
  const city = a.region.slice(0, 4) + "00";
  return lang === "en"
    ? [rname(a.region, a.region_name), rname(city, a.city_name)].filter(Boolean).join(", ")
    : [rname(city, a.city_name), rname(a.region, a.region_name)].filter(Boolean).join(" ");
}

function severityCounts(alerts) {
  const n = { critical: 0, warning: 0, unacked: 0 };
  for (const a of alerts) { n[a.severity] = (n[a.severity] || 0) + 1; if (!a.acknowledged) n.unacked++; }
  return n;
}

function select(id, options, value) {
  return `<select id="${id}">${options.map(([v, label]) => `<option value="${v}"${v === value ? " selected" : ""}>${label}</option>`).join("")}</select>`;
}

function alarmFilters() {
  return `<div class="filters" id="alarm-filters">
    ${select("al-severity", [["", t("all-severities")], ["critical", t("critical")], ["warning", t("warning")]], alarmView.severity)}
    ${select("al-kind", [["", t("all-kinds")]].concat(ALARM_KINDS.map(k => [k, t("kind-" + k)])), alarmView.kind)}
    ${select("al-ack", [["", t("ack-any")], ["ack-yes", t("ack-yes")], ["ack-no", t("ack-no")]], alarmView.ack)}
    ${alarmView.tab === "open" ? select("al-age", Object.keys(AGES).map(k => [k, t(k)]), alarmView.age) : ""}
    ${alarmView.tab === "open" ? select("al-sort", ["severity", "oldest", "region", "campus"].map(k => [k, t("sort-" + k)]), alarmView.sort) : ""}
    <input id="al-text" type="search" placeholder="${t("filter")}" value="${esc(alarmView.text)}">
    <a class="download" id="al-csv" href="/api/v1/alerts?${alarmQuery(alarmView.tab === "open" ? "open" : "resolved")}&format=csv&limit=${alarmView.tab === "open" ? 10000 : 1000}">${t("csv")}</a>
  </div>`;
}

function drawAlarms(d) {
  const tabs = `<nav class="tabs" id="alarm-tabs">${["open", "history"].map(k => `<button type="button" data-tab="${k}"${alarmView.tab === k ? ' class="here" aria-pressed="true"' : ""}>${t(k + "-tab")}</button>`).join("")}</nav>`;
  if (alarmView.tab === "history") {
    return `<section id="alarm-centre">${tabs}${alarmFilters()}
      <table id="history-rows"><thead><tr><th>${t("severity")}</th><th>${t("campus")}</th><th>${t("region")}</th><th>${t("link")}</th><th>${t("since")}</th><th>${t("resolved-at")}</th><th>${t("duration")}</th><th>${t("cause")}</th></tr></thead><tbody>
      ${d.history.length ? d.history.map(a => `<tr data-alert="${a.id}" class="sev-${esc(a.severity)}"><td class="${esc(a.severity)}">${t(a.severity)}</td>
        <td><a href="/console/campus/${encodeURIComponent(a.campus)}${keep()}" data-nav>${esc(a.campus_name || a.campus)}</a></td>
        <td>${esc(regionLabel(a))}</td><td>${t("kind-" + a.kind)}${a.device ? " " + esc(a.device) : ""}</td>
        <td>${when(a.since)}</td><td>${when(a.resolved_at)}</td><td>${span(Date.parse(a.resolved_at) - Date.parse(a.since))}</td><td>${causeText(a)}</td></tr>`).join("")
        : `<tr><td colspan="8">${t("none")}</td></tr>`}</tbody></table>
      ${pager(alarmView.page + 1, d.history.length === HISTORY_PAGE ? alarmView.page + 2 : alarmView.page + 1)}
    </section>`;
  }
  const n = severityCounts(d.every);
  const groups = campusGroups(d.every);
  const pages = Math.max(1, Math.ceil(groups.length / CAMPUSES_PER_PAGE));
  alarmView.page = Math.min(alarmView.page, pages - 1);
  const shown = groups.slice(alarmView.page * CAMPUSES_PER_PAGE, (alarmView.page + 1) * CAMPUSES_PER_PAGE);
  const operator = canDo("operator");
  return `<section id="alarm-centre">${tabs}
    <div class="counts" id="alarm-counts">
      <button type="button" class="count critical" data-severity="critical"><b>${n.critical}</b> ${t("critical")}</button>
      <button type="button" class="count warning" data-severity="warning"><b>${n.warning}</b> ${t("warning")}</button>
      <button type="button" class="count" data-ack="ack-no"><b>${n.unacked}</b> ${t("unacknowledged")}</button>
      <span class="count"><b>${groups.length}</b> ${t("campuses-alerting")}</span>
    </div>
    ${alarmFilters()}
    <div id="alarm-groups">${shown.length ? shown.map(g => `<article class="group sev-${g.worst}" data-campus="${esc(g.campus)}">
      <div class="group-head"><span class="sev ${g.worst}">${t(g.worst)}</span>
        <a href="/console/campus/${encodeURIComponent(g.campus)}${keep()}" data-nav>${esc(g.name)}</a>
        <small>${esc(g.place)}</small>
        <small>${fill(t("alerts-n"), g.alerts.length)} · ${t("duration")} ${span(Date.now() - Date.parse(g.since))}</small></div>
      <table><tbody>${g.alerts.map(a => `<tr data-alert="${a.id}" class="sev-${esc(a.severity)}">
        <td class="${esc(a.severity)}">${t(a.severity)}${a.flapping ? ` <small>${t("flapping")}</small>` : ""}</td>
        <td>${t("kind-" + a.kind)}${a.device ? " " + esc(a.device) : ""}</td>
        <td>${when(a.since)}</td><td>${causeText(a)}</td>
        <td class="ack">${a.acknowledged ? `<span class="acked">${t("acked-by")}${esc(a.acknowledged.by)}</span>
          <button type="button" class="toggle" data-ack-history="${a.id}" aria-expanded="${ackHistory.has(a.id)}">${t("ack-history")}</button>`
          : operator ? `<button type="button" data-ack-alert="${a.id}">${t("ack")}</button>` : ""}</td></tr>${ackRows(a.id)}`).join("")}</tbody></table>
    </article>`).join("") : `<p>${t("none")}</p>`}</div>
    ${pager(alarmView.page + 1, pages)}
  </section>`;
}

/** The alerts whose acknowledgements are on show: id → every acknowledgement, oldest
 *  first (from the server: a second one never erases the first). */
const ackHistory = new Map();

function ackRows(id) {
  const acks = ackHistory.get(id);
  if (!acks) return "";
  return `<tr class="ack-history" data-ack-history-of="${id}"><td colspan="5">${acks.length ? `<ol>${acks.map(k =>
    `<li><b>${esc(k.by)}</b> ${when(k.at)}${k.comment ? ` · ${esc(k.comment)}` : ""}</li>`).join("")}</ol>` : t("ack-history-none")}</td></tr>`;
}

function pager(page, pages) {
  if (pages <= 1 && page <= 1) return `<div id="pager"></div>`;
  return `<div id="pager" class="pager"><button type="button" data-page="-1"${page <= 1 ? " disabled" : ""}>${t("prev")}</button>
    <span>${fill(t("page"), page, pages)}</span>
    <button type="button" data-page="1"${page >= pages ? " disabled" : ""}>${t("next")}</button></div>`;
}

function wireAlarms(main) {
  // The open tab filters what it loaded; the history asks the server for each page.
  const history = alarmView.tab === "history";
  const set = (key, value, reload) => { alarmView[key] = value; alarmView.page = 0; render(reload); };
  main.querySelectorAll("#alarm-tabs button").forEach(b => b.onclick = () => set("tab", b.dataset.tab, true));
  const on = (id, key) => { const el = document.getElementById(id); if (el) el.onchange = ev => set(key, ev.target.value, history); };
  for (const [id, key] of [["al-severity", "severity"], ["al-kind", "kind"], ["al-ack", "ack"], ["al-age", "age"], ["al-sort", "sort"]]) on(id, key);
  const text = document.getElementById("al-text");
  text.oninput = ev => { alarmView.text = ev.target.value; alarmView.page = 0; render(false); };
  main.querySelectorAll("#alarm-counts button[data-severity]").forEach(b => b.onclick = () => set("severity", alarmView.severity === b.dataset.severity ? "" : b.dataset.severity, false));
  main.querySelectorAll("#alarm-counts button[data-ack]").forEach(b => b.onclick = () => set("ack", alarmView.ack ? "" : b.dataset.ack, false));
  main.querySelectorAll("#pager button").forEach(b => b.onclick = () => {
    alarmView.page = Math.max(0, alarmView.page + Number(b.dataset.page));
    render(alarmView.tab === "history");
  });
  main.querySelectorAll("button[data-ack-history]").forEach(b => b.onclick = async () => {
    const id = Number(b.dataset.ackHistory);
    if (ackHistory.has(id)) { ackHistory.delete(id); render(false); return; }
    try {
      ackHistory.set(id, (await api(`/api/v1/alerts/${id}/acknowledgements`)).acknowledgements);
      render(false);
    } catch (e) { b.insertAdjacentHTML("afterend", `<span class="error">${esc(e.message)}</span>`); }
  });
  main.querySelectorAll("button[data-ack-alert]").forEach(b => b.onclick = async () => {
    b.disabled = true;
    try { await acknowledgeAlert(Number(b.dataset.ackAlert)); render(); } catch (e) { b.disabled = false; b.insertAdjacentHTML("afterend", `<span class="error">${esc(e.status === 403 ? t("not-allowed") : e.message)}</span>`); }
  });
}

page("alarms", { nav: "alarms", load: loadAlarms, draw: drawAlarms, wire: wireAlarms, events: ["alert", "incident"] });
