// The video platform (GB/T 28181): the campuses whose agent and platform disagree about
// their video, worst first (/console/platform), and the devices registered to the server
// as a platform, offline first, with those no campus lists set apart for review
// (/console/platform?tab=devices).
"use strict";

texts({
  "zh": {
    "platform": "视频平台", "pf-disagreements-tab": "视角不一致的校园", "pf-devices-tab": "国标设备",
    "pf-uplink_broken": "上联或平台注册故障", "pf-agent_blind": "监测程序看不到摄像机",
    "pf-uplink_broken-long": "摄像机在校内正常，但平台上离线", "pf-agent_blind-long": "平台上在线，但监测程序看不到",
    "pf-kind": "不一致", "pf-agent-up": "校内摄像机正常 / 应接入", "pf-platform-on": "平台通道在线 / 已知",
    "pf-in-force": "以谁为准", "pf-view-agent": "监测程序", "pf-view-platform": "视频平台",
    "pf-none": "两种视角一致：没有需要处理的校园",
    "pf-intro": "两种视角都能听到的在册校园中（网关在线，名册列有国标编码），一方认为视频已联网、另一方认为未联网的校园。",
    "pf-all": "全部设备", "pf-review": "待核对", "pf-offline": "离线设备",
    "pf-review-why": "不在任何校园的名册中：请在名册中填写其国标编码，或核对设备的编码",
    "pf-code": "国标编码", "pf-campus": "校园", "pf-address": "地址", "pf-keepalive": "最近保活",
    "pf-channels": "通道（在线/总数）", "pf-devices-n": "%1 台设备，其中 %2 台离线", "pf-no-devices": "没有设备",
  },
  "en": {
    "platform": "Video platform", "pf-disagreements-tab": "Campuses whose views disagree",
    "pf-devices-tab": "GB/T 28181 devices",
    "pf-uplink_broken": "uplink or registration broken", "pf-agent_blind": "agent blind",
    "pf-uplink_broken-long": "cameras up on campus, not on the platform",
    "pf-agent_blind-long": "up on the platform, not seen by the agent",
    "pf-kind": "Disagreement", "pf-agent-up": "Cameras up on campus / expected",
    "pf-platform-on": "Channels ON on the platform / known", "pf-in-force": "In force",
    "pf-view-agent": "agent", "pf-view-platform": "platform",
    "pf-none": "Both views agree: no campus to look at",
    "pf-intro": "Registered campuses both views can hear (gateway online, GB/T 28181 codes in the registry) whose video one view says is networked and the other not.",
    "pf-all": "All devices", "pf-review": "For review", "pf-offline": "Offline",
    "pf-review-why": "No campus lists it: add its code to the registry, or check the device's code",
    "pf-code": "GB/T 28181 code", "pf-campus": "Campus", "pf-address": "Address",
    "pf-keepalive": "Last keepalive", "pf-channels": "Channels (ON/total)",
    "pf-devices-n": "%1 devices, %2 offline", "pf-no-devices": "No devices",
  },
});

/** The page's choices, from its address (each view is a link): the tab, and the
 *  devices' filter (`all`, `review`: no campus lists them, `offline`). */
function platformView() {
  const q = new URLSearchParams(location.search);
  return {
    tab: q.get("tab") === "devices" ? "devices" : "disagreements",
    filter: ["review", "offline"].includes(q.get("filter")) ? q.get("filter") : "all",
    region: q.get("region") || "",
  };
}

async function loadPlatform() {
  const v = platformView();
  const q = new URLSearchParams(v.region ? { region: v.region } : {});
  if (v.tab === "devices") {
    if (v.filter === "review") q.set("mapped", "false");
    if (v.filter === "offline") q.set("state", "offline");
    const devices = (await api("/api/v1/gb28181/devices" + (q.toString() ? "?" + q : ""))).devices;
    return { devices, channels: await gbChannelLists(devices) };
  }
  return { disagreements: (await api("/api/v1/coverage/disagreements" + (q.toString() ? "?" + q : ""))).campuses };
}

/** How bad a disagreement is, to sort by: a broken uplink first (where the platform's
 *  view is in force, the campus counts as not networked), then by how far apart the
 *  two views are. */
function disagreementRank(x) {
  const gap = Math.abs(x.agent_cameras_up - x.views.platform_cameras_on);
  return (x.disagreement === "uplink_broken" ? 1e6 : 0) + gap;
}

function drawDisagreements(list) {
  const n = { uplink_broken: 0, agent_blind: 0 };
  for (const x of list) n[x.disagreement]++;
  const columns = [
    { key: "kind", label: t("pf-kind"), value: disagreementRank, cell: x => `<td class="${x.disagreement === "uplink_broken" ? "critical" : "warning"}">${t("pf-" + x.disagreement)}<br><small>${t("pf-" + x.disagreement + "-long")}</small></td>` },
    { key: "campus", label: t("campus"), value: x => x.name, cell: x => `<td><a href="/console/campus/${encodeURIComponent(x.campus)}${keep()}" data-nav>${esc(x.name)}</a><br><small>${esc(x.campus)}</small></td>` },
    { key: "region", label: t("region"), value: x => x.region, cell: x => `<td class="place">${esc(rname(x.region))}</td>` },
    { key: "school-type", label: t("school-type"), value: x => x.school_type, cell: x => `<td>${t(x.school_type)}</td>` },
    { key: "agent", label: t("pf-agent-up"), value: x => x.agent_cameras_up, cell: x => `<td data-label="${t("pf-agent-up")}">${x.agent_cameras_up} / ${x.cameras_expected}</td>` },
    { key: "platform", label: t("pf-platform-on"), value: x => x.views.platform_cameras_on, cell: x => `<td data-label="${t("pf-platform-on")}">${x.views.platform_cameras_on} / ${x.views.platform_cameras_known}</td>` },
    { key: "in-force", label: t("pf-in-force"), value: x => x.views.in_force, cell: x => `<td data-label="${t("pf-in-force")}">${t("pf-view-" + x.views.in_force)}</td>` },
  ];
  return `<div id="disagreements">
    <p class="note">${t("pf-intro")}</p>
    <div class="counts" id="disagreement-counts">
      <span class="count critical" data-count="uplink_broken"><b>${n.uplink_broken}</b> ${t("pf-uplink_broken")}</span>
      <span class="count warning" data-count="agent_blind"><b>${n.agent_blind}</b> ${t("pf-agent_blind")}</span>
    </div>
    ${list.length ? sortable("disagreement-rows", columns, list, { key: "kind", desc: true }, x => `data-campus="${esc(x.campus)}" data-disagreement="${esc(x.disagreement)}"`)
      : `<p id="disagreement-none" class="ok">${t("pf-none")}</p>`}
  </div>`;
}

function drawPlatformDevices(devices, channels) {
  const offline = devices.filter(d => d.state === "offline").length;
  const columns = [
    { key: "state", label: t("state"), value: d => (d.state === "offline" ? 0 : 1) + (d.campus ? 0 : 0.5), cell: d => `<td>${stateCell(d.state)}<br><small>${when(d.since)}</small></td>` },
    { key: "code", label: t("pf-code"), value: d => d.id, cell: d => `<td><b>${esc(d.id)}</b></td>` },
    { key: "campus", label: t("pf-campus"), value: d => d.campus_name || "", cell: d => d.campus
      ? `<td><a href="/console/campus/${encodeURIComponent(d.campus)}${keep()}" data-nav>${esc(d.campus_name || d.campus)}</a></td>`
      : `<td><span class="tag review">${t("pf-review")}</span><br><small>${t("pf-review-why")}</small></td>` },
    { key: "region", label: t("region"), value: d => d.region || "", cell: d => `<td class="place">${d.region ? esc(rname(d.region)) : "–"}</td>` },
    { key: "cause", label: t("cause"), value: d => d.cause || "", cell: d => `<td${d.cause ? "" : ' class="none"'}>${causeText(d, "–")}</td>` },
    { key: "address", label: t("pf-address"), value: d => d.address, cell: d => `<td data-label="${t("pf-address")}">${esc(d.address)} <small>${esc(d.transport.toUpperCase())}</small></td>` },
    { key: "keepalive", label: t("pf-keepalive"), value: d => d.last_keepalive || "", cell: d => `<td data-label="${t("pf-keepalive")}">${when(d.last_keepalive)}</td>` },
    { key: "channels", label: t("pf-channels"), value: d => d.channels.total, cell: d => {
      const open = gbOpen.has(d.id);
      return `<td data-label="${t("pf-channels")}">${d.channels.on} / ${d.channels.total}${d.channels.total ? ` <button type="button" class="toggle" data-gb-channels="${esc(d.id)}" aria-expanded="${open}">${t(open ? "gb-hide-channels" : "gb-show-channels")}</button>` : ""}</td>`;
    } },
  ];
  const filter = platformView().filter;
  const filters = ["all", "review", "offline"].map(f => `<button type="button" data-pf-filter="${f}"${filter === f ? ' class="here" aria-pressed="true"' : ""}>${t("pf-" + f)}</button>`).join("");
  const open = devices.filter(d => gbOpen.has(d.id));
  return `<div id="platform-devices">
    <div class="filters" id="device-filters" role="group">${filters}</div>
    <p class="note" id="devices-count">${fill(t("pf-devices-n"), devices.length, offline)}</p>
    ${devices.length ? sortable("gb-device-rows", columns, devices, { key: "state", desc: false }, d => `data-gb-device="${esc(d.id)}" data-state="${esc(d.state)}"${d.campus ? "" : ' data-review="1"'}`)
      : `<p>${t("pf-no-devices")}</p>`}
    ${open.map(d => `<div class="gb-channels" data-gb-channels-of="${esc(d.id)}"><h4>${esc(d.id)}${d.campus_name ? " · " + esc(d.campus_name) : ""}</h4>
      ${channels.get(d.id) == null ? `<p class="error">${t("failed")}</p>` : gbChannelTable(channels.get(d.id))}</div>`).join("")}
  </div>`;
}

function drawPlatformPage(d) {
  const v = platformView();
  const tabs = `<nav class="tabs" id="platform-tabs">${["disagreements", "devices"].map(k => `<button type="button" data-pf-tab="${k}"${v.tab === k ? ' class="here" aria-pressed="true"' : ""}>${t("pf-" + k + "-tab")}</button>`).join("")}</nav>`;
  return `<section id="platform-page" data-tab="${v.tab}">
    <h2>${t("platform")}${v.region ? " · " + esc(rname(v.region)) : ""}</h2>
    ${tabs}
    ${d.devices ? drawPlatformDevices(d.devices, d.channels) : drawDisagreements(d.disagreements)}
  </section>`;
}

/** The tab and the filter go in the address. */
function wirePlatform(main) {
  const to = (tab, filter) => {
    const q = { tab };
    if (filter !== "all") q.filter = filter;
    const region = platformView().region;
    if (region) q.region = region;
    go("/console/platform" + keep(q));
  };
  main.querySelectorAll("button[data-pf-tab]").forEach(b => b.onclick = () => to(b.dataset.pfTab, "all"));
  main.querySelectorAll("button[data-pf-filter]").forEach(b => b.onclick = () => to("devices", b.dataset.pfFilter));
}

page("platform", {
  nav: "platform", load: loadPlatform, draw: drawPlatformPage, wire: wirePlatform,
  events: ["transition", "alert", "gb_device", "registry"],
});
