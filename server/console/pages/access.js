// Users and API tokens: everyone lists, makes and revokes their own tokens; an
// administrator also lists the users within their scope, disables or enables them, and
// lists and revokes their tokens.
"use strict";

texts({
  "zh": {
    "access": "账号与令牌", "my-tokens": "我的 API 令牌", "tokens-of": "%1 的 API 令牌", "users": "用户",
    "token-name": "用途", "token-user": "用户", "created": "创建时间", "expires": "到期时间", "last-used": "最近使用",
    "never-used": "从未使用", "state": "状态", "token-active": "有效", "token-expired": "已过期",
    "token-revoked": "已吊销", "revoke": "吊销",
    "revoke-confirm": "吊销令牌“%1”？使用它的脚本将立即无法访问。", "role": "角色", "scope": "范围",
    "all-regions": "全部地区", "enabled": "正常", "disabled": "已停用", "disable": "停用", "enable": "启用",
    "disable-confirm": "停用用户 %1？其登录会话和 API 令牌立即失效，重新启用后也不会恢复。",
    "show-tokens": "查看令牌", "role-viewer": "查看员", "role-operator": "值班员", "role-admin": "管理员",
    "new-token": "新建令牌", "token-days": "有效天数", "token-create": "创建",
    "token-shown-once": "请立即复制并妥善保存此令牌，它只显示这一次：", "you": "（本人）",
    "users-note": "用户用命令 campuswatch-server user add 添加或重设密码。停用后该用户不能登录，其会话和令牌立即失效。",
    "no-tokens-off": "未开启登录（auth.enabled = false），无需令牌。",
  },
  "en": {
    "access": "Users and tokens", "my-tokens": "My API tokens", "tokens-of": "API tokens of %1", "users": "Users",
    "token-name": "For", "token-user": "User", "created": "Created", "expires": "Expires", "last-used": "Last used",
    "never-used": "never", "state": "State", "token-active": "active", "token-expired": "expired",
    "token-revoked": "revoked", "revoke": "Revoke",
    "revoke-confirm": "Revoke the token “%1”? Scripts using it are refused at once.", "role": "Role", "scope": "Scope",
    "all-regions": "every region", "enabled": "enabled", "disabled": "disabled", "disable": "Disable", "enable": "Enable",
    "disable-confirm": "Disable the user %1? Their sessions and API tokens end at once and stay ended if they are enabled again.",
    "show-tokens": "Tokens", "role-viewer": "viewer", "role-operator": "operator", "role-admin": "administrator",
    "new-token": "New token", "token-days": "Days valid", "token-create": "Create",
    "token-shown-once": "Copy this token now and keep it safe; it is shown this once:", "you": " (you)",
    "users-note": "Users are added, and their passwords set, with campuswatch-server user add. A disabled user cannot sign in; their sessions and tokens end at once.",
    "no-tokens-off": "Sign-in is off (auth.enabled = false): no tokens are needed.",
  },
});

/** The page's choices, kept across redraws: whose tokens are shown below the users,
 *  and a token just made (shown once). */
const accessView = { user: null, made: null };

async function loadAccess() {
  const own = await api("/api/v1/tokens");
  if (!canDo("admin")) return { own: own.tokens };
  const users = (await api("/api/v1/users")).users;
  const chosen = users.find(u => u.id === accessView.user);
  const theirs = chosen && chosen.name !== me.name ? (await api(`/api/v1/tokens?user=${chosen.id}`)).tokens : null;
  return { own: own.tokens, users, chosen, theirs };
}

function tokenState(k) {
  if (k.revoked_at) return "token-revoked";
  return Date.parse(k.expires_at) <= Date.now() ? "token-expired" : "token-active";
}

function tokenTable(id, tokens) {
  return `<table id="${id}"><thead><tr><th>${t("token-name")}</th><th>${t("created")}</th><th>${t("expires")}</th><th>${t("last-used")}</th><th>${t("state")}</th><th></th></tr></thead><tbody>
    ${tokens.length ? tokens.map(k => {
      const state = tokenState(k);
      return `<tr data-token="${k.id}"><td>${esc(k.name)}</td><td>${whenMinute(k.created_at)}</td><td>${whenMinute(k.expires_at)}</td>
        <td>${k.last_used ? whenMinute(k.last_used) : t("never-used")}</td>
        <td class="${state}">${t(state)}${k.revoked_at ? " " + whenMinute(k.revoked_at) : ""}</td>
        <td>${state === "token-active" ? `<button type="button" data-revoke="${k.id}" data-name="${esc(k.name)}">${t("revoke")}</button>` : ""}</td></tr>`;
    }).join("") : `<tr><td colspan="6">${t("none")}</td></tr>`}</tbody></table>`;
}

function scopeLabel(scope) { return scope ? esc(rname(scope, scope)) + ` <small>${esc(scope)}</small>` : t("all-regions"); }

function drawAccess(d) {
  const anonymous = me.name === "anonymous";
  const made = accessView.made
    ? `<p class="made" id="token-made">${t("token-shown-once")} <code>${esc(accessView.made)}</code></p>` : "";
  let html = `<section id="my-tokens"><h2>${t("my-tokens")}</h2>${anonymous ? `<p>${t("no-tokens-off")}</p>` : `${made}
    <form id="token-form" class="filters"><input id="token-name" name="name" required maxlength="100" placeholder="${t("token-name")}">
      <label class="inline">${t("token-days")} <input id="token-days" name="days" type="number" min="1" max="365" value="90"></label>
      <button type="submit">${t("new-token")}</button><span class="error" id="token-error"></span></form>
    ${tokenTable("own-tokens", d.own)}`}</section>`;
  if (d.users) {
    html += `<section id="users"><h2>${t("users")}</h2><p class="note">${t("users-note")}</p>
      <table id="user-rows"><thead><tr><th>${t("user")}</th><th>${t("role")}</th><th>${t("scope")}</th><th>${t("state")}</th><th>${t("created")}</th><th></th></tr></thead><tbody>
      ${d.users.map(u => `<tr data-user="${u.id}"${u.disabled ? ' class="disabled"' : ""}><td>${esc(u.name)}${u.name === me.name ? t("you") : ""}</td>
        <td>${t("role-" + u.role)}</td><td>${scopeLabel(u.scope)}</td>
        <td class="${u.disabled ? "error" : ""}">${t(u.disabled ? "disabled" : "enabled")}</td><td>${dayOf(u.created_at)}</td>
        <td class="actions">${u.name === me.name ? "" : `<button type="button" data-disable="${u.id}" data-name="${esc(u.name)}" data-to="${!u.disabled}">${t(u.disabled ? "enable" : "disable")}</button>
          <button type="button" data-user-tokens="${u.id}"${accessView.user === u.id ? ' aria-pressed="true" class="here"' : ""}>${t("show-tokens")}</button>`}</td></tr>`).join("")}
      </tbody></table></section>`;
    if (d.chosen && d.theirs) {
      html += `<section id="user-tokens"><h2>${fill(t("tokens-of"), esc(d.chosen.name))}</h2>${tokenTable("their-tokens", d.theirs)}</section>`;
    }
  }
  return html;
}

function wireAccess(main) {
  const failed = (b, e) => b.insertAdjacentHTML("afterend", `<span class="error">${esc(e.status === 403 ? t("not-allowed") : e.message)}</span>`);
  main.querySelectorAll("button[data-revoke]").forEach(b => b.onclick = async () => {
    if (!confirm(fill(t("revoke-confirm"), b.dataset.name))) return;
    b.disabled = true;
    try { await api(`/api/v1/tokens/${b.dataset.revoke}`, { method: "DELETE" }); render(); } catch (e) { b.disabled = false; failed(b, e); }
  });
  main.querySelectorAll("button[data-disable]").forEach(b => b.onclick = async () => {
    const disabled = b.dataset.to === "true";
    if (disabled && !confirm(fill(t("disable-confirm"), b.dataset.name))) return;
    b.disabled = true;
    try {
      await api(`/api/v1/users/${b.dataset.disable}`, {
        method: "PATCH", headers: { "content-type": "application/json" }, body: JSON.stringify({ disabled }),
      });
      render();
    } catch (e) { b.disabled = false; failed(b, e); }
  });
  main.querySelectorAll("button[data-user-tokens]").forEach(b => b.onclick = () => {
    const id = Number(b.dataset.userTokens);
    accessView.user = accessView.user === id ? null : id;
    render();
  });
  const form = document.getElementById("token-form");
  if (form) form.onsubmit = async ev => {
    ev.preventDefault();
    const f = new FormData(form);
    try {
      const made = await post("/api/v1/tokens", { name: f.get("name"), days: Number(f.get("days")) || undefined });
      accessView.made = made.token;
      render();
    } catch (e) { document.getElementById("token-error").textContent = e.message; }
  };
}

page("access", { nav: "access", load: loadAccess, draw: drawAccess, wire: wireAccess, events: [] });
