// Reports: time-weighted availability over a period, and coverage at a point in time or
// averaged over a period, per region and school type, with the campuses not networked.
// The form's state is the address's query, so a report can be linked, reloaded and
// printed (print to PDF from the browser: the print stylesheet keeps the title and the
// tables only). Times are China Standard Time, the API's default offset.
"use strict";

texts({
  "zh": {
    "reports": "报表", "rep-title": "联网与可用率报表", "rep-period": "统计周期",
    "period-day": "日", "period-week": "周", "period-month": "月", "period-custom": "自定义",
    "rep-date": "日期", "rep-from": "起", "rep-to": "止（含）", "rep-cov-mode": "联网率",
    "cov-at": "某一时刻", "cov-period": "统计周期内平均", "rep-at": "时刻（留空为现在）",
    "rep-show": "查询", "print": "打印", "availability": "可用率",
    "avail-note": "按时间加权：各校园正常时间占统计时间的比例（维护时段和服务器停机时间不计），再按校园平均。",
    "observed-hours": "统计校园小时数", "coverage-report": "联网率", "cov-at-title": "时刻 %1",
    "cov-period-title": "%1 平均", "cov-avg-note": "统计周期内平均：数量 = 比例 × 在册校园数。",
    "not-networked": "未全部联网的校园", "nn-missing": "未联网", "nn-gateway": "网关未上报",
    "nn-before": "早于", "nn-hours-at": "已持续", "nn-hours-period": "期内未全部联网",
    "csv-availability": "可用率 CSV", "csv-coverage": "联网率 CSV",
    "csv-not-networked": "未联网校园 CSV", "zone-note": "时间均按 %1（UTC%2）",
    "rep-campuses": "校园",
  },
  "en": {
    "reports": "Reports", "rep-title": "Networking and availability report", "rep-period": "Period",
    "period-day": "Day", "period-week": "Week", "period-month": "Month", "period-custom": "Custom",
    "rep-date": "Date", "rep-from": "From", "rep-to": "To (inclusive)", "rep-cov-mode": "Coverage",
    "cov-at": "At a point in time", "cov-period": "Averaged over the period", "rep-at": "Time (empty: now)",
    "rep-show": "Show", "print": "Print", "availability": "Availability",
    "avail-note": "Time-weighted: each campus's up time over its counted time (maintenance and server downtime left out), averaged over campuses.",
    "observed-hours": "Observed campus-hours", "coverage-report": "Coverage", "cov-at-title": "At %1",
    "cov-period-title": "Averaged over %1", "cov-avg-note": "Averaged over the period: count = rate × registered.",
    "not-networked": "Campuses not fully networked", "nn-missing": "Not networked", "nn-gateway": "gateway not reporting",
    "nn-before": "before", "nn-hours-at": "For", "nn-hours-period": "Not fully networked in the period",
    "csv-availability": "Availability CSV", "csv-coverage": "Coverage CSV",
    "csv-not-networked": "Not networked CSV", "zone-note": "Times in %1 (UTC%2)",
    "rep-campuses": "Campuses",
  },
});

const PERIODS = ["day", "week", "month", "custom"];
const LINKS = [["reporting", "gateway"], ["alarm", "alarm"], ["video", "video"], ["full", "fully"]];

/** The form's state, read from the address. */
function reportState() {
  const q = new URLSearchParams(location.search);
  const s = {};
  for (const k of ["period", "date", "from", "to", "region", "cov", "at"]) s[k] = q.get(k) || "";
  if (!PERIODS.includes(s.period)) s.period = "";
  if (s.cov !== "period") s.cov = "";
  return s;
}

/** The address of the report for `s` (empty values left out). */
function reportHref(s) {
  return "/console/reports" + keep(Object.fromEntries(Object.entries(s).filter(([, v]) => v)));
}

/** "2027-03-01" → "2027-03-02". */
function nextDay(date) {
  const d = new Date(date + "T00:00:00Z");
  return isNaN(d) ? date : new Date(d.getTime() + 86400000).toISOString().slice(0, 10);
}

/** The API's period parameters for `s`; none gives yesterday. */
function periodQuery(s) {
  const p = new URLSearchParams();
  if (s.region) p.set("region", s.region);
  if (s.period === "custom") {
    // The form's end date is inclusive; the API's `to` is the midnight that ends it.
    if (s.from) p.set("from", s.from);
    if (s.to) p.set("to", nextDay(s.to));
  } else if (s.period) {
    p.set("period", s.period);
    if (s.date) p.set("date", s.date);
  }
  return p;
}

function coverageQuery(s) {
  if (s.cov === "period") return periodQuery(s);
  const p = new URLSearchParams();
  if (s.region) p.set("region", s.region);
  if (s.at) p.set("at", (s.at.length === 16 ? s.at + ":00" : s.at) + offsetText(Date.now()));
  return p;
}


/** A period as its local days ("2027-03-01", "2027-03-01 – 2027-03-07"), or its times. */
function periodText(from, to) {
  const a = whenMinute(from), b = whenMinute(to);
  if (!a.endsWith(" 00:00") || !b.endsWith(" 00:00")) return `${a} – ${b}`;
  const last = whenMinute(new Date(Date.parse(to) - 1).toISOString()).slice(0, 10);
  return a.slice(0, 10) === last ? last : `${a.slice(0, 10)} – ${last}`;
}

/** A campus count: whole at a point in time, one decimal when averaged (rate × registered). */
function count(n) {
  const whole = Math.round(n);
  return Math.abs(n - whole) < 1e-9 ? String(whole) : n.toFixed(1);
}

/** What the page shows (language and address), and whether the next draw must fetch
 *  again although that is unchanged ("Show" pressed). A report is a still figure: a live
 *  reconnect or resync does not redraw it, so a half-edited form is not lost. */
let reportShown = null;
let reportAgain = false;

async function renderReports(main) {
  const shownKey = lang + location.search;
  if (shownKey === reportShown && !reportAgain && document.getElementById("report-controls")) return;
  reportAgain = false;
  const s = reportState();
  const aq = periodQuery(s), cq = coverageQuery(s);
  let av = null, cov = null, area = null, failure = null;
  try {
    [av, cov, area] = await Promise.all([
      api("/api/v1/reports/availability?" + aq),
      api("/api/v1/reports/coverage?" + cq),
      api("/api/v1/coverage" + (s.region ? "?region=" + encodeURIComponent(s.region) : "")),
    ]);
  } catch (e) {
    if (e.message === "unauthorized") throw e;
    failure = e;
  }
  const regionName = area && area.region ? rname(area.region.code, area.region.name) : t("all");
  const crumbs = area ? [`<a href="${reportHref(Object.assign({}, s, { region: "" }))}" data-nav>${t("all")}</a>`]
    .concat(area.path.map(r => `<a href="${reportHref(Object.assign({}, s, { region: r.code }))}" data-nav>${esc(rname(r.code, r.name))}</a>`))
    .concat(area.region ? [`<span>${esc(rname(area.region.code, area.region.name))}</span>`] : []) : [];
  const shownDate = s.date || (av ? whenMinute(av.from).slice(0, 10) : "");
  main.innerHTML = `
    <section id="report-controls">
      <nav id="crumbs">${crumbs.join(" › ")}</nav>
      <form id="report-form">
        <label>${t("rep-period")} <select name="period">${PERIODS.map(p => `<option value="${p}"${p === (s.period || "day") ? " selected" : ""}>${t("period-" + p)}</option>`).join("")}</select></label>
        <label data-for="single">${t("rep-date")} <input name="date" type="date" value="${esc(shownDate)}"></label>
        <label data-for="custom">${t("rep-from")} <input name="from" type="date" value="${esc(s.from)}"></label>
        <label data-for="custom">${t("rep-to")} <input name="to" type="date" value="${esc(s.to)}"></label>
        <label>${t("rep-cov-mode")} <select name="cov">${["at", "period"].map(c => `<option value="${c}"${c === (s.cov || "at") ? " selected" : ""}>${t("cov-" + c)}</option>`).join("")}</select></label>
        <label data-for="at">${t("rep-at")} <input name="at" type="datetime-local" value="${esc(s.at)}"></label>
        <button type="submit">${t("rep-show")}</button>
        <button type="button" id="print">${t("print")}</button>
      </form>
    </section>
    ${failure ? `<p class="error" id="report-error">${t("failed")}: ${esc(failure.message)}</p>` : `
    <h2 id="report-title">${t("rep-title")} · ${esc(regionName)} · ${esc(periodText(av.from, av.to))}</h2>
    <p id="report-zone">${fill(t("zone-note"), esc(zone), offsetText(Date.now()))}</p>
    ${drawAvailability(av, s)}
    ${drawCoverageReport(cov, s)}`}`;
  const form = document.getElementById("report-form");
  const shape = () => {
    const custom = form.elements.period.value === "custom";
    form.querySelectorAll('[data-for="single"]').forEach(el => { el.hidden = custom; });
    form.querySelectorAll('[data-for="custom"]').forEach(el => { el.hidden = !custom; });
    form.querySelector('[data-for="at"]').hidden = form.elements.cov.value !== "at";
  };
  form.elements.period.onchange = shape;
  form.elements.cov.onchange = shape;
  shape();
  form.onsubmit = ev => {
    ev.preventDefault();
    reportAgain = true;
    const f = form.elements, period = f.period.value;
    go(reportHref({
      period,
      date: period === "custom" ? "" : f.date.value,
      from: period === "custom" ? f.from.value : "",
      to: period === "custom" ? f.to.value : "",
      region: s.region,
      cov: f.cov.value === "period" ? "period" : "",
      at: f.cov.value === "at" ? f.at.value : "",
    }));
  };
  document.getElementById("print").onclick = () => window.print();
  reportShown = failure ? null : shownKey;
}

function figureCells(f) {
  return LINKS.map(([, k]) => `<td>${bar(f[k])}${pct(f[k])}</td>`).join("");
}

function availabilityHead(first) {
  return `<tr><th>${t(first)}</th><th>${t("registered")}</th><th>${t("observed-hours")}</th>${LINKS.map(([k]) => `<th>${t(k)}</th>`).join("")}</tr>`;
}

function drawAvailability(av, s) {
  const types = av.school_types.filter(x => x.registered > 0);
  const csv = new URLSearchParams(periodQuery(s));
  csv.set("format", "csv");
  return `<section id="availability">
    <h2>${t("availability")}: ${esc(periodText(av.from, av.to))}</h2>
    <p class="note">${t("avail-note")}</p>
    <table id="avail-regions"><thead>${availabilityHead("region")}</thead><tbody>
      <tr class="node" data-code="${esc(av.region ? av.region.code : "")}"><td>${av.region ? esc(rname(av.region.code, av.region.name)) : t("all")}</td><td>${av.registered}</td>
        <td>${av.observed_campus_hours.toFixed(1)}</td>${figureCells(av)}</tr>
      ${av.children.map(c => `<tr data-code="${esc(c.code)}"><td><a href="${reportHref(Object.assign({}, s, { region: c.code }))}" data-nav>${esc(rname(c.code, c.name))}</a></td>
        <td>${c.registered}</td><td>${c.observed_campus_hours.toFixed(1)}</td>${figureCells(c)}</tr>`).join("")}
    </tbody></table>
    <h3>${t("by-school-type")}</h3>
    <table id="avail-types"><thead>${availabilityHead("school-type")}</thead><tbody>
      ${types.length ? types.map(x => `<tr data-school-type="${x.school_type}"><td>${t(x.school_type)}</td><td>${x.registered}</td>
        <td>${x.observed_campus_hours.toFixed(1)}</td>${figureCells(x)}</tr>`).join("") : `<tr><td colspan="7">${t("none")}</td></tr>`}
    </tbody></table>
    ${av.campuses.length ? `<h3>${t("rep-campuses")}</h3>
    <table id="avail-campuses"><thead><tr><th>${t("campus")}</th><th>${t("school-type")}</th><th>${t("observed-hours")}</th>${LINKS.map(([k]) => `<th>${t(k)}</th>`).join("")}</tr></thead><tbody>
      ${av.campuses.map(c => `<tr data-campus="${esc(c.id)}"><td>${esc(c.name)} <small>${esc(c.id)}</small></td><td>${t(c.school_type)}</td>
        <td>${c.observed_hours.toFixed(1)}</td>${figureCells(c)}</tr>`).join("")}
    </tbody></table>` : ""}
    <p class="downloads"><a id="csv-availability" href="/api/v1/reports/availability?${csv}" download>${t("csv-availability")}</a></p>
  </section>`;
}

function coverageHeadRow(first) {
  return `<tr><th>${t(first)}</th><th>${t("registered")}</th>${LINKS.map(([k]) => `<th>${t(k)}</th>`).join("")}</tr>`;
}

function coverageRowCells(r) {
  const n = { reporting: r.reporting, alarm: r.alarm_networked, video: r.video_networked, full: r.fully_networked };
  const rate = { reporting: r.reporting_rate, alarm: r.alarm_networked_rate, video: r.video_networked_rate, full: r.fully_networked_rate };
  return `<td>${r.registered}</td>${LINKS.map(([k]) => `<td>${bar(rate[k])}${count(n[k])} (${pct(rate[k])})</td>`).join("")}`;
}

function drawCoverageReport(c, s) {
  const node = c.rows[0];
  const types = c.rows.slice(1).filter(r => r.school_type != null && r.code === node.code && r.registered > 0);
  const children = c.rows.slice(1).filter(r => r.school_type == null);
  const summary = new URLSearchParams(coverageQuery(s));
  summary.set("format", "csv");
  const missing = new URLSearchParams(summary);
  missing.set("table", "not_networked");
  const over = c.at == null;
  return `<section id="coverage">
    <h2>${t("coverage-report")}: ${over ? fill(t("cov-period-title"), esc(periodText(c.from, c.to))) : fill(t("cov-at-title"), whenMinute(c.at))}</h2>
    ${over ? `<p class="note">${t("cov-avg-note")}</p>` : ""}
    <table id="cov-regions"><thead>${coverageHeadRow("region")}</thead><tbody>
      <tr class="node" data-code="${esc(node.code || "")}"><td>${node.code ? esc(rname(node.code, node.name)) : t("all")}</td>${coverageRowCells(node)}</tr>
      ${children.map(r => `<tr data-code="${esc(r.code)}"><td><a href="${reportHref(Object.assign({}, s, { region: r.code }))}" data-nav>${esc(rname(r.code, r.name))}</a></td>${coverageRowCells(r)}</tr>`).join("")}
    </tbody></table>
    <h3>${t("by-school-type")}</h3>
    <table id="cov-types"><thead>${coverageHeadRow("school-type")}</thead><tbody>
      ${types.length ? types.map(r => `<tr data-school-type="${r.school_type}"><td>${t(r.school_type)}</td>${coverageRowCells(r)}</tr>`).join("") : `<tr><td colspan="6">${t("none")}</td></tr>`}
    </tbody></table>
    <h3>${t("not-networked")} <small>(${c.not_networked.length})</small></h3>
    <table id="not-networked"><thead><tr><th>${t("campus")}</th><th>${t("region")}</th><th>${t("school-type")}</th>
      <th>${t("nn-missing")}</th><th>${t("since")}</th><th>${over ? t("nn-hours-period") : t("nn-hours-at")}</th></tr></thead><tbody>
      ${c.not_networked.length ? c.not_networked.map(n => `<tr data-campus="${esc(n.id)}"><td>${esc(n.name)} <small>${esc(n.id)}</small></td>
        <td>${esc(rname(n.region, n.region_name))}</td><td>${t(n.school_type)}</td><td>${missingLinks(n)}</td>
        <td${n.since_registered ? " data-since-registered" : ""}>${n.since == null ? "–" : n.since_registered ? fill(t("since-registered-at"), whenMinute(n.since)) : (n.since_at_least ? t("nn-before") + " " : "") + whenMinute(n.since)}</td>
        <td>${span(n.hours * 3600000)}</td></tr>`).join("") : `<tr><td colspan="6">${t("none")}</td></tr>`}
    </tbody></table>
    <p class="downloads"><a id="csv-coverage" href="/api/v1/reports/coverage?${summary}" download>${t("csv-coverage")}</a>
      <a id="csv-not-networked" href="/api/v1/reports/coverage?${missing}" download>${t("csv-not-networked")}</a></p>
  </section>`;
}

/** What of a campus is not networked at the end of the report. */
function missingLinks(n) {
  if (!n.reporting) return t("nn-gateway");
  const kinds = [];
  if (!n.alarm_networked) kinds.push(t("kind-alarm_networking"));
  if (!n.video_networked) kinds.push(t("kind-video"));
  return kinds.length ? kinds.join(", ") : "–";
}

page("reports", { nav: "reports", render: renderReports, events: [] });
