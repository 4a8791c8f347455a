// Overview: coverage of the user's area with drill-down to the campuses, the split by
// school type, open regional incidents and the dropped links now (acknowledged from the
// list by operators).
"use strict";

texts({
  "zh": {
    "overview": "总览", "all": "全部地区", "name": "名称", "registered": "登记",
    "reporting": "在线上报", "alarm": "一键报警联网", "video": "视频联网", "full": "全部联网",
    "by-school-type": "按学校类型", "school-type": "学校类型", "open-alerts": "当前掉线",
    "open-incidents": "区域性故障", "severity": "级别", "campus": "校园", "link": "链路",
    "since": "开始时间", "cause": "原因", "critical": "严重", "warning": "警告", "info": "提示",
    "ack": "确认", "acked-by": "已确认：", "ack-comment": "备注（可选）", "filter": "筛选",
    "all-kinds": "全部链路", "region": "地区", "campuses-down": "离线校园", "of": "共",
    "flapping": "频繁波动", "duration": "持续",
  },
  "en": {
    "overview": "Overview", "all": "All regions", "name": "Name", "registered": "Registered",
    "reporting": "Reporting", "alarm": "Alarm networked", "video": "Video networked",
    "full": "Fully networked", "by-school-type": "By school type", "school-type": "School type",
    "open-alerts": "Dropped links now", "open-incidents": "Regional incidents",
    "severity": "Severity", "campus": "Campus", "link": "Link", "since": "Since",
    "cause": "Cause", "critical": "critical", "warning": "warning", "info": "info",
    "ack": "Acknowledge", "acked-by": "Acknowledged by ", "ack-comment": "Comment (optional)",
    "filter": "Filter", "all-kinds": "All links", "region": "Region",
    "campuses-down": "Campuses offline", "of": "of", "flapping": "flapping",
    "duration": "For",
  },
});

const FIGURES = [
  ["reporting", "reporting", "reporting_rate"],
  ["alarm", "alarm_networked", "alarm_networked_rate"],
  ["video", "video_networked", "video_networked_rate"],
  ["full", "fully_networked", "fully_networked_rate"],
];

function coverageCells(b) {
  return FIGURES.map(([, n, r]) => `<td>${bar(b[r])}${b[n]} (${pct(b[r])})</td>`).join("");
}

function coverageHead(first) {
  return `<tr><th>${t(first)}</th><th>${t("registered")}</th>${FIGURES.map(([k]) => `<th>${t(k)}</th>`).join("")}</tr>`;
}

/** The alert list's filter, kept across live refreshes. */
const alertFilter = { kind: "", text: "" };

async function renderOverview(main) {
  const region = new URLSearchParams(location.search).get("region") || "";
  const q = region ? "?region=" + encodeURIComponent(region) : "";
  const [c, a, inc] = await Promise.all([
    api("/api/v1/coverage" + q),
    api("/api/v1/alerts?state=open" + (region ? "&region=" + encodeURIComponent(region) : "")),
    api("/api/v1/incidents?state=open" + (region ? "&region=" + encodeURIComponent(region) : "")),
  ]);
  const crumbs = [`<a href="/console/${keep()}" data-nav>${t("all")}</a>`]
    .concat(c.path.map(r => `<a href="/console/${keep({ region: r.code })}" data-nav>${esc(r.name)}</a>`))
    .concat(c.region ? [`<span>${esc(c.region.name)}</span>`] : []);
  const totals = [["registered", c.registered, null]].concat(FIGURES.map(([k, n, r]) => [k, c[n], c[r]]));
  main.innerHTML = `
    <section id="overview">
      <nav id="crumbs">${crumbs.join(" › ")}</nav>
      <h2 id="area">${c.region ? esc(c.region.name) : t("all")}</h2>
      <div id="totals" class="totals">${totals.map(([k, n, r]) => `<div class="total" data-figure="${k}"><span>${t(k)}</span><b>${n}</b>${r == null ? "" : bar(r) + pct(r)}</div>`).join("")}</div>
      <table id="children"><thead>${coverageHead("name")}</thead><tbody>
        ${c.children.map(ch => `<tr data-code="${esc(ch.code)}"><td>${ch.level === "campus"
          ? `<a href="/console/campus/${encodeURIComponent(ch.code)}${keep()}" data-nav>${esc(ch.name || ch.code)}</a>`
          : `<a href="/console/${keep({ region: ch.code })}" data-nav data-region="${esc(ch.code)}">${esc(ch.name)}</a>`}</td>
          <td>${ch.registered}</td>${coverageCells(ch)}</tr>`).join("")}
      </tbody></table>
      <h3>${t("by-school-type")}</h3>
      <table id="school-types"><thead>${coverageHead("school-type")}</thead><tbody>
        ${c.school_types.filter(s => s.registered > 0).map(s => `<tr data-school-type="${s.school_type}"><td>${t(s.school_type)}</td><td>${s.registered}</td>${coverageCells(s)}</tr>`).join("")}
      </tbody></table>
    </section>
    ${drawIncidents(inc.incidents)}
    <section id="alerts">
      <h2>${t("open-alerts")}</h2>
      <div class="filters">
        <select id="alert-kind">${["", "gateway", "alarm_networking", "video", "alarm", "camera"].map(k => `<option value="${k}"${k === alertFilter.kind ? " selected" : ""}>${k ? t("kind-" + k) : t("all-kinds")}</option>`).join("")}</select>
        <input id="alert-text" type="search" placeholder="${t("filter")}" value="${esc(alertFilter.text)}">
      </div>
      <table>
        <thead><tr><th>${t("severity")}</th><th>${t("campus")}</th><th>${t("link")}</th><th>${t("since")}</th><th>${t("cause")}</th><th></th></tr></thead>
        <tbody id="alert-rows"></tbody>
      </table>
    </section>`;
  const draw = () => drawAlerts(a.alerts);
  document.getElementById("alert-kind").onchange = ev => { alertFilter.kind = ev.target.value; draw(); };
  document.getElementById("alert-text").oninput = ev => { alertFilter.text = ev.target.value; draw(); };
  draw();
}

function drawIncidents(list) {
  if (!list.length) return "";
  return `<section id="incidents"><h2>${t("open-incidents")}</h2><table>
    <thead><tr><th>${t("region")}</th><th>${t("since")}</th><th>${t("campuses-down")}</th></tr></thead><tbody>
    ${list.map(i => `<tr data-incident="${i.id}"><td class="critical">${esc(i.region_name)}</td><td>${when(i.since)}</td>
      <td>${i.open_alerts} ${t("of")} ${i.campuses.length}</td></tr>`).join("")}
  </tbody></table></section>`;
}

function drawAlerts(alerts) {
  const order = { critical: 0, warning: 1, info: 2 };
  const text = alertFilter.text.trim().toLowerCase();
  const rows = alerts
    .filter(r => !alertFilter.kind || r.kind === alertFilter.kind)
    .filter(r => !text || [r.campus, r.campus_name, r.device, r.cause].some(v => v && String(v).toLowerCase().includes(text)))
    .sort((x, y) => (order[x.severity] - order[y.severity]) || (x.since < y.since ? 1 : x.since > y.since ? -1 : 0));
  const operator = canDo("operator");
  document.getElementById("alert-rows").innerHTML = rows.length ? rows.map(r => `<tr data-alert="${r.id}">
      <td class="${esc(r.severity)}">${t(r.severity)}${r.flapping ? ` <small>${t("flapping")}</small>` : ""}</td>
      <td><a href="/console/campus/${encodeURIComponent(r.campus)}${keep()}" data-nav>${esc(r.campus_name || r.campus)}</a></td>
      <td>${t("kind-" + r.kind)}${r.device ? " " + esc(r.device) : ""}</td>
      <td>${when(r.since)}<br><small>${t("duration")} ${span(Date.now() - Date.parse(r.since))}</small></td>
      <td>${esc(r.cause)}</td>
      <td class="ack">${r.acknowledged
        ? `<span class="acked">${t("acked-by")}${esc(r.acknowledged.by)}</span>`
        : !operator ? ""
        : ackOpen === r.id
          ? `<form data-ack-form="${r.id}"><input id="ack-comment" name="comment" placeholder="${t("ack-comment")}" value="${esc(ackDraft)}"> <button type="submit">${t("ack")}</button></form>`
          : `<button type="button" data-ack="${r.id}">${t("ack")}</button>`}</td></tr>`).join("")
    : `<tr><td colspan="6">${t("none")}</td></tr>`;
  document.querySelectorAll("button[data-ack]").forEach(b => b.onclick = () => {
    ackOpen = Number(b.dataset.ack);
    ackDraft = "";
    drawAlerts(alerts);
    document.querySelector(`form[data-ack-form="${ackOpen}"] input`).focus();
  });
  document.querySelectorAll("form[data-ack-form]").forEach(f => {
    f.onsubmit = ev => { ev.preventDefault(); acknowledge(f); };
    f.elements.comment.oninput = ev => { ackDraft = ev.target.value; };
  });
}

/** The alert whose acknowledgement form is open, and what is typed in it: both survive
 *  live refreshes. */
let ackOpen = null;
let ackDraft = "";

async function acknowledge(form) {
  const comment = form.elements.comment.value.trim();
  form.querySelector("button").disabled = true;
  try {
    // With sign-in on, the server records the signed-in user whatever `by` says.
    await post(`/api/v1/alerts/${form.dataset.ackForm}/ack`, comment ? { by: me.name, comment } : { by: me.name });
    ackOpen = null;
    ackDraft = "";
    render();
  } catch (e) {
    form.querySelector("button").disabled = false;
    form.insertAdjacentHTML("beforeend", `<span class="error">${esc(e.status === 403 ? t("not-allowed") : e.message)}</span>`);
  }
}

page("overview", { nav: "overview", render: renderOverview });
