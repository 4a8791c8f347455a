// Campus: one campus's gateway (state, session, host health), every device with its last
// measurements and identity, its open alerts, and a timeline of the last 7 days drawn from
// the stored transitions (/console/campus/{id}).
"use strict";

texts({
  "zh": {
    "campus-not-found": "未找到校园", "campus-not-found-why": "该校园不在名册中也从未上报，或不在您的管辖范围内：",
    "back-overview": "返回总览", "is-registered": "在册", "not-registered": "不在名册中（不计入联网率）",
    "expected": "应接入", "gateway": "网关", "state": "状态", "since-time": "开始时间",
    "reason": "原因", "last-heartbeat": "最近心跳", "agent-version": "监测程序版本",
    "first-seen": "首次上报", "host-health": "主机状况", "cpu": "CPU", "memory": "内存", "disk": "磁盘",
    "uptime": "运行时长", "gateway-flag": "网关不在线：其设备状态未知", "devices": "设备",
    "device": "设备", "measurements": "测量值", "identity": "型号与固件", "firmware": "固件",
    "serial": "序列号", "hardware": "硬件版本", "required": "必需", "last-reported": "最后上报",
    "campus-alerts": "当前告警", "sev-critical": "严重", "sev-warning": "警告", "sev-info": "提示",
    "alert-open": "未恢复", "alert-suppressed": "已抑制", "acked": "已确认", "flaps": "频繁波动",
    "for-time": "持续", "timeline": "时间线", "span-24h": "24小时", "span-7d": "7天", "span-30d": "30天", "transitions": "状态变化", "time": "时间",
    "change": "变化", "no-data": "无数据", "more-transitions": "仅显示最新的部分记录，共",
    "m-latency_ms": "延迟", "m-first_keyframe_ms": "首个关键帧", "m-frame_rate": "帧率",
    "m-bitrate_kbps": "码率", "m-http_status": "HTTP状态", "m-sip_status": "SIP状态",
    "m-clock_drift_s": "时钟偏差", "m-since_last_poll_s": "距上次轮询", "m-resolution": "分辨率",
    "m-bytes": "快照大小", "m-frames": "帧数", "m-keyframes": "关键帧数",
    "gb-platform": "视频平台 (GB/T 28181)", "gb-view-agent": "监测程序所见（校内）",
    "gb-view-platform": "视频平台所见", "gb-in-force": "以此为准",
    "gb-in-force-platform": "本校视频联网按视频平台所见计算。", "gb-in-force-agent": "本校视频联网按监测程序所见计算。",
    "gb-networked": "视频已联网", "gb-not-networked": "视频未联网", "gb-agent-cameras": "摄像机 %1 / %2 路正常",
    "gb-platform-cameras": "摄像机通道 %1 / %2 路在线 (ON)", "gb-unseen": "名册中 %1 个编码从未出现在设备目录中",
    "gb-uplink_broken": "摄像机在校内正常，但平台上离线：上联或平台注册故障",
    "gb-agent_blind": "摄像机在平台上在线，但监测程序看不到：请检查网关上的摄像机配置和校内网络",
    "gb-listed": "名册列出的编码", "gb-code": "国标编码", "gb-address": "地址",
    "gb-keepalive": "最近保活", "gb-expires": "注册到期", "gb-channels": "通道（在线/总数）",
    "gb-show-channels": "通道列表", "gb-hide-channels": "收起", "gb-never-registered": "尚未注册",
    "gb-channel": "通道", "gb-kind": "类型", "gb-status": "状态", "gb-kind-camera": "摄像机",
    "gb-kind-alarm_input": "报警输入", "gb-kind-other": "其他", "gb-more-channels": "仅显示前 %1 个通道，共 %2 个",
    "gb-no-catalog": "尚未收到设备目录", "gb-alarm-change": "报警", "gb-to-platform": "视频平台总览",
  },
  "en": {
    "campus-not-found": "Campus not found",
    "campus-not-found-why": "This campus is not registered and never reported or it is outside your area: ",
    "back-overview": "Back to the overview", "is-registered": "Registered",
    "not-registered": "Not registered (not counted in coverage)", "expected": "Expected",
    "gateway": "Gateway", "state": "State", "since-time": "Since", "reason": "Cause",
    "last-heartbeat": "Last heartbeat", "agent-version": "Agent version",
    "first-seen": "First seen", "host-health": "Host health", "cpu": "CPU", "memory": "Memory",
    "disk": "Disk", "uptime": "Uptime", "gateway-flag": "Gateway not online: its devices' states are unknown",
    "devices": "Devices", "device": "Device", "measurements": "Measurements",
    "identity": "Model and firmware", "firmware": "firmware", "serial": "serial",
    "hardware": "hardware", "required": "required", "last-reported": "last reported",
    "campus-alerts": "Active alerts", "sev-critical": "critical", "sev-warning": "warning",
    "sev-info": "info", "alert-open": "open", "alert-suppressed": "suppressed",
    "acked": "acknowledged", "flaps": "flapping", "for-time": "For", "timeline": "Timeline", "span-24h": "24 h", "span-7d": "7 days", "span-30d": "30 days",
    "transitions": "Transitions", "time": "Time", "change": "Change", "no-data": "no data",
    "more-transitions": "Showing the newest transitions only; total",
    "m-latency_ms": "latency", "m-first_keyframe_ms": "first keyframe", "m-frame_rate": "frame rate",
    "m-bitrate_kbps": "bitrate", "m-http_status": "HTTP status", "m-sip_status": "SIP status",
    "m-clock_drift_s": "clock drift", "m-since_last_poll_s": "since last poll",
    "m-resolution": "resolution", "m-bytes": "snapshot size", "m-frames": "frames",
    "m-keyframes": "keyframes",
    "gb-platform": "Video platform (GB/T 28181)", "gb-view-agent": "The agent's view (on campus)",
    "gb-view-platform": "The platform's view", "gb-in-force": "in force",
    "gb-in-force-platform": "This campus's video networking is counted by the platform's view.",
    "gb-in-force-agent": "This campus's video networking is counted by the agent's view.",
    "gb-networked": "Video networked", "gb-not-networked": "Video not networked",
    "gb-agent-cameras": "%1 of %2 cameras up", "gb-platform-cameras": "%1 of %2 camera channels ON",
    "gb-unseen": "%1 codes of the registry never seen in a device catalog",
    "gb-uplink_broken": "Cameras up on campus but not on the platform: the uplink or the registration is broken",
    "gb-agent_blind": "Cameras up on the platform but not seen by the agent: check the gateway's camera settings and the campus network",
    "gb-listed": "Codes in the registry", "gb-code": "GB/T 28181 code", "gb-address": "Address",
    "gb-keepalive": "Last keepalive", "gb-expires": "Registration expires", "gb-channels": "Channels (ON/total)",
    "gb-show-channels": "Channels", "gb-hide-channels": "Hide", "gb-never-registered": "never registered",
    "gb-channel": "Channel", "gb-kind": "Kind", "gb-status": "Status", "gb-kind-camera": "camera",
    "gb-kind-alarm_input": "alarm input", "gb-kind-other": "other", "gb-more-channels": "Showing the first %1 of %2 channels",
    "gb-no-catalog": "no catalog yet", "gb-alarm-change": "alarm", "gb-to-platform": "Video platform overview",
  },
});

/** How far back the timeline looks. */
/** The timeline's spans (`?span=`), the default first: a 3-minute outage is visible at
 *  24 h. */
const SPANS = { "7d": 7 * 86400000, "24h": 86400000, "30d": 30 * 86400000 };
let TIMELINE_MS = SPANS["7d"];
/** The events API's largest page, and how many pages the timeline reads at most. */
const EVENTS_PAGE = 1000, EVENTS_PAGES = 20;
/** How many transitions the list shows (the bands show them all). */
const LIST_MAX = 300;

async function renderCampus(main, id) {
  let c;
  try {
    if (!id) throw Object.assign(new Error("no campus"), { status: 404 });
    c = await api("/api/v1/campuses/" + encodeURIComponent(id));
  } catch (e) {
    // 404: not registered nor seen, or outside the user's area; 400: not a campus id.
    if (e.status !== 404 && e.status !== 400) throw e;
    main.innerHTML = `<section id="campus-missing"><h2>${t("campus-not-found")}</h2>
      <p>${t("campus-not-found-why")}<b>${esc(id)}</b></p>
      <p><a href="/console/${keep()}" data-nav>${t("back-overview")}</a></p></section>`;
    return;
  }
  const now = Date.now();
  const spanKey = SPANS[new URLSearchParams(location.search).get("span")] ? new URLSearchParams(location.search).get("span") : "7d";
  TIMELINE_MS = SPANS[spanKey];
  const gb = c.gb28181 && c.gb28181.listed.length ? c.gb28181 : null;
  campusGbCodes = new Set(gb ? gb.listed.concat(gb.devices.map(d => d.id)) : []);
  const [cov, events, channels] = await Promise.all([
    api("/api/v1/coverage?region=" + encodeURIComponent(c.region)).catch(() => null),
    campusEvents(c.id, now - TIMELINE_MS),
    gb ? gbChannelLists(gb.devices) : new Map(),
  ]);
  const county = cov && cov.region ? cov.region : { code: c.region, name: c.region };
  const crumbs = (cov ? cov.path : []).concat([county])
    .map(r => `<a href="/console/${keep({ region: r.code })}" data-nav data-region="${esc(r.code)}">${esc(rname(r.code, r.name))}</a>`);
  main.innerHTML = `
    <section id="campus" data-campus="${esc(c.id)}">
      <nav id="crumbs">${crumbs.join(" › ")} <a id="to-trend" class="note" href="/console/trend${keep({ region: county.code })}" data-nav>${t("trend")}</a></nav>
      <h2 id="campus-name">${esc(c.name || c.id)}</h2>
      <p id="campus-facts">${esc(c.id)} · ${esc(rname(county.code, county.name))} (${esc(c.region)})${c.school_type ? " · " + t(c.school_type) : ""} ·
        ${c.registered ? `${t("is-registered")}${c.registered_at ? " " + dayOf(c.registered_at) : ""} · ${t("expected")}: ${t("kind-alarm")} ${c.expected_alarms} · ${t("kind-camera")} ${c.expected_cameras}` : `<span class="warning">${t("not-registered")}</span>`}</p>
    </section>
    ${gb ? drawCampusPlatform(c, gb, channels) : ""}
    ${drawGateway(c.gateway, c)}
    ${drawDevices(c.device_list)}
    ${drawCampusAlerts(c.alerts)}
    ${drawTimeline(c, events, now)}`;
}

// ---- the video platform (GB/T 28181) -------------------------------------------------------

/** The codes of the campus on show (listed, and the devices behind them): a live
 *  `gb_device` change of one of them redraws the page. */
let campusGbCodes = new Set();
/** The devices whose channel lists are open, kept across redraws. */
const gbOpen = new Set();
/** How many channels a device's list shows at most. */
const CHANNELS_SHOWN = 200;

/** The channel lists of the open devices among `devices`: id → channels. */
async function gbChannelLists(devices) {
  const open = devices.filter(d => gbOpen.has(d.id));
  const lists = await Promise.all(open.map(d =>
    api("/api/v1/gb28181/devices/" + encodeURIComponent(d.id)).then(x => x.channel_list).catch(() => null)));
  return new Map(open.map((d, i) => [d.id, lists[i]]));
}

/** A view's verdict: networked or not, or nothing to say. */
function verdict(yes) {
  if (yes == null) return `<b class="st st-unknown">${t("unknown")}</b>`;
  return yes ? `<b class="st st-up">${t("gb-networked")}</b>` : `<b class="st st-down">${t("gb-not-networked")}</b>`;
}

/** Both views of the campus's video side by side, the one in force marked, a banner
 *  where they disagree, then its GB/T 28181 devices. */
function drawCampusPlatform(c, gb, channels) {
  const v = gb.views;
  const camerasUp = c.device_list.filter(d => d.kind === "camera" && d.state === "up").length;
  const view = (key, yes, lines) => `<div class="view${v.in_force === key ? " in-force" : ""}" data-view="${key}">
      <h4>${t("gb-view-" + key)}${v.in_force === key ? ` <span class="tag">${t("gb-in-force")}</span>` : ""}</h4>
      ${verdict(yes)}${lines.filter(Boolean).map(l => `<span>${l}</span>`).join("")}</div>`;
  const agentOnline = c.gateway.state === "online";
  const banner = v.disagreement
    ? `<p id="platform-disagreement" class="banner" data-disagreement="${esc(v.disagreement)}">${t("gb-" + v.disagreement)}</p>` : "";
  const deviceIds = new Set(gb.devices.map(d => d.id));
  const waiting = gb.listed.filter(code => !deviceIds.has(code));
  return `<section id="platform" class="${v.disagreement ? "flagged" : ""}" data-in-force="${esc(v.in_force)}">
    <h3>${t("gb-platform")} <a class="note" href="/console/platform${keep()}" data-nav>${t("gb-to-platform")}</a></h3>
    ${banner}
    <div class="views">
      ${view("agent", agentOnline ? v.agent : null, [
        agentOnline ? fill(t("gb-agent-cameras"), camerasUp, c.expected_cameras) : `${t("gateway")}: ${t(c.gateway.state)}`])}
      ${view("platform", v.platform, [
        fill(t("gb-platform-cameras"), v.platform_cameras_on, v.platform_cameras_known),
        v.platform_unseen ? `<span class="warning">${fill(t("gb-unseen"), v.platform_unseen)}</span>` : ""])}
    </div>
    <p class="note" id="platform-in-force">${t("gb-in-force-" + v.in_force)}
      ${t("gb-listed")}: ${gb.listed.map(code => `<code>${esc(code)}</code>`).join(" ")}</p>
    <table id="gb-devices"><thead><tr><th>${t("gb-code")}</th><th>${t("state")}</th><th>${t("reason")}</th><th>${t("gb-address")}</th>
      <th>${t("gb-keepalive")}</th><th>${t("gb-expires")}</th><th>${t("gb-channels")}</th></tr></thead>
    <tbody>${gb.devices.map(d => gbDeviceRow(d, channels.get(d.id), c.id)).join("")}
      ${waiting.map(code => `<tr data-gb-code="${esc(code)}" data-state="never"><td><b>${esc(code)}</b></td>
        <td colspan="6" class="note">${t("gb-never-registered")}</td></tr>`).join("")}</tbody></table>
  </section>`;
}

/** A device's row, and its channels below it when open (`channels`: null if they could
 *  not be loaded). Only the channels that count for `campus` are listed: a cascade
 *  platform lists those of many campuses. */
function gbDeviceRow(d, channels, campus) {
  const open = gbOpen.has(d.id);
  const row = `<tr data-gb-device="${esc(d.id)}" data-state="${esc(d.state)}">
    <td><b>${esc(d.id)}</b></td>
    <td>${stateCell(d.state)}<br><small>${when(d.since)}</small></td>
    ${optional(causeText(d, "–"))}
    <td data-label="${t("gb-address")}">${esc(d.address)} <small>${esc(d.transport.toUpperCase())}</small></td>
    <td data-label="${t("gb-keepalive")}">${when(d.last_keepalive)}</td>
    <td data-label="${t("gb-expires")}">${when(d.expires_at)}</td>
    <td data-label="${t("gb-channels")}">${d.catalog_at ? `${d.channels.on} / ${d.channels.total}` : `<small>${t("gb-no-catalog")}</small>`}
      ${d.channels.total ? `<button type="button" class="toggle" data-gb-channels="${esc(d.id)}" aria-expanded="${open}">${t(open ? "gb-hide-channels" : "gb-show-channels")}</button>` : ""}</td></tr>`;
  if (!open) return row;
  const mine = (channels || []).filter(ch => campus == null || ch.campus === campus);
  return row + `<tr class="gb-channels" data-gb-channels-of="${esc(d.id)}"><td colspan="7">
    ${channels == null ? `<p class="error">${t("failed")}</p>` : gbChannelTable(mine)}</td></tr>`;
}

function gbChannelTable(list) {
  const shown = list.slice(0, CHANNELS_SHOWN);
  return `${list.length > CHANNELS_SHOWN ? `<p class="warning">${fill(t("gb-more-channels"), CHANNELS_SHOWN, list.length)}</p>` : ""}
    <table><thead><tr><th>${t("gb-channel")}</th><th>${t("gb-kind")}</th><th>${t("gb-status")}</th><th>${t("since-time")}</th></tr></thead>
    <tbody>${shown.length ? shown.map(ch => `<tr data-gb-channel="${esc(ch.id)}" data-status="${esc(ch.status)}">
      <td>${esc(ch.name || ch.id)}<br><small>${esc(ch.id)}</small></td><td>${t("gb-kind-" + ch.kind)}</td>
      <td>${stateCell(ch.status)}</td><td>${when(ch.since)}</td></tr>`).join("")
      : `<tr><td colspan="4">${t("none")}</td></tr>`}</tbody></table>`;
}

// A device's channel list opens and closes in place (the page loads again with it).
document.addEventListener("click", ev => {
  const b = ev.target.closest("button[data-gb-channels]");
  if (!b) return;
  const id = b.dataset.gbChannels;
  if (gbOpen.has(id)) gbOpen.delete(id); else gbOpen.add(id);
  render();
});

/** The campus's transitions since `since` (ms), newest first, read page by page. */
async function campusEvents(campus, since) {
  const seen = new Set(), all = [];
  for (let p = 0; p < EVENTS_PAGES; p++) {
    const q = `campus=${encodeURIComponent(campus)}&since=${encodeURIComponent(new Date(since).toISOString())}&limit=${EVENTS_PAGE}&offset=${p * EVENTS_PAGE}`;
    const page = (await api("/api/v1/events?" + q)).events;
    // A transition stored between two pages shifts the rest by one: skip the repeat.
    for (const e of page) if (!seen.has(e.id)) { seen.add(e.id); all.push(e); }
    if (page.length < EVENTS_PAGE) break;
  }
  return all;
}

/** The kinds of link the video platform hears, not the agent. */
const GB_KINDS = ["gb_device", "gb_channel", "gb_alarm"];

/** The text of HTML made by this console (a cause with its hover), for an SVG title. */
function stripTags(html) {
  const el = document.createElement("div");
  el.innerHTML = html;
  return el.textContent;
}

function stateCell(state) { return `<span class="st st-${esc(state)}">${t(state)}</span>`; }

function num(v) { return Number.isInteger(v) ? String(v) : String(+v.toFixed(2)); }

/** Milliseconds: a tenth is enough below 100, whole ones above. */
function ms(v) { return (v >= 100 ? String(Math.round(v)) : String(+v.toFixed(1))) + " ms"; }

function percent(v) { return v == null ? "–" : v.toFixed(1) + "%"; }

function drawGateway(g, c) {
  const flagged = g.state !== "online";
  // Never seen: out of coverage since it was registered, never since before that.
  const never = g.state === "never_seen" && c && c.registered_at
    ? fill(t("since-registered-for"), dayOf(c.registered_at), span(Date.now() - Date.parse(c.registered_at))) : "";
  const h = g.health;
  const facts = [
    ["state", stateCell(g.state)],
    ["since-time", when(g.since)],
    ["reason", causeText(g, "–")],
    ["last-heartbeat", when(g.last_heartbeat)],
    ["agent-version", esc(g.agent_version || "–")],
    ["first-seen", when(g.first_seen)],
  ];
  const health = h ? [
    ["cpu", percent(h.cpu_pct)], ["memory", percent(h.mem_used_pct)],
    ["disk", percent(h.disk_used_pct)], ["uptime", span(h.uptime_s * 1000)],
  ] : [];
  return `<section id="gateway" class="${flagged ? "flagged" : ""}" data-state="${esc(g.state)}">
    <h3>${t("gateway")}</h3>
    ${flagged ? `<p class="flag">${t(g.state)}${never ? (lang === "zh" ? `（${esc(never)}）` : ` (${esc(never)})`) : ""} · ${t("gateway-flag")}</p>` : ""}
    <dl class="facts">${facts.map(([k, v]) => `<div data-fact="${k}"><dt>${t(k)}</dt><dd>${v}</dd></div>`).join("")}</dl>
    ${health.length ? `<h4>${t("host-health")}</h4>
    <dl class="facts" id="health">${health.map(([k, v]) => `<div data-fact="${k}"><dt>${t(k)}</dt><dd>${v}</dd></div>`).join("")}</dl>` : ""}
  </section>`;
}

/** A device's last measurements in words, with units for the names the agent uses. */
function measurements(m) {
  const left = Object.assign({}, m);
  const out = [];
  const take = (name, text) => { out.push(`<span data-m="${esc(name)}">${t("m-" + name)} ${text}</span>`); };
  if (left.width != null && left.height != null) {
    take("resolution", `${num(left.width)}×${num(left.height)}`);
    delete left.width; delete left.height;
  }
  const units = {
    latency_ms: ms, first_keyframe_ms: ms,
    frame_rate: v => num(v) + " fps",
    bitrate_kbps: v => v >= 1000 ? (v / 1000).toFixed(1) + " Mbit/s" : num(v) + " kbit/s",
    http_status: num, sip_status: num, clock_drift_s: v => num(v) + " s",
    since_last_poll_s: v => num(v) + " s", bytes: v => v >= 1024 ? (v / 1024).toFixed(1) + " KiB" : num(v) + " B",
    frames: num, keyframes: num,
  };
  for (const [name, v] of Object.entries(left)) {
    if (units[name]) take(name, units[name](v));
    else out.push(`<span data-m="${esc(name)}">${esc(name)} ${num(v)}</span>`);
  }
  return out.join("<br>") || "–";
}

function identity(info) {
  if (!info) return "–";
  const head = [info.manufacturer, info.model].filter(Boolean).map(esc).join(" ");
  const rest = [["firmware", info.firmware], ["serial", info.serial], ["hardware", info.hardware]]
    .filter(([, v]) => v).map(([k, v]) => `${t(k)} ${esc(v)}`);
  return [head].concat(rest).filter(Boolean).join("<br>");
}

/** A cell that may hold nothing ("–"): so marked, a phone leaves it out of the card. */
function optional(html, cls) {
  const classes = [cls, html === "–" ? "none" : ""].filter(Boolean).join(" ");
  return `<td${classes ? ` class="${classes}"` : ""}>${html}</td>`;
}

function drawDevices(list) {
  return `<section id="devices"><h3>${t("devices")}</h3><table>
    <thead><tr><th>${t("device")}</th><th>${t("state")}</th><th>${t("since-time")}</th><th>${t("reason")}</th><th>${t("measurements")}</th><th>${t("identity")}</th></tr></thead>
    <tbody>${list.length ? list.map(d => `<tr data-device="${esc(d.id)}" data-state="${esc(d.state)}">
      <td><b>${esc(d.id)}</b> ${t("kind-" + d.kind)}${d.required ? ` <small>${t("required")}</small>` : ""}
        ${d.probe ? `<br><small>${esc(d.probe)} ${esc(d.target)}</small>` : ""}</td>
      <td>${stateCell(d.state)}${d.state !== d.reported_state ? `<br><small>${t("last-reported")}: ${t(d.reported_state)}</small>` : ""}</td>
      ${optional(when(d.since))}
      ${optional(causeText(d, "–"))}
      ${optional(measurements(d.measurements || {}), "measurements")}
      ${optional(identity(d.info))}</tr>`).join("")
    : `<tr><td colspan="6">${t("none")}</td></tr>`}</tbody></table></section>`;
}

function drawCampusAlerts(alerts) {
  const rows = alerts.slice().sort((x, y) => (x.since < y.since ? 1 : x.since > y.since ? -1 : 0));
  return `<section id="campus-alerts"><h3>${t("campus-alerts")}</h3><table>
    <tbody>${rows.length ? rows.map(a => `<tr data-alert="${a.id}">
      <td class="${esc(a.severity)}">${t("sev-" + a.severity)}${a.flapping ? ` <small>${t("flaps")}</small>` : ""}</td>
      <td>${t("kind-" + a.kind)}${a.device ? " " + esc(a.device) : ""}</td>
      <td>${t("alert-" + a.state)}${a.acknowledged ? ` · ${t("acked")} ${esc(a.acknowledged.by)}` : ""}</td>
      <td>${when(a.since)}<br><small>${t("for-time")} ${span(Date.now() - Date.parse(a.since))}</small></td>
      <td>${causeText(a)}</td></tr>`).join("")
    : `<tr><td>${t("none")}</td></tr>`}</tbody></table></section>`;
}

// ---- timeline ----------------------------------------------------------------------------

/** A link's states over [start, end) as [from, to, state] stretches: before its first
 *  transition in the window it was in that transition's `from` state; with none, in
 *  `current` the whole time. */
function stretches(rows, current, start, end) {
  const out = [];
  let at = start, state = rows.length ? rows[0].from : current;
  for (const r of rows) {
    const t1 = Math.min(Math.max(Date.parse(r.at), start), end);
    if (t1 > at) out.push([at, t1, state]);
    at = Math.max(at, t1);
    state = r.to;
  }
  if (end > at) out.push([at, end, state]);
  return out;
}

function stateAt(list, t) {
  const s = list.find(([a, b]) => a <= t && t < b);
  return s ? s[2] : null;
}

/** What users saw of a device: `unknown` while its gateway was not online. */
function asSeen(device, gateway) {
  const cuts = [...new Set(device.concat(gateway).flatMap(([a, b]) => [a, b]))].sort((x, y) => x - y);
  const out = [];
  for (let i = 0; i + 1 < cuts.length; i++) {
    const [a, b] = [cuts[i], cuts[i + 1]];
    const d = stateAt(device, a);
    if (d == null) continue;
    const state = stateAt(gateway, a) === "online" ? d : "unknown";
    const last = out[out.length - 1];
    if (last && last[1] === a && last[2] === state) last[1] = b; else out.push([a, b, state]);
  }
  return out;
}

function drawTimeline(c, events, now) {
  const start = now - TIMELINE_MS;
  const asc = events.slice().reverse();
  const gwRows = asc.filter(e => e.device == null && e.kind === "gateway");
  // Nothing is known of a gateway's devices before the server first saw it.
  const known = c.gateway.first_seen ? Math.max(start, Math.min(Date.parse(c.gateway.first_seen),
    ...asc.filter(e => e.device != null && !GB_KINDS.includes(e.kind)).map(e => Date.parse(e.at)))) : start;
  const gateway = stretches(gwRows, c.gateway.state, start, now);
  const bands = [];
  if (gwRows.length) bands.push({ link: "gateway", label: t("gateway"), parts: gateway });
  const ids = c.device_list.map(d => d.id);
  for (const e of asc) if (e.device != null && e.kind !== "gb_alarm" && !ids.includes(e.device)) ids.push(e.device);
  const gbDevices = c.gb28181 ? c.gb28181.devices : [];
  for (const id of ids) {
    const d = c.device_list.find(x => x.id === id);
    const rows = asc.filter(e => e.device === id && e.kind !== "gb_alarm");
    const g = gbDevices.find(x => x.id === id);
    const current = d ? d.reported_state : g ? g.state : rows.length ? rows[rows.length - 1].to : "unknown";
    // The platform hears GB/T 28181 devices itself: what the agent's gateway did does
    // not hide them. Their 20-digit codes are cut to the end that tells them apart.
    const gbBand = g || (rows.length && GB_KINDS.includes(rows[0].kind));
    // Nothing is known of one before the platform first heard of it.
    const from = !gbBand ? known : rows.length && rows[0].from === "unknown" ? Math.max(start, Date.parse(rows[0].at)) : start;
    bands.push({
      link: id, label: gbBand ? "…" + id.slice(-8) : id, title: id,
      parts: gbBand ? stretches(rows, current, from, now) : asSeen(stretches(rows, current, known, now), gateway),
    });
  }
  // Alarms from the platform: a mark each, on a band of their own.
  const alarms = asc.filter(e => e.kind === "gb_alarm");
  if (alarms.length) bands.push({ link: "gb-alarms", label: t("kind-gb_alarm"), parts: [], marks: alarms });
  const W = 1000, L = 130, R = 10, BAND = 18, GAP = 8, TOP = 6;
  const H = TOP + bands.length * (BAND + GAP) + 22;
  const x = ms => L + (ms - start) / (now - start) * (W - L - R);
  const ticks = [];
  // Midnights of the server's zone, labelled with their day.
  for (let day = nextMidnight(start); day < now; day = nextMidnight(day)) ticks.push(day);
  const fmtDay = ms => dayOf(ms).slice(5);
  const svg = `<svg id="timeline-chart" viewBox="0 0 ${W} ${H}" width="100%" role="img" aria-label="${t("timeline")}">
    ${ticks.map(ms => `<line class="tick" x1="${x(ms).toFixed(1)}" x2="${x(ms).toFixed(1)}" y1="${TOP - 4}" y2="${H - 20}"/>
      <text class="axis" x="${x(ms).toFixed(1)}" y="${H - 6}" text-anchor="middle">${fmtDay(ms)}</text>`).join("")}
    ${bands.map((b, i) => {
      const y = TOP + i * (BAND + GAP);
      return `<g data-band="${esc(b.link)}"><text class="label" x="${L - 8}" y="${y + BAND - 5}" text-anchor="end">${esc(b.label)}${b.title ? `<title>${esc(b.title)}</title>` : ""}</text>
        <rect class="band-bg" x="${L}" y="${y}" width="${W - L - R}" height="${BAND}"/>
        ${b.parts.map(([a, z, s]) => `<rect class="st-${esc(s)}" data-state="${esc(s)}" x="${x(a).toFixed(2)}" y="${y}" width="${Math.max(x(z) - x(a), 0.5).toFixed(2)}" height="${BAND}"><title>${esc(b.label)}: ${t(s)} · ${when(a)} – ${when(z)}</title></rect>`).join("")}
        ${(b.marks || []).map(e => `<rect class="st-down mark" data-mark="${e.id}" x="${(x(Date.parse(e.at)) - 1.5).toFixed(2)}" y="${y}" width="3" height="${BAND}"><title>${when(e.at)} ${esc(e.device || "")}: ${esc(stripTags(causeText(e, "")))}</title></rect>`).join("")}</g>`;
    }).join("")}
  </svg>`;
  // Gateway and device states that share a colour share a swatch.
  const legend = [["online", "up"], ["stale", "degraded"], ["offline", "down"], ["unknown"], ["never_seen"]]
    .map(group => `<span><i class="swatch st-${group[0]}"></i>${group.map(t).join(" / ")}</span>`).join("");
  const shown = events.slice(0, LIST_MAX);
  const chosen = new URLSearchParams(location.search).get("span") || "7d";
  const spans = Object.keys(SPANS).sort((a, b) => SPANS[a] - SPANS[b]).map(k => `<a href="/console/campus/${encodeURIComponent(c.id)}${keep(k === "7d" ? {} : { span: k })}" data-nav data-span="${k}"${k === chosen ? ' class="here"' : ""}>${t("span-" + k)}</a>`).join(" ");
  return `<section id="timeline"><h3>${t("timeline")}</h3><p class="filters" id="timeline-spans">${spans}</p>
    ${svg}
    <div class="legend">${legend}<span><i class="swatch band-bg"></i>${t("no-data")}</span></div>
    <h4>${t("transitions")}</h4>
    ${events.length > LIST_MAX ? `<p class="warning">${t("more-transitions")} ${events.length}</p>` : ""}
    <table><thead><tr><th>${t("time")}</th><th>${t("device")}</th><th>${t("change")}</th><th>${t("reason")}</th><th>${t("measurements")}</th></tr></thead>
    <tbody id="transitions">${shown.length ? shown.map(e => `<tr data-event="${e.id}" data-link="${esc(e.device || "gateway")}">
      <td>${when(e.at)}</td>
      <td>${e.device ? `${esc(e.device)} ${t("kind-" + e.kind)}` : t("gateway")}</td>
      <td>${e.kind === "gb_alarm" ? `<span class="st st-down">${t("gb-alarm-change")}</span>` : `${stateCell(e.from)} → ${stateCell(e.to)}`}</td>
      <td>${causeText(e, "–")}</td>
      <td class="measurements">${measurements(e.measurements || {})}</td></tr>`).join("")
    : `<tr><td colspan="5">${t("none")}</td></tr>`}</tbody></table></section>`;
}

page("campus", {
  nav: null,
  render: renderCampus,
  events: ["transition", "alert", "gb_device"],
  // Only changes of this campus redraw it: its own, and its GB/T 28181 devices'.
  concerns: (change, campus) => change.kind === "gb_device"
    ? campusGbCodes.has(change.data && change.data.id)
    : !change.campus || change.campus === campus,
});
