// Overview: where it is worst, first. The headline rates of the user's area (or of the
// region drilled into), its worst regions and worst campuses one click from the answer,
// the map, then every child region and school type in tables sortable by any column,
// open regional incidents and the dropped links now (acknowledged from the list by
// operators).
"use strict";

texts({
  "zh": {
    "overview": "总览", "all": "全部地区", "name": "名称", "registered": "在册校园",
    "reporting": "在线上报", "alarm": "一键报警联网", "video": "视频联网", "full": "全部联网",
    "by-school-type": "按学校类型", "school-type": "学校类型", "open-alerts": "当前掉线",
    "open-incidents": "区域性故障", "severity": "级别", "campus": "校园", "link": "链路",
    "since": "开始时间", "cause": "原因", "critical": "严重", "warning": "警告", "info": "提示",
    "ack": "确认", "acked-by": "已确认：", "ack-comment": "备注（可选）", "filter": "筛选",
    "all-kinds": "全部链路", "region": "地区", "campuses-down": "离线校园", "of": "共",
    "flapping": "频繁波动", "duration": "持续", "as-of": "数据时间", "worst-regions": "最差的地区",
    "worst-campuses": "最差的校园", "by-missing": "按未联网校园数", "by-rate": "按联网率",
    "not-networked": "未全部联网", "children": "下级地区", "campuses-of": "本区县校园",
    "no-worst": "全部联网", "gw-lost": "网关失联", "no-alarm-video": "报警和视频均未联网",
    "no-alarm": "一键报警未联网", "no-video": "视频未联网", "not-installed": "从未上报",
    "more": "更多", "rate": "联网率", "map": "地图",
    "step-r0": "0%", "step-r1": "低于50%", "step-r2": "50–80%", "step-r3": "80–90%",
    "step-r4": "90–98%", "step-r5": "98%以上", "step-rn": "无在册校园",
    "vv-agent": "视频联网（监测程序所见）", "vv-platform": "视频联网（视频平台所见）",
    "vv-platform-of": "共 %1 所校园接入视频平台", "vv-disagree": "两种视角不一致",
    "vv-split": "上联故障 %1 · 监测程序看不到 %2",
  },
  "en": {
    "overview": "Overview", "all": "All regions", "name": "Name", "registered": "Registered campuses",
    "reporting": "Reporting", "alarm": "Alarm networked", "video": "Video networked",
    "full": "Fully networked", "by-school-type": "By school type", "school-type": "School type",
    "open-alerts": "Dropped links now", "open-incidents": "Regional incidents",
    "severity": "Severity", "campus": "Campus", "link": "Link", "since": "Since",
    "cause": "Cause", "critical": "critical", "warning": "warning", "info": "info",
    "ack": "Acknowledge", "acked-by": "Acknowledged by ", "ack-comment": "Comment (optional)",
    "filter": "Filter", "all-kinds": "All links", "region": "Region",
    "campuses-down": "Campuses offline", "of": "of", "flapping": "flapping",
    "duration": "For", "as-of": "Figures as of", "worst-regions": "Worst regions",
    "worst-campuses": "Worst campuses", "by-missing": "By campuses not networked",
    "by-rate": "By rate", "not-networked": "Not fully networked", "children": "Regions below",
    "campuses-of": "Campuses of the county", "no-worst": "All fully networked",
    "gw-lost": "Gateway not heard", "no-alarm-video": "Neither alarm nor video networked",
    "no-alarm": "Alarm not networked", "no-video": "Video not networked",
    "not-installed": "Never reported", "more": "More", "rate": "Rate", "map": "Map",
    "step-r0": "0%", "step-r1": "below 50%", "step-r2": "50–80%", "step-r3": "80–90%",
    "step-r4": "90–98%", "step-r5": "98% and more", "step-rn": "no registered campus",
    "vv-agent": "Video networked (agent's view)", "vv-platform": "Video networked (platform's view)",
    "vv-platform-of": "of %1 campuses on the video platform", "vv-disagree": "Views disagree",
    "vv-split": "uplink broken %1 · agent blind %2",
  },
});

const FIGURES = [
  ["reporting", "reporting", "reporting_rate"],
  ["alarm", "alarm_networked", "alarm_networked_rate"],
  ["video", "video_networked", "video_networked_rate"],
  ["full", "fully_networked", "fully_networked_rate"],
];

/** How the worst regions are ranked, kept across redraws: `missing` or `rate`. */
let worstBy = "missing";
const WORST_SHOWN = 10;

/** The alert list's filter, kept across live refreshes. */
const alertFilter = { kind: "", text: "" };

/** The region asked for in the address (empty: the user's whole area). */
function overviewRegion() { return new URLSearchParams(location.search).get("region") || ""; }

async function loadOverview() {
  const region = overviewRegion();
  const r = region ? "region=" + encodeURIComponent(region) : "";
  const and = r ? "&" + r : "";
  const c = await api("/api/v1/coverage" + (r ? "?" + r : ""));
  // Ranked below the node: every county of a province or city; none below a county.
  const level = c.region && c.region.level === "county" ? null : "county";
  const [ranked, worst, a, inc] = await Promise.all([
    level ? api(`/api/v1/coverage?level=${level}${and}`) : Promise.resolve(null),
    api(`/api/v1/campuses?networked=false&sort=worst&limit=${WORST_SHOWN}${and}`),
    api("/api/v1/alerts?state=open" + and),
    api("/api/v1/incidents?state=open" + and),
  ]);
  const province = shownProvince(c);
  const tiles = province ? await provinceTiles(province) : null;
  return { c, ranked: ranked ? ranked.children : [], worst, alerts: a.alerts, incidents: inc.incidents, tiles };
}

function drawOverview(d) {
  const c = d.c;
  const crumbs = [`<a href="/console/${keep()}" data-nav>${t("all")}</a>`]
    .concat(c.path.map(r => `<a href="/console/${keep({ region: r.code })}" data-nav>${esc(rname(r.code, r.name))}</a>`))
    .concat(c.region ? [`<span>${esc(rname(c.region.code, c.region.name))}</span>`] : []);
  const totals = [`<div class="total" data-figure="registered"><span>${t("registered")}</span><b>${c.registered}</b></div>`]
    .concat(FIGURES.map(([k, n, r]) => `<div class="total ${step(c[r])}" data-figure="${k}"><span>${t(k)}</span><b>${c[n]}</b>${bar(c[r])}${pct(c[r])}</div>`));
  return `
    <section id="overview">
      <nav id="crumbs">${crumbs.join(" › ")}</nav>
      <h2 id="area">${c.region ? esc(rname(c.region.code, c.region.name)) : t("all")}</h2>
      <p class="note links"><a id="to-trend" href="/console/trend${keep(c.region ? { region: c.region.code } : {})}" data-nav>${t("trend")}</a>
        · <a id="to-wall" href="/console/wall${keep()}">${t("wall")}</a></p>
      <p id="as-of" class="note">${t("as-of")} ${when(c.at)}</p>
      <div id="totals" class="totals">${totals.join("")}</div>
      ${drawVideoViews(c)}
    </section>
    <section id="where" class="where${d.tiles && d.tiles.length ? "" : " no-map"}">
      <div id="worst">
        ${d.ranked.length ? drawWorstRegions(d.ranked) : ""}
        ${drawWorstCampuses(d.worst)}
      </div>
      ${drawMap(d.tiles, d.ranked, c.region)}
    </section>
    <section id="children-sec">
      <h3>${c.region && c.region.level === "county" ? t("campuses-of") : t("children")}</h3>
      ${sortable("children", coverageColumns("name", ch => ch.level === "campus"
        ? `<a href="/console/campus/${encodeURIComponent(ch.code)}${keep()}" data-nav>${esc(ch.name || ch.code)}</a>`
        : `<a href="/console/${keep({ region: ch.code })}" data-nav data-region="${esc(ch.code)}">${esc(rname(ch.code, ch.name))}</a>`, ch => ch.name || ch.code),
        c.children, { key: "code", desc: false }, ch => `data-code="${esc(ch.code)}"`)}
    </section>
    <section id="types-sec">
      <h3>${t("by-school-type")}</h3>
      ${sortable("school-types", coverageColumns("school-type", s => t(s.school_type), s => t(s.school_type)),
        c.school_types.filter(s => s.registered > 0), { key: "code", desc: false }, s => `data-school-type="${s.school_type}"`)}
    </section>
    ${drawIncidents(d.incidents)}
    <section id="alerts">
      <h2>${t("open-alerts")}</h2>
      <div class="filters">
        <select id="alert-kind">${["", "gateway", "alarm_networking", "video", "alarm", "camera", "gb_device"].map(k => `<option value="${k}"${k === alertFilter.kind ? " selected" : ""}>${k ? t("kind-" + k) : t("all-kinds")}</option>`).join("")}</select>
        <input id="alert-text" type="search" placeholder="${t("filter")}" value="${esc(alertFilter.text)}">
      </div>
      <table>
        <thead><tr><th>${t("severity")}</th><th>${t("campus")}</th><th>${t("link")}</th><th>${t("since")}</th><th>${t("cause")}</th><th></th></tr></thead>
        <tbody id="alert-rows">${alertRows(d.alerts)}</tbody>
      </table>
    </section>`;
}

/** Where campuses have GB/T 28181 devices: video by the agent's view and by the
 *  platform's, and how many campuses' views disagree (a link to them). Nothing where no
 *  campus uses the platform. */
function drawVideoViews(c) {
  const v = c.video_views;
  if (!v || !v.platform_campuses) return "";
  const rate = (n, of) => of ? n / of : null;
  const agent = rate(v.agent_networked, c.registered), platform = rate(v.platform_networked, v.platform_campuses);
  const disagree = v.uplink_broken + v.agent_blind;
  return `<div id="video-views" class="totals video-views">
    <div class="total ${step(agent)}" data-figure="video-agent"><span>${t("vv-agent")}</span><b>${v.agent_networked}</b>${bar(agent)}${pct(agent)}</div>
    <div class="total ${step(platform)}" data-figure="video-platform"><span>${t("vv-platform")}</span><b>${v.platform_networked}</b>${bar(platform)}${pct(platform)}
      <small>${fill(t("vv-platform-of"), v.platform_campuses)}</small></div>
    <a class="total disagree${disagree ? " alarming" : ""}" data-figure="disagreements" href="/console/platform${keep(c.region ? { region: c.region.code } : {})}" data-nav>
      <span>${t("vv-disagree")}</span><b>${disagree}</b><small>${fill(t("vv-split"), v.uplink_broken, v.agent_blind)}</small></a>
  </div>`;
}

/** The columns of a coverage table: the name, registered, then each rate (sorted by
 *  rate; the count is shown with it). `code` keeps the server's order. */
function coverageColumns(first, cell, name) {
  return [
    { key: "code", label: t(first), value: r => r.code || r.school_type, cell: r => `<td>${cell(r)}</td>` },
    { key: "registered", label: t("registered"), value: r => r.registered, cell: r => `<td class="num">${r.registered}</td>` },
    { key: "missing", label: t("not-networked"), value: r => r.registered - r.fully_networked, cell: r => `<td class="num">${r.registered - r.fully_networked}</td>` },
  ].concat(FIGURES.map(([k, n, rate]) => ({ key: k, label: t(k), value: r => r[rate], cell: r => rateCell(r[rate], r[n]) })));
}

/** The regions below the node, worst first: by campuses not fully networked, or by rate. */
function drawWorstRegions(regions) {
  const key = worstBy === "rate"
    ? (a, b) => (a.fully_networked_rate ?? 2) - (b.fully_networked_rate ?? 2) || (b.registered - a.registered)
    : (a, b) => (b.registered - b.fully_networked) - (a.registered - a.fully_networked) || (a.fully_networked_rate ?? 2) - (b.fully_networked_rate ?? 2);
  const rows = regions.filter(r => r.registered > 0 && r.fully_networked < r.registered).sort(key).slice(0, WORST_SHOWN);
  return `<div id="worst-regions">
    <h3>${t("worst-regions")}</h3>
    <div class="filters" role="group">${["missing", "rate"].map(b => `<button type="button" data-worst-by="${b}"${b === worstBy ? ' class="here" aria-pressed="true"' : ""}>${t("by-" + b)}</button>`).join("")}</div>
    <ol class="ranked">${rows.length ? rows.map(r => `<li data-rank="${esc(r.code)}">
      <a href="/console/${keep({ region: r.code })}" data-nav data-region="${esc(r.code)}">${esc(rname(r.code, r.name))}</a>
      ${r.parent ? `<small>${esc(rname(r.parent.code, r.parent.name))}</small>` : ""}
      <span class="missing">${r.registered - r.fully_networked} / ${r.registered}</span>
      <span class="chip ${step(r.fully_networked_rate)}">${pct(r.fully_networked_rate)}</span></li>`).join("")
      : `<li>${t("no-worst")}</li>`}</ol></div>`;
}

/** Why a campus is not fully networked, in words. */
function campusTrouble(c) {
  if (c.gateway_state === "offline" || c.gateway_state === "stale") return t("gw-lost");
  if (c.gateway_state === "never_seen") return t("not-installed");
  if (!c.alarm_networked && !c.video_networked) return t("no-alarm-video");
  return !c.alarm_networked ? t("no-alarm") : t("no-video");
}

/** For how long a campus has been as it is; a campus never seen has been out since it
 *  was registered, and says so with the date. */
function campusFor(c) {
  if (c.gateway_state === "never_seen" && c.registered_at) {
    return fill(t("since-registered-for"), dayOf(c.registered_at), span(Date.now() - Date.parse(c.registered_at)));
  }
  return c.since ? t("duration") + " " + span(Date.now() - Date.parse(c.since)) : "";
}

function drawWorstCampuses(list) {
  return `<div id="worst-campuses">
    <h3>${t("worst-campuses")} <small>${list.total}</small></h3>
    <ol class="ranked">${list.campuses.length ? list.campuses.map(c => `<li data-campus="${esc(c.id)}">
      <a href="/console/campus/${encodeURIComponent(c.id)}${keep()}" data-nav>${esc(c.name || c.id)}</a>
      <small>${esc(rname(c.region))}</small>
      <span class="${c.gateway_state === "never_seen" ? "warning" : "critical"}">${campusTrouble(c)}</span>
      <small>${campusFor(c)}</small></li>`).join("")
      : `<li>${t("no-worst")}</li>`}</ol></div>`;
}

function drawIncidents(list) {
  if (!list.length) return `<section id="incidents" hidden></section>`;
  return `<section id="incidents"><h2>${t("open-incidents")}</h2><table>
    <thead><tr><th>${t("region")}</th><th>${t("since")}</th><th>${t("campuses-down")}</th></tr></thead><tbody>
    ${list.map(i => `<tr data-incident="${i.id}"><td class="critical">${esc(i.region_name)}</td><td>${when(i.since)}</td>
      <td>${i.open_alerts} ${t("of")} ${i.campuses.length}</td></tr>`).join("")}
  </tbody></table></section>`;
}

function alertRows(alerts) {
  const order = { critical: 0, warning: 1, info: 2 };
  const text = alertFilter.text.trim().toLowerCase();
  const rows = alerts
    .filter(r => !alertFilter.kind || r.kind === alertFilter.kind)
    .filter(r => !text || [r.campus, r.campus_name, r.device, r.cause].some(v => v && String(v).toLowerCase().includes(text)))
    .sort((x, y) => (order[x.severity] - order[y.severity]) || (x.since < y.since ? 1 : x.since > y.since ? -1 : 0));
  const operator = canDo("operator");
  return rows.length ? rows.map(r => `<tr data-alert="${r.id}" class="sev-${esc(r.severity)}">
      <td class="${esc(r.severity)}">${t(r.severity)}${r.flapping ? ` <small>${t("flapping")}</small>` : ""}</td>
      <td><a href="/console/campus/${encodeURIComponent(r.campus)}${keep()}" data-nav>${esc(r.campus_name || r.campus)}</a></td>
      <td>${t("kind-" + r.kind)}${r.device ? " " + esc(r.device) : ""}</td>
      <td>${when(r.since)}<br><small>${t("duration")} ${span(Date.now() - Date.parse(r.since))}</small></td>
      <td>${causeText(r)}</td>
      <td class="ack">${r.acknowledged
        ? `<span class="acked">${t("acked-by")}${esc(r.acknowledged.by)}</span>`
        : !operator ? ""
        : ackOpen === r.id
          ? `<form data-ack-form="${r.id}"><input id="ack-comment" name="comment" placeholder="${t("ack-comment")}" value="${esc(ackDraft)}"> <button type="submit">${t("ack")}</button></form>`
          : `<button type="button" data-ack="${r.id}">${t("ack")}</button>`}</td></tr>`).join("")
    : `<tr><td colspan="6">${t("none")}</td></tr>`;
}

/** Wires what the drawn page reacts to: the worst-region ranking, the alert filters and
 *  the acknowledgement forms. */
function wireOverview(main, d) {
  main.querySelectorAll("button[data-worst-by]").forEach(b => b.onclick = () => { worstBy = b.dataset.worstBy; render(false); });
  main.querySelectorAll("button[data-measure]").forEach(b => b.onclick = () => { mapMeasure = b.dataset.measure; render(false); });
  const rows = () => {
    document.getElementById("alert-rows").innerHTML = alertRows(d.alerts);
    wireAcks(d);
  };
  document.getElementById("alert-kind").onchange = ev => { alertFilter.kind = ev.target.value; rows(); };
  document.getElementById("alert-text").oninput = ev => { alertFilter.text = ev.target.value; rows(); };
  wireAcks(d);
}

function wireAcks(d) {
  document.querySelectorAll("button[data-ack]").forEach(b => b.onclick = () => {
    ackOpen = Number(b.dataset.ack);
    ackDraft = "";
    document.getElementById("alert-rows").innerHTML = alertRows(d.alerts);
    wireAcks(d);
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

page("overview", { nav: "overview", load: loadOverview, draw: drawOverview, wire: wireOverview });

// ---- the map ---------------------------------------------------------------------------

/** The measure the map colours by, kept across redraws. */
let mapMeasure = "full";

/** Tile layouts by province code, loaded once each: `[{ code, row, col }]`, one equal
 *  tile per county in its rough position (see docs/console.md for the data's source). */
const TILES = {};

async function provinceTiles(province) {
  if (!(province in TILES)) {
    try {
      const resp = await fetch(`/console/assets/tiles-${province}.json`, { credentials: "same-origin" });
      TILES[province] = resp.ok ? await resp.json() : null;
    } catch (e) { TILES[province] = null; }
  }
  return TILES[province];
}

/** The province the overview shows (its own, or that of the region drilled into; for the
 *  whole area, its one province if it has only one). */
function shownProvince(c) {
  if (c.region) return c.region.code.slice(0, 2) + "0000";
  const provinces = c.children.filter(ch => ch.level === "province");
  return provinces.length === 1 ? provinces[0].code : null;
}

/** The tile map of the node's counties, coloured by `mapMeasure`; counties outside the
 *  node are dimmed, those without registered campuses grey. Each tile names its county and
 *  figures on hover and drills down on click. */
function drawMap(tiles, counties, node, controls = true) {
  if (!tiles || !tiles.length) return "";
  const S = 30, byCode = new Map(counties.map(r => [r.code, r]));
  const rows = Math.max(...tiles.map(x => x.row)) + 1, cols = Math.max(...tiles.map(x => x.col)) + 1;
  const at = new Map(tiles.map(x => [x.row + "," + x.col, x]));
  const city = x => x.code.slice(0, 4);
  const inside = x => !node || x.code.startsWith(node.code.replace(/0+$/, ""));
  const [, n, rate] = FIGURES.find(([k]) => k === mapMeasure);
  const cells = tiles.map(x => {
    const r = byCode.get(x.code);
    const v = r ? r[rate] : null;
    const label = `${lang === "en" ? x.name_en : x.name}${r ? ` · ${t(mapMeasure)} ${r[n]}/${r.registered} (${pct(v)})` : ` · ${t("registered")} 0`}`;
    const cls = `${r ? step(v) : "rn"}${inside(x) ? "" : " outside"}`;
    return `<a href="/console/${keep({ region: x.code })}" data-nav data-tile="${x.code}"><rect class="tile ${cls}" x="${x.col * S + 1}" y="${x.row * S + 1}" width="${S - 2}" height="${S - 2}"><title>${esc(label)}</title></rect></a>`;
  });
  // City borders: an edge between tiles of two cities, or at the map's edge.
  const edges = [];
  for (const x of tiles) {
    for (const [dr, dc, x1, y1, x2, y2] of [[-1, 0, 0, 0, 1, 0], [1, 0, 0, 1, 1, 1], [0, -1, 0, 0, 0, 1], [0, 1, 1, 0, 1, 1]]) {
      const nb = at.get((x.row + dr) + "," + (x.col + dc));
      if (!nb || city(nb) !== city(x)) edges.push(`M${(x.col + x1) * S} ${(x.row + y1) * S}L${(x.col + x2) * S} ${(x.row + y2) * S}`);
    }
  }
  const cities = [...new Set(tiles.map(city))].map(code => {
    const own = tiles.filter(x => city(x) === code);
    const cx = own.reduce((s, x) => s + x.col + 0.5, 0) / own.length * S, cy = own.reduce((s, x) => s + x.row + 0.5, 0) / own.length * S;
    const name = lang === "en" ? (own[0].city_en || "").split(" ")[0] : (own[0].city || "").replace(/(市|盟)$/, "");
    return `<text class="city-name" x="${cx.toFixed(0)}" y="${cy.toFixed(0)}" text-anchor="middle">${esc(name)}</text>`;
  });
  return `<div id="map-sec">
    <div class="map-head"><h3>${t("map")}</h3>
      ${controls ? `<div class="filters" role="group">${FIGURES.map(([k]) => `<button type="button" data-measure="${k}"${k === mapMeasure ? ' class="here" aria-pressed="true"' : ""}>${t(k)}</button>`).join("")}</div>` : `<span>${t(mapMeasure)}</span>`}</div>
    <svg id="map" viewBox="0 0 ${cols * S} ${rows * S}" role="img" aria-label="${t("map")}">
      ${cells.join("")}<path class="city-edge" d="${edges.join("")}"/>${cities.join("")}
    </svg>
    <div class="legend">${["r0", "r1", "r2", "r3", "r4", "r5", "rn"].map(s => `<span><span class="swatch ${s}"></span>${t("step-" + s)}</span>`).join("")}</div>
  </div>`;
}
