// Registry: how many campuses are registered, per region and school type, and which
// ones (a paged list); the campuses that report without being registered, to review;
// for administrators, the CSV import (all or nothing, every bad line shown) and the
// current registry as CSV.
"use strict";

texts({
  "zh": {
    "registry": "校园名册", "reg-search": "按名称或编号查找", "reg-search-go": "查找", "reg-size": "名册规模", "reg-by-region": "按地区",
    "reg-list": "名册内校园", "reg-id": "编号", "reg-expected-alarms": "应有报警设备",
    "reg-expected-cameras": "应有摄像机", "reg-gateway": "网关状态", "reg-prev": "上一页",
    "reg-next": "下一页", "reg-range": "第 %1–%2 所，共 %3 所", "reg-all-types": "全部类型",
    "unreg": "在上报但不在名册中的校园",
    "unreg-note": "这些校园的网关在上报，但不在名册中，因此不计入联网率。请逐一核实：属于应联网校园的，加入名册；否则停用其网关。",
    "unreg-more": "仅显示前 %1 所，共 %2 所。", "first-seen": "首次上报",
    "state-since": "状态开始", "last-heartbeat": "最后心跳", "import": "导入名册",
    "import-file": "CSV 文件", "import-mode": "方式",
    "mode-upsert": "追加或更新（保留文件中没有的校园）",
    "mode-replace": "整体替换（删除文件中没有的校园）", "import-go": "导入",
    "import-format": "文件格式", "column": "列", "meaning": "说明",
    "import-rules": "第一行为表头，列的顺序不限；文件用 UTF-8 编码（Excel 中另存为“CSV UTF-8”）；名称含逗号时用英文双引号括起；每所校园一行。",
    "all-or-nothing": "整个文件先校验：只要有一行有误，就不导入任何校园。",
    "col-id": "校园编号：1–64 个字母、数字或 - _ .，与网关配置中的编号一致",
    "col-name": "校园名称，最多 200 字", "col-region": "所在县级行政区划代码，如 150102",
    "col-school_type": "kindergarten、primary、secondary、other（或 幼儿园、小学、中学、其他）",
    "col-expected_alarms": "应有一键报警设备数，0–1024",
    "col-expected_cameras": "应有摄像机数，0–1024", "line": "行", "problem": "问题",
    "import-ok": "已导入 %1 所校园（%2）。名册现有 %3 所校园。", "done-upsert": "追加或更新",
    "done-replace": "整体替换",
    "import-refused": "文件有 %1 处错误，未导入任何校园。请改正以下各行后重新导入。",
    "import-failed": "导入失败", "import-choose": "请先选择文件", "import-busy": "正在导入……",
    "download-csv": "下载当前名册（CSV）",
    "reason-empty_file": "文件是空的；第一行应为表头 {expected}",
    "reason-no_header": "第一行应为表头；应有的列为 {expected}（顺序不限）",
    "reason-header_not_utf8": "表头第 {position} 列不是 UTF-8 编码；应有的列为 {expected}",
    "reason-duplicate_column": "表头中“{column}”列出现了两次",
    "reason-unnamed_column": "表头第 {position} 列没有列名；应有的列为 {expected}",
    "reason-unknown_column": "未知的列“{name}”；应有的列为 {expected}（顺序不限）",
    "reason-missing_columns": "缺少列 {columns}；应有的列为 {expected}（顺序不限）",
    "reason-unreadable": "无法读取文件（{detail}）",
    "reason-too_many_rows": "超过 {max} 行；请把名册分成几个文件",
    "reason-too_many_fields": "有 {fields} 个字段，但表头只有 {columns} 列（名称中含逗号时须用英文双引号括起）",
    "reason-too_few_fields": "只有 {fields} 个字段，但表头有 {columns} 列",
    "reason-duplicate_id": "校园编号 {id} 重复：第 {first_line} 行已使用",
    "reason-not_utf8": "不是 UTF-8 编码；请把文件存为 UTF-8（Excel 中另存为“CSV UTF-8”）",
    "reason-bad_id": "校园编号“{value}”不合规：应为 1–64 个字母、数字或 - _ .，且不以 . 开头",
    "reason-empty_name": "名称为空",
    "reason-name_too_long": "名称有 {chars} 个字，最多 {max} 个",
    "reason-name_control_character": "名称中含有换行等控制字符",
    "reason-bad_region": "行政区划代码“{value}”不是 6 位数字（如 150102）",
    "reason-not_county": "{value} 是{level}的代码；校园应登记在所在的县级行政区（区、县、旗或县级市），如 150102",
    "reason-unknown_school_type": "未知的学校类型“{value}”；请填 幼儿园、小学、中学、其他（或 kindergarten、primary、secondary、other）",
    "reason-bad_count": "应为 0 到 {max} 的整数，而不是“{value}”",
    "reason-more_errors": "自此行起还有 {count} 处错误，未逐一列出",
    "level-city": "地级市（盟）", "level-province": "省级行政区",
  },
  "en": {
    "registry": "Registry", "reg-search": "Find by name or id", "reg-search-go": "Find", "reg-size": "Registry size", "reg-by-region": "By region",
    "reg-list": "Registered campuses", "reg-id": "ID", "reg-expected-alarms": "Alarm devices expected",
    "reg-expected-cameras": "Cameras expected", "reg-gateway": "Gateway", "reg-prev": "Previous",
    "reg-next": "Next", "reg-range": "%1–%2 of %3", "reg-all-types": "All types",
    "unreg": "Reporting but not registered",
    "unreg-note": "Their gateways report but they are not in the registry, so they do not count in coverage. Check each one: add it to the registry if it should be networked, otherwise retire its gateway.",
    "unreg-more": "The first %1 of %2 are shown.", "first-seen": "First seen",
    "state-since": "State since", "last-heartbeat": "Last heartbeat", "import": "Import the registry",
    "import-file": "CSV file", "import-mode": "Mode",
    "mode-upsert": "Add and update (keep campuses not in the file)",
    "mode-replace": "Replace (remove campuses not in the file)", "import-go": "Import",
    "import-format": "File format", "column": "Column", "meaning": "Meaning",
    "import-rules": "The first row is the header (columns in any order); the file is UTF-8 (in Excel: save as “CSV UTF-8”); a name containing a comma goes in double quotes; one campus per row.",
    "all-or-nothing": "The whole file is checked first: if any line is wrong, nothing is imported.",
    "col-id": "Campus ID: 1 to 64 letters, digits or - _ . as in the gateway's configuration",
    "col-name": "Campus name, at most 200 characters", "col-region": "Code of its county-level division, such as 150102",
    "col-school_type": "kindergarten, primary, secondary or other (or 幼儿园, 小学, 中学, 其他)",
    "col-expected_alarms": "One-button alarm devices it should have, 0 to 1024",
    "col-expected_cameras": "Cameras it should have, 0 to 1024", "line": "Line", "problem": "Problem",
    "import-ok": "Imported %1 campuses (%2). The registry now holds %3 campuses.", "done-upsert": "added or updated",
    "done-replace": "the registry replaced",
    "import-refused": "The file has %1 error(s): nothing was imported. Correct these lines and import it again.",
    "import-failed": "Import failed", "import-choose": "Choose a file first", "import-busy": "Importing…",
    "download-csv": "Download the registry (CSV)",
    "reason-empty_file": "The file is empty; the first row must be the header {expected}",
    "reason-no_header": "The first row must be the header; the columns are {expected} (in any order)",
    "reason-header_not_utf8": "Header column {position} is not UTF-8; the columns are {expected}",
    "reason-duplicate_column": "Column “{column}” appears twice in the header",
    "reason-unnamed_column": "Header column {position} has no name; the columns are {expected}",
    "reason-unknown_column": "Unknown column “{name}”; the columns are {expected} (in any order)",
    "reason-missing_columns": "Missing column(s) {columns}; the columns are {expected} (in any order)",
    "reason-unreadable": "The file cannot be read ({detail})",
    "reason-too_many_rows": "More than {max} rows; split the registry into several files",
    "reason-too_many_fields": "{fields} fields but the header has {columns} columns (a name containing a comma must be in double quotes)",
    "reason-too_few_fields": "Only {fields} field(s) but the header has {columns} columns",
    "reason-duplicate_id": "Duplicate campus ID {id}: already used on line {first_line}",
    "reason-not_utf8": "Not UTF-8; save the file as UTF-8 (in Excel: “CSV UTF-8”)",
    "reason-bad_id": "Campus ID “{value}” must be 1 to 64 letters, digits or - _ . and not start with .",
    "reason-empty_name": "The name is empty",
    "reason-name_too_long": "The name has {chars} characters; at most {max} are allowed",
    "reason-name_control_character": "The name contains a control character such as a line break",
    "reason-bad_region": "Region code “{value}” is not six digits (such as 150102)",
    "reason-not_county": "{value} is the code of {level}; a campus is registered in its county-level division (district, county, banner or county-level city), such as 150102",
    "reason-unknown_school_type": "Unknown school type “{value}”; use kindergarten, primary, secondary or other (or 幼儿园, 小学, 中学, 其他)",
    "reason-bad_count": "Must be a whole number from 0 to {max}; “{value}” is not",
    "reason-more_errors": "And {count} more error(s) from this line on, not listed",
    "level-city": "a city (prefecture or league)", "level-province": "a province",
  },
});

/** The columns of a registry file, as `registry::COLUMNS` in server/src/registry.rs. */
const REGISTRY_COLUMNS = ["id", "name", "region", "school_type", "expected_alarms", "expected_cameras"];
/** Registered campuses per page of the list. */
const REGISTRY_PAGE = 50;
/** Unregistered campuses listed at most (they should be few: each one is to be reviewed). */
const UNREGISTERED_SHOWN = 200;

/** The outcome of the last import, shown until the next one (it survives live refreshes). */
let importResult = null;

async function renderRegistry(main) {
  const q = new URLSearchParams(location.search);
  const region = q.get("region") || "";
  const type = q.get("school_type") || "";
  const search = q.get("q") || "";
  const pageNo = Math.max(1, Math.floor(Number(q.get("page"))) || 1);
  const inRegion = region ? "&region=" + encodeURIComponent(region) : "";
  const [cov, listed, unreg] = await Promise.all([
    api("/api/v1/coverage" + (region ? "?region=" + encodeURIComponent(region) : "")),
    api(`/api/v1/campuses?registered=true${inRegion}${type ? "&school_type=" + type : ""}${search ? "&q=" + encodeURIComponent(search) : ""}&limit=${REGISTRY_PAGE}&offset=${(pageNo - 1) * REGISTRY_PAGE}`),
    api(`/api/v1/campuses?registered=false${inRegion}&limit=${UNREGISTERED_SHOWN}`),
  ]);
  // The import form is drawn once per visit (and language), not on every live refresh,
  // so that a file being chosen is not lost when a link somewhere changes state.
  const key = lang + "|" + canDo("admin");
  const shell = document.getElementById("registry-page");
  if (!shell || shell.dataset.key !== key) {
    main.innerHTML = `<div id="registry-page" data-key="${key}">
      <section id="registry-size"></section>
      ${canDo("admin") ? importSection() : ""}
      <section id="unregistered"></section>
      <section id="registered-list"></section>
    </div>`;
    const form = document.getElementById("import-form");
    if (form) form.onsubmit = ev => { ev.preventDefault(); importFile(form); };
  }
  document.getElementById("registry-size").innerHTML = drawSize(cov, type);
  document.getElementById("unregistered").innerHTML = drawUnregistered(unreg);
  document.getElementById("registered-list").innerHTML = drawRegistered(listed, q, pageNo, type);
  document.getElementById("reg-type").onchange = ev => {
    const next = { region, school_type: ev.target.value, q: search };
    go("/console/registry" + keep(Object.fromEntries(Object.entries(next).filter(([, v]) => v))));
  };
  document.getElementById("reg-search").onsubmit = ev => {
    ev.preventDefault();
    const next = { region, school_type: type, q: ev.target.elements.q.value.trim() };
    go("/console/registry" + keep(Object.fromEntries(Object.entries(next).filter(([, v]) => v))));
  };
  drawImportResult();
}

function registryHref(extra) {
  return "/console/registry" + keep(Object.fromEntries(Object.entries(extra).filter(([, v]) => v)));
}

function campusLink(id) {
  // The campus page, where the console has one.
  return PAGES.campus ? `<a href="/console/campus/${encodeURIComponent(id)}${keep()}" data-nav>${esc(id)}</a>` : esc(id);
}

function drawSize(c, type) {
  const crumbs = [`<a href="${registryHref({})}" data-nav>${t("all")}</a>`]
    .concat(c.path.map(r => `<a href="${registryHref({ region: r.code })}" data-nav>${esc(rname(r.code, r.name))}</a>`))
    .concat(c.region ? [`<span>${esc(rname(c.region.code, c.region.name))}</span>`] : []);
  const regions = c.children.filter(ch => ch.level !== "campus");
  const types = c.school_types.filter(s => s.registered > 0);
  return `<nav id="crumbs">${crumbs.join(" › ")}</nav>
    <h2>${t("reg-size")}: ${c.region ? esc(rname(c.region.code, c.region.name)) : t("all")}</h2>
    <div class="totals"><div class="total" data-figure="registered"><span>${t("registered")}</span><b id="registered-total">${c.registered}</b></div></div>
    <a id="registry-csv" class="download" href="/api/v1/registry?format=csv" download="registry.csv">${t("download-csv")}</a>
    ${regions.length ? `<h3>${t("reg-by-region")}</h3>
    <table id="registry-regions"><thead><tr><th>${t("region")}</th><th>${t("registered")}</th><th>${t("reporting")}</th></tr></thead><tbody>
      ${regions.map(ch => `<tr data-code="${esc(ch.code)}"><td><a href="${registryHref({ region: ch.code, school_type: type })}" data-nav>${esc(rname(ch.code, ch.name))}</a></td>
        <td>${ch.registered}</td><td>${ch.reporting} (${pct(ch.reporting_rate)})</td></tr>`).join("")}
    </tbody></table>` : ""}
    <h3>${t("by-school-type")}</h3>
    <table id="registry-types"><thead><tr><th>${t("school-type")}</th><th>${t("registered")}</th><th>${t("reporting")}</th></tr></thead><tbody>
      ${types.length ? types.map(s => `<tr data-school-type="${s.school_type}"><td>${t(s.school_type)}</td><td>${s.registered}</td><td>${s.reporting} (${pct(s.reporting_rate)})</td></tr>`).join("")
        : `<tr><td colspan="3">${t("none")}</td></tr>`}
    </tbody></table>`;
}

function drawUnregistered(list) {
  return `<h2>${t("unreg")} <small>(${list.total})</small></h2>
    <p class="note">${t("unreg-note")}</p>
    <table id="unregistered-list"><thead><tr><th>${t("reg-id")}</th><th>${t("region")}</th><th>${t("reg-gateway")}</th>
      <th>${t("state-since")}</th><th>${t("last-heartbeat")}</th><th>${t("first-seen")}</th></tr></thead><tbody>
    ${list.campuses.length ? list.campuses.map(c => `<tr data-campus="${esc(c.id)}"><td>${campusLink(c.id)}</td><td>${esc(c.region)}</td>
      <td>${t(c.gateway_state)}</td><td>${when(c.since)}</td><td>${when(c.last_heartbeat)}</td><td>${when(c.first_seen)}</td></tr>`).join("")
      : `<tr><td colspan="6">${t("none")}</td></tr>`}
    </tbody></table>
    ${list.total > list.campuses.length ? `<p class="note">${fill(t("unreg-more"), list.campuses.length, list.total)}</p>` : ""}`;
}

function drawRegistered(list, q, pageNo, type) {
  const first = (pageNo - 1) * REGISTRY_PAGE;
  const to = n => registryHref({ region: q.get("region"), school_type: type, q: q.get("q") || "", page: n > 1 ? String(n) : "" });
  const pages = [
    pageNo > 1 ? `<a id="reg-prev" href="${to(pageNo - 1)}" data-nav>${t("reg-prev")}</a>` : "",
    first + list.campuses.length < list.total ? `<a id="reg-next" href="${to(pageNo + 1)}" data-nav>${t("reg-next")}</a>` : "",
  ].filter(Boolean).join(" ");
  return `<h2>${t("reg-list")}</h2>
    <div class="filters">
      <select id="reg-type">${["", "kindergarten", "primary", "secondary", "other"].map(s => `<option value="${s}"${s === type ? " selected" : ""}>${s ? t(s) : t("reg-all-types")}</option>`).join("")}</select>
      <form id="reg-search"><input id="reg-q" name="q" type="search" placeholder="${t("reg-search")}" value="${esc(q.get("q") || "")}"> <button type="submit">${t("reg-search-go")}</button></form>
      <span id="reg-range">${list.total ? fill(t("reg-range"), first + 1, first + list.campuses.length, list.total) : ""}</span> ${pages}
    </div>
    <table id="registered"><thead><tr><th>${t("reg-id")}</th><th>${t("name")}</th><th>${t("region")}</th><th>${t("school-type")}</th>
      <th>${t("reg-expected-alarms")}</th><th>${t("reg-expected-cameras")}</th><th>${t("reg-gateway")}</th></tr></thead><tbody>
    ${list.campuses.length ? list.campuses.map(c => `<tr data-campus="${esc(c.id)}"><td>${campusLink(c.id)}</td><td>${esc(c.name)}</td><td>${esc(rname(c.region))}</td>
      <td>${t(c.school_type)}</td><td>${c.expected_alarms}</td><td>${c.expected_cameras}</td><td>${t(c.gateway_state)}</td></tr>`).join("")
      : `<tr><td colspan="7">${t("none")}</td></tr>`}
    </tbody></table>`;
}

function importSection() {
  return `<section id="import">
    <h2>${t("import")}</h2>
    <form id="import-form">
      <label>${t("import-file")} <input id="import-file" name="file" type="file" accept=".csv,text/csv" required></label>
      <fieldset><legend>${t("import-mode")}</legend>
        <label><input type="radio" name="mode" value="upsert" checked> ${t("mode-upsert")}</label>
        <label><input type="radio" name="mode" value="replace"> ${t("mode-replace")}</label>
      </fieldset>
      <button type="submit">${t("import-go")}</button>
    </form>
    <div id="import-result"></div>
    <details id="import-help" open><summary>${t("import-format")}</summary>
      <p><code>${REGISTRY_COLUMNS.join(",")}</code></p>
      <table id="import-columns"><thead><tr><th>${t("column")}</th><th>${t("meaning")}</th></tr></thead><tbody>
        ${REGISTRY_COLUMNS.map(c => `<tr><td><code>${c}</code></td><td>${t("col-" + c)}</td></tr>`).join("")}
      </tbody></table>
      <p>${t("import-rules")}</p>
      <p><b>${t("all-or-nothing")}</b></p>
    </details>
  </section>`;
}

/** A refused line's reason in the console's language, from its code and parameters
 *  (docs/api.md, "Registry import errors"); the server's English words for a code this
 *  console does not know. */
function lineReason(l) {
  const text = l.code && TEXT[lang]["reason-" + l.code];
  if (!text) return l.message;
  const p = l.params || {};
  return text.replace(/\{(\w+)\}/g, (all, name) => {
    if (!(name in p)) return all;
    const v = String(p[name]);
    if (name === "level") return t("level-" + v);
    // Lists of columns read better spaced out.
    return name === "expected" || name === "columns" ? v.split(",").join(", ") : v;
  });
}

function drawImportResult() {
  const box = document.getElementById("import-result");
  if (!box || !importResult) return;
  const r = importResult;
  if (r.busy) {
    box.innerHTML = `<p>${t("import-busy")}</p>`;
  } else if (r.ok) {
    box.innerHTML = `<p id="import-ok" class="ok">${esc(r.file)}: ${fill(t("import-ok"), r.ok.imported, t("done-" + r.ok.mode), r.ok.registered)}</p>`;
  } else if (r.lines) {
    box.innerHTML = `<p id="import-refused" class="error">${esc(r.file)}: ${fill(t("import-refused"), r.lines.length)}</p>
      <table id="import-errors"><thead><tr><th>${t("line")}</th><th>${t("column")}</th><th>${t("problem")}</th></tr></thead><tbody>
      ${r.lines.map(l => `<tr data-line="${l.line}"><td>${l.line}</td><td>${esc(l.column || "–")}</td><td data-code="${esc(l.code || "")}">${esc(lineReason(l))}</td></tr>`).join("")}
      </tbody></table>`;
  } else {
    box.innerHTML = `<p id="import-failed" class="error">${t("import-failed")}: ${esc(r.error)}</p>`;
  }
}

async function importFile(form) {
  const file = form.elements.file.files[0];
  if (!file) { importResult = { error: t("import-choose") }; drawImportResult(); return; }
  const mode = form.elements.mode.value;
  const button = form.querySelector("button");
  button.disabled = true;
  importResult = { busy: true };
  drawImportResult();
  try {
    // The file's bytes as they are, not decoded here: the server names the line and
    // column of any text that is not UTF-8 (a GBK file from Excel) instead of importing
    // names garbled by a lenient decoder.
    const ok = await post("/api/v1/registry?mode=" + mode, file, "text/csv");
    importResult = { ok, file: file.name };
    form.reset();
  } catch (e) {
    if (e.message === "unauthorized") return;
    importResult = e.status === 422 && e.body && e.body.lines
      ? { lines: e.body.lines, file: file.name }
      : { error: e.status === 403 ? t("not-allowed") + " (" + e.message + ")" : e.message, file: file.name };
  } finally {
    button.disabled = false;
  }
  drawImportResult();
  // The counts changed (the live stream says so too, unless it is off).
  if (importResult.ok) render();
}

page("registry", { nav: "registry", render: renderRegistry, events: ["registry", "transition"] });
