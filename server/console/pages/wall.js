// The wallboard (`/console/wall`): for a video wall in a command centre. Full screen,
// large type, no controls: the headline rates, the map, the worst regions and the newest
// critical alerts, turning between the user's area and each region below it. It keeps
// showing its last figures while the server is away (saying how old they are, dimmed)
// and carries on by itself when the server is back.
"use strict";

texts({
  "zh": {
    "wall": "大屏", "wall-critical": "最新严重报警", "wall-age": "数据时间 %1（%2前）",
    "wall-lost": "与服务器的连接中断，显示的是 %1 的数据", "seconds": "%1秒",
  },
  "en": {
    "wall": "Wallboard", "wall-critical": "Newest critical alerts", "wall-age": "Figures as of %1 (%2 ago)",
    "wall-lost": "Server not reachable: figures of %1", "seconds": "%1 s",
  },
});

/** How long each region stays on the wall (`?turn=` seconds, 1 to 3600; 30 by default),
 *  and how often its figures are read again. */
const WALL_TURN_MS = (() => {
  const s = Number(params.get("turn"));
  return Number.isFinite(s) && s >= 1 && s <= 3600 ? Math.round(s * 1000) : 30000;
})();
const WALL_RELOAD_MS = 10000;

/** The wall's state: the regions it turns between, which one is on, its last figures. */
const wall = { regions: null, at: 0, last: null, lostSince: null, timers: false };

async function loadWall() {
  startWallTimers();
  try {
    if (!wall.regions) {
      const top = await api("/api/v1/coverage");
      const below = top.children.filter(c => c.level !== "campus" && c.registered > 0);
      // The user's area, then each region below it (a province's cities, say).
      wall.regions = [""].concat(below.length > 1 ? below.map(c => c.code) : []);
    }
    const region = wall.regions[wall.at % wall.regions.length];
    const r = region ? "region=" + encodeURIComponent(region) : "";
    const and = r ? "&" + r : "";
    const c = await api("/api/v1/coverage" + (r ? "?" + r : ""));
    const level = c.region && c.region.level === "county" ? null : "county";
    const [ranked, alerts] = await Promise.all([
      level ? api(`/api/v1/coverage?level=${level}${and}`) : Promise.resolve({ children: [] }),
      api(`/api/v1/alerts?state=open&severity=critical&limit=8${and}`),
    ]);
    const province = shownProvince(c);
    const tiles = province ? await provinceTiles(province) : null;
    wall.last = { c, ranked: ranked.children, alerts: alerts.alerts.slice(0, 8), tiles, loadedAt: Date.now() };
    wall.lostSince = null;
  } catch (e) {
    if (e.message === "unauthorized") throw e;
    // The server is away: keep showing what was last read, and say so.
    if (!wall.last) throw e;
    wall.lostSince = wall.lostSince || Date.now();
  }
  return wall.last;
}

/** Turns to the next region, and reads the figures again, on their own clocks. */
function startWallTimers() {
  if (wall.timers) return;
  wall.timers = true;
  setInterval(() => { if (current.name === "wall") { wall.at++; render(); } }, WALL_TURN_MS);
  setInterval(() => { if (current.name === "wall") render(); }, WALL_RELOAD_MS);
  setInterval(() => {
    const el = document.getElementById("wall-age");
    if (el && wall.last) el.textContent = wallAge();
  }, 1000);
}

function wallAge() {
  const at = when(wall.last.c.at);
  if (wall.lostSince) return fill(t("wall-lost"), at);
  const s = Math.max(0, Math.round((Date.now() - wall.last.loadedAt) / 1000));
  return fill(t("wall-age"), at, fill(t("seconds"), s));
}

function drawWall(d) {
  const c = d.c;
  const totals = FIGURES.map(([k, n, r]) => `<div class="total ${step(c[r])}" data-figure="${k}"><span>${t(k)}</span><b>${pct(c[r])}</b><small>${c[n]} / ${c.registered}</small></div>`);
  const worst = d.ranked.filter(r => r.registered > r.fully_networked)
    .sort((a, b) => (b.registered - b.fully_networked) - (a.registered - a.fully_networked)).slice(0, 8);
  return `<section id="wall" class="${wall.lostSince ? "lost" : ""}" data-region="${c.region ? esc(c.region.code) : ""}">
    <div class="wall-head"><h2 id="wall-area">${c.region ? esc(rname(c.region.code, c.region.name)) : t("all")}</h2>
      <span id="wall-age">${wallAge()}</span></div>
    <div id="totals" class="totals">${totals.join("")}</div>
    <div class="wall-body">
      ${drawMap(d.tiles, d.ranked, c.region, false)}
      <div class="wall-lists">
        <h3>${t("worst-regions")}</h3>
        <ol class="ranked" id="wall-worst">${worst.length ? worst.map(r => `<li><span>${esc(rname(r.code, r.name))}</span><small>${r.parent ? esc(rname(r.parent.code, r.parent.name)) : ""}</small><span class="missing">${r.registered - r.fully_networked} / ${r.registered}</span><span class="chip ${step(r.fully_networked_rate)}">${pct(r.fully_networked_rate)}</span></li>`).join("") : `<li>${t("no-worst")}</li>`}</ol>
        <h3>${t("wall-critical")}</h3>
        <ol class="ranked" id="wall-alerts">${d.alerts.length ? d.alerts.map(a => `<li><span>${esc(a.campus_name || a.campus)}</span><small>${esc(regionLabel(a))}</small><span class="critical">${t("kind-" + a.kind)}</span><small>${span(Date.now() - Date.parse(a.since))}</small></li>`).join("") : `<li>${t("none")}</li>`}</ol>
      </div>
    </div>
  </section>`;
}

page("wall", { load: loadWall, draw: drawWall, events: [] });
