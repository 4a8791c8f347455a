// Coverage trend: the daily reporting, alarm, video and fully-networked rates of the
// user's area (or `?region=`) over the last 2, 4, 8 or 12 weeks (`?weeks=`) and today so
// far, as a line chart and a table, from the stored daily history. Days without history
// are gaps.
"use strict";

texts({
  "zh": {
    "trend": "趋势", "trend-title": "联网率趋势", "whole-area": "全部地区", "weeks": "周",
    "last-weeks": "最近", "day": "日期", "registered-campuses": "在册校园",
    "observed-campuses": "有记录校园", "reporting-rate": "上报率", "alarm-rate": "一键报警联网率",
    "video-rate": "视频联网率", "full-rate": "全部联网率", "no-history": "无历史数据",
    "trend-note": "每日数值为当日全天的时间加权平均（%1）；“今天”为当日零时至 %2 的数值，当日结束前仍会变化；无历史数据的日期留空。",
    "to-overview": "查看该地区总览", "today-so-far": "今天（截至 %1）", "zone-beijing": "北京时间",
  },
  "en": {
    "trend": "Trend", "trend-title": "Coverage trend", "whole-area": "All regions",
    "weeks": "weeks", "last-weeks": "Last", "day": "Date", "registered-campuses": "Registered",
    "observed-campuses": "With history", "reporting-rate": "Reporting",
    "alarm-rate": "Alarm networked", "video-rate": "Video networked", "full-rate": "Fully networked",
    "no-history": "no history",
    "trend-note": "Each day's figure is that whole day's time-weighted average (%1); “today” runs from midnight to %2 and changes until the day is over; days without history are left blank.",
    "to-overview": "Overview of this region", "today-so-far": "Today (so far, to %1)",
    "zone-beijing": "China Standard Time",
  },
});

const WEEK_CHOICES = [2, 4, 8, 12];
/** The four lines: text key, rate field, colour. */
const SERIES = [
  ["reporting-rate", "reporting_rate", "#1759a6"],
  ["alarm-rate", "alarm_networked_rate", "#c23030"],
  ["video-rate", "video_networked_rate", "#2e8b57"],
  ["full-rate", "fully_networked_rate", "#8a4fbf"],
];

/** `YYYY-MM-DD` plus `n` days. */
function addDays(date, n) {
  return new Date(Date.parse(date + "T00:00:00Z") + n * 86400000).toISOString().slice(0, 10);
}

async function renderTrend(main) {
  const q = new URLSearchParams(location.search);
  const region = q.get("region") || "";
  const weeks = WEEK_CHOICES.includes(Number(q.get("weeks"))) ? Number(q.get("weeks")) : 4;
  // Whole days that are over, in the server's time zone, then today so far.
  const today = dayOf(Date.now());
  const to = addDays(today, -1), from = addDays(to, 1 - 7 * weeks);
  const ask = new URLSearchParams({ from, to: today, utc_offset: offsetText(Date.now()) });
  if (region) ask.set("region", region);
  const r = await api("/api/v1/reports/coverage/daily?" + ask.toString());
  // The API leaves out days it has no rows for and gives null rates for days nobody was
  // observed: both are gaps, never zeros.
  const byDate = new Map(r.days.map(d => [d.date, d]));
  const days = [];
  for (let d = from; d <= to; d = addDays(d, 1)) days.push({ date: d, row: byDate.get(d) || null });
  const asOf = r.today_as_of ? when(r.today_as_of).slice(11, 16) : "";
  if (r.today) days.push({ date: r.today.date, row: r.today, today: true });
  const zoneName = zone === "Asia/Shanghai" ? t("zone-beijing") : zone;
  const zoneText = zoneName + (lang === "zh" ? "，" : ", ") + "UTC" + offsetText(Date.now());
  const note = fill(t("trend-note"), zoneText, asOf || "–");
  const choices = WEEK_CHOICES.map(w => {
    const extra = region ? { region, weeks: w } : { weeks: w };
    return `<a href="/console/trend${keep(extra)}" data-nav data-weeks="${w}"${w === weeks ? ' class="here"' : ""}>${w} ${t("weeks")}</a>`;
  });
  const area = r.region ? rname(r.region.code, r.region.name) : t("whole-area");
  main.innerHTML = `
    <section id="trend" data-from="${from}" data-to="${to}">
      <h2 id="trend-area">${t("trend-title")} · ${esc(area)}</h2>
      <div class="filters" id="trend-weeks">${t("last-weeks")} ${choices.join(" ")}
        ${r.region ? `<a href="/console/${keep({ region: r.region.code })}" data-nav>${t("to-overview")}</a>` : ""}</div>
      ${drawTrendChart(days, asOf)}
      <div class="legend" id="trend-legend">${SERIES.map(([k, , colour]) => `<span data-series="${k}"><i class="swatch" style="background:${colour}"></i>${t(k)}</span>`).join("")}</div>
      <p class="note" id="trend-note">${esc(note)}</p>
    </section>
    <section id="trend-days"><table>
      <thead><tr><th>${t("day")}</th><th>${t("registered-campuses")}</th><th>${t("observed-campuses")}</th>${SERIES.map(([k]) => `<th>${t(k)}</th>`).join("")}</tr></thead>
      <tbody>${days.slice().reverse().map(({ date, row, today: now }) => {
        const gap = !row || SERIES.every(([, f]) => row[f] == null);
        const label = now ? `${date}<br><small>${fill(t("today-so-far"), asOf)}</small>` : date;
        const cls = [gap ? "gap" : "", now ? "today" : ""].filter(Boolean).join(" ");
        return `<tr data-date="${date}"${now ? " data-today" : ""}${cls ? ` class="${cls}"` : ""}><td>${label}</td>
          <td>${row ? row.registered : "–"}</td><td>${row ? row.observed : "–"}</td>
          ${gap ? `<td colspan="${SERIES.length}">${t("no-history")}</td>`
            : SERIES.map(([k, f]) => `<td data-series="${k}">${bar(row[f])}${pct(row[f])}</td>`).join("")}</tr>`;
      }).join("")}</tbody></table></section>`;
}

function drawTrendChart(days, asOf) {
  // A narrower drawing on a phone, so that its lettering is not shrunk out of reading.
  const narrow = window.innerWidth < 760;
  const W = narrow ? 440 : 900, H = narrow ? 260 : 300, L = 50, R = 30, T = 12, B = 36;
  const n = days.length;
  const x = i => L + (n > 1 ? i / (n - 1) : 0.5) * (W - L - R);
  const y = rate => T + (1 - rate) * (H - T - B);
  const grid = [0, 0.25, 0.5, 0.75, 1].map(v => `<line class="grid" x1="${L}" x2="${W - R}" y1="${y(v)}" y2="${y(v)}"/>
    <text class="axis" x="${L - 6}" y="${y(v) + 4}" text-anchor="end">${v * 100}%</text>`).join("");
  // Date labels a week apart (2 days apart over 2 weeks, 2 weeks over 12), ending on the
  // last day.
  const step = (n <= 15 ? 2 : 7 * Math.ceil(n / 57)) * (narrow ? 2 : 1);
  const labels = days.map((d, i) => ((n - 1 - i) % step === 0
    ? `<line class="tick" x1="${x(i)}" x2="${x(i)}" y1="${H - B}" y2="${H - B + 4}"/><text class="axis" x="${x(i)}" y="${H - B + 18}" text-anchor="middle">${d.date.slice(5)}</text>`
    : "")).join("");
  const lines = SERIES.map(([k, f, colour]) => {
    let path = "", dots = "", joined = false, last = null, partial = "";
    days.forEach((d, i) => {
      const v = d.row ? d.row[f] : null;
      if (v == null) { joined = false; last = null; return; }
      const px = x(i).toFixed(1), py = y(v).toFixed(1);
      // Today so far: a dashed step to a hollow dot, not part of the solid line.
      if (d.today) {
        if (last) partial = `<path d="M${last} L${px} ${py}" fill="none" stroke="${colour}" stroke-width="2" stroke-dasharray="4 3"/>`;
        dots += `<circle data-series="${k}" data-date="${d.date}" data-today data-rate="${v}" cx="${px}" cy="${py}" r="4" fill="#fff" stroke="${colour}" stroke-width="2"><title>${fill(t("today-so-far"), asOf)} ${t(k)} ${pct(v)}</title></circle>`;
        return;
      }
      path += `${joined ? "L" : "M"}${px} ${py} `;
      joined = true;
      last = `${px} ${py}`;
      dots += `<circle data-series="${k}" data-date="${d.date}" data-rate="${v}" cx="${px}" cy="${py}" r="3" fill="${colour}"><title>${d.date} ${t(k)} ${pct(v)}</title></circle>`;
    });
    return `<g data-series="${k}"><path d="${path.trim()}" fill="none" stroke="${colour}" stroke-width="2"/>${partial}${dots}</g>`;
  }).join("");
  const empty = days.every(d => !d.row || SERIES.every(([, f]) => d.row[f] == null));
  return `<svg id="trend-chart" viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="${t("trend-title")}">
    ${grid}<line class="axis-line" x1="${L}" x2="${W - R}" y1="${H - B}" y2="${H - B}"/>${labels}${lines}
    ${empty ? `<text class="axis" x="${(L + W - R) / 2}" y="${y(0.5)}" text-anchor="middle">${t("no-history")}</text>` : ""}</svg>`;
}

page("trend", { nav: "trend", render: renderTrend, events: [] });
