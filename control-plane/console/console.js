// Novacula console: a small single-page app over the HTTP API (/api/v1).
// The session token lives in sessionStorage; views refresh by polling.
"use strict";

const REFRESH_MS = 2000;
let me = null;
let timer = null;

const $ = (sel) => document.querySelector(sel);

function esc(v) {
  return String(v ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function ago(ms) {
  if (!ms) return "never";
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return s + " s ago";
  if (s < 3600) return Math.round(s / 60) + " min ago";
  return new Date(ms).toLocaleString();
}

function badge(text, cls, id) {
  return `<span class="badge ${esc(cls || text)}"${id ? ` id="${esc(id)}"` : ""} data-value="${esc(text)}">${esc(text)}</span>`;
}

class ApiError extends Error {}

// A Blob body (a logo) goes as it is, with its own type; anything else as JSON.
async function api(method, path, body) {
  const raw = body instanceof Blob;
  const headers = { "content-type": raw ? body.type : "application/json", "x-novacula-client": "console" };
  const token = sessionStorage.getItem("novacula-token");
  if (token) headers.authorization = "Bearer " + token;
  const org = sessionStorage.getItem("novacula-org");
  if (org) headers["x-novacula-org"] = org;
  const res = await fetch("/api/v1" + path, { method, headers, body: body === undefined ? undefined : raw ? body : JSON.stringify(body) });
  const text = await res.text();
  const data = text ? JSON.parse(text) : null;
  if (res.status === 401 && path !== "/login") {
    sessionStorage.removeItem("novacula-token");
    showLogin();
    throw new ApiError("signed out");
  }
  if (!res.ok) {
    const details = data && data.details && data.details.length ? " (" + data.details.join("; ") + ")" : "";
    const err = new ApiError((data && data.error ? data.error : res.statusText) + details);
    // A refused spec names each problem's field (a form marks it).
    err.problems = (data && data.problems) || [];
    throw err;
  }
  return data;
}

function flash(msg) {
  const f = $("#flash");
  f.textContent = msg || "";
  f.hidden = !msg;
}

// ---- login ----

function showLogin() {
  clearInterval(timer);
  $("#app").hidden = true;
  $("#invite").hidden = true;
  api("GET", "/signup").then((info) => ($("#signup-open").hidden = !info.enabled)).catch(() => {});
  $("#login").hidden = false;
}

$("#login-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("#login-error").textContent = "";
  try {
    const r = await api("POST", "/login", { username: $("#login-username").value, password: $("#login-password").value });
    sessionStorage.setItem("novacula-token", r.token);
    await start();
  } catch (err) {
    $("#login-error").textContent = err.message;
  }
});

$("#signup-open").addEventListener("click", () => {
  $("#signup-form").hidden = false;
  $("#signup-open").hidden = true;
});

$("#signup-form").addEventListener("submit", async (e) => {
  e.preventDefault();
  $("#signup-error").textContent = "";
  const org = $("#signup-org").value.trim();
  try {
    const r = await api("POST", "/signup", { username: $("#signup-username").value.trim(), password: $("#signup-password").value, ...(org ? { organization: org } : {}) });
    sessionStorage.setItem("novacula-token", r.token);
    sessionStorage.setItem("novacula-org", r.user.orgId);
    await start();
  } catch (err) {
    $("#signup-error").textContent = err.message;
  }
});

$("#logout").addEventListener("click", async () => {
  // Signing out of an impersonation ends it and returns to the administrator.
  if (sessionStorage.getItem("novacula-admin-token")) return $("#end-impersonation").click();
  // The server ends the session, so the token is worthless even if copied.
  await api("POST", "/logout").catch(() => {});
  sessionStorage.removeItem("novacula-token");
  sessionStorage.removeItem("novacula-org");
  sessionStorage.removeItem("novacula-admin-token");
  me = null;
  showLogin();
});

// Ending an impersonation ends its session on the server and takes the
// administrator back to their own (kept aside when it began).
$("#end-impersonation").addEventListener("click", async () => {
  await api("POST", "/logout").catch(() => {});
  const own = sessionStorage.getItem("novacula-admin-token");
  sessionStorage.removeItem("novacula-admin-token");
  sessionStorage.removeItem("novacula-org");
  if (!own) return showLogin();
  sessionStorage.setItem("novacula-token", own);
  sessionStorage.setItem("novacula-org", sessionStorage.getItem("novacula-admin-org") || "");
  location.hash = "#/platform";
  await start();
});

$("#org-switch").addEventListener("change", async () => {
  sessionStorage.setItem("novacula-org", $("#org-switch").value);
  await start();
  route();
});

// What the signed-in role may do: the server's permission table, from /me.
const can = (permission) => !!me && me.permissions.includes(permission);

async function start() {
  const [who, orgs, org] = await Promise.all([api("GET", "/me"), api("GET", "/orgs"), api("GET", "/org")]);
  me = who;
  me.org = org;
  $("#org-banner").hidden = !org.deactivated;
  $("#org-banner").textContent = org.deactivated
    ? `Organization ${org.id} is deactivated: its members and executors are refused.` + (can("ownOrganization") ? " Reactivate it under Members." : "")
    : "";
  $("#login").hidden = true;
  $("#app").hidden = false;
  $("#who").textContent = `${me.username} (${me.role})`;
  $("#org-switch").innerHTML = orgs.map((o) => `<option value="${esc(o.orgId)}" ${o.orgId === me.orgId ? "selected" : ""}>${esc(o.orgId)} (${esc(o.role)})</option>`).join("");
  $("#org-switch").hidden = orgs.length < 2;
  $("#org-name").textContent = org.name;
  showLogo(org).catch(() => {});
  $("#nav-connect").hidden = !can("manageExecutors");
  $("#nav-audit").hidden = !can("readAudit");
  $("#nav-platform").hidden = !me.platformAdmin;
  $("#impersonation-banner").hidden = !me.impersonatedBy;
  $("#impersonation-text").textContent = me.impersonatedBy
    ? `${me.impersonatedBy}, you are acting as ${me.username} in ${me.orgId}: everything you do is audited with both names.`
    : "";
  if (!location.hash || location.hash === "#/") location.hash = "#/nodes";
  else route();
}

// The organization's logo (an image the server checked to be a PNG or JPEG),
// fetched with the session and shown from a blob: URL.
let logoUrl = null;
async function showLogo(org) {
  if (logoUrl) URL.revokeObjectURL(logoUrl);
  logoUrl = null;
  if (org.logoUpdatedAt) {
    const headers = { authorization: "Bearer " + sessionStorage.getItem("novacula-token"), "x-novacula-org": org.id };
    const res = await fetch("/api/v1/org/logo", { headers });
    if (res.ok) logoUrl = URL.createObjectURL(await res.blob());
  }
  for (const img of document.querySelectorAll(".org-logo")) {
    img.hidden = !logoUrl;
    if (logoUrl) img.src = logoUrl;
  }
}

// ---- routing ----

const views = {
  executors: { render: executorsView },
  executor: { render: executorView },
  nodes: { render: nodesView, setup: nodesSetup },
  node: { setup: nodeSetup, render: nodeView },
  events: { render: eventsView },
  alerts: { setup: alertsSetup, render: alertsView },
  connect: { setup: connectSetup },
  members: { setup: membersSetup },
  keys: { setup: keysSetup },
  audit: { setup: auditSetup },
  invite: { setup: inviteSetup },
  profile: { setup: profileSetup },
  platform: { setup: platformSetup },
};

function current() {
  const parts = location.hash.replace(/^#\//, "").split("/").map(decodeURIComponent);
  if (parts[0] === "executors" && parts[1]) return ["executor", parts[1]];
  if (parts[0] === "nodes" && parts[1]) return ["node", parts[1]];
  if (parts[0] === "invite" && parts[1]) return ["invite", parts[1]];
  return [views[parts[0]] ? parts[0] : "nodes", null];
}

async function route() {
  if (!me) {
    // Signed out, only an invitation's page is open to the visitor.
    const invited = location.hash.match(/^#\/invite\/(.+)$/);
    if (invited) showInvite(decodeURIComponent(invited[1]));
    return;
  }
  clearInterval(timer);
  closeLogs();
  flash("");
  const [name, arg] = current();
  document.querySelectorAll("#sidebar a").forEach((a) => a.classList.toggle("active", name.startsWith(a.dataset.nav.replace(/s$/, ""))));
  const view = views[name];
  $("#view").innerHTML = "";
  if (view.setup) view.setup(arg);
  if (view.render) {
    const refresh = async () => {
      try {
        await view.render(arg);
      } catch (err) {
        if (!(err instanceof ApiError && err.message === "signed out")) flash(err.message);
      }
    };
    await refresh();
    timer = setInterval(refresh, REFRESH_MS);
  }
}

window.addEventListener("hashchange", route);

function live() {
  let el = $("#live");
  if (!el) {
    el = document.createElement("div");
    el.id = "live";
    $("#view").appendChild(el);
  }
  return el;
}

// ---- paging ----

// A listing by name shown one page at a time: `pages` holds the `after` of
// each page seen so far (the last is the one shown), for "Previous".
const VIEW_PAGE = 100;

function pagerHtml(id, pages, page) {
  return `<div class="actions">
      <button id="${id}-prev" class="secondary" ${pages.length > 1 ? "" : "disabled"}>Previous</button>
      <span class="muted" id="${id}-page">page ${pages.length}</span>
      <button id="${id}-next" class="secondary" ${page.length === VIEW_PAGE ? "" : "disabled"}>Next</button>
    </div>`;
}

function bindPager(id, pages, page, render) {
  const again = () => render().catch((err) => flash(err.message));
  $(`#${id}-prev`).onclick = () => {
    pages.pop();
    again();
  };
  $(`#${id}-next`).onclick = () => {
    pages.push(page[page.length - 1].name);
    again();
  };
}

function afterOf(pages) {
  const after = pages[pages.length - 1];
  return after ? "&after=" + encodeURIComponent(after) : "";
}

// ---- executors ----

const executorsPages = [""];

async function executorsView() {
  const execs = await api("GET", `/executors?limit=${VIEW_PAGE}` + afterOf(executorsPages));
  const rows = execs
    .map(
      (e) => `<tr data-executor="${esc(e.name)}">
      <td><a href="#/executors/${encodeURIComponent(e.name)}">${esc(e.name)}</a></td>
      <td>${esc(e.kind)}</td>
      <td>${badge(e.online ? "online" : "offline")}${e.deactivated ? " " + badge("deactivated", "error") : ""}</td>
      <td>${esc(e.version)} ${e.compat !== "in-window" ? badge(e.compat) : ""}</td>
      <td>${esc(e.channel)}</td><td>${e.nodeCount}</td><td>${ago(e.updatedAt)}</td></tr>`
    )
    .join("");
  live().innerHTML = `<h1>Executors</h1>
    <table><thead><tr><th>Name</th><th>Kind</th><th>Status</th><th>Version</th><th>Channel</th><th>Nodes</th><th>Last sync</th></tr></thead>
    <tbody>${rows || `<tr><td colspan="7" class="muted">No executor has connected yet. <a href="#/connect">Connect one</a>.</td></tr>`}</tbody></table>
    ${pagerHtml("executors", executorsPages, execs)}`;
  bindPager("executors", executorsPages, execs, executorsView);
}

async function executorView(name) {
  const [e, nodes, events, upgrades] = await Promise.all([
    api("GET", "/executors/" + encodeURIComponent(name)),
    allNodes("executor=" + encodeURIComponent(name)),
    api("GET", "/events?order=desc&limit=1000"),
    api("GET", "/upgrades"),
  ]);
  const caps = (e.capabilities.chains || [])
    .map((c) => `${esc(c.chain)} (${(c.networks || []).map(esc).join(", ")}): ${(c.clients || []).map((k) => esc(k.role + "=" + k.client)).join(", ")}`)
    .join("<br>");
  const upgrade = upgrades.find((u) => u.kind === e.kind && u.spec.channel === e.channel);
  const mine = events.events.filter((ev) => ev.executor === name).slice(0, 15);
  const canManage = can("manageExecutors") && !e.deactivated;
  live().innerHTML = `<h1>Executor ${esc(e.name)} ${badge(e.online ? "online" : "offline", null, "executor-status")}</h1>
    <div class="card"><dl>
      <dt>Kind</dt><dd>${esc(e.kind)}</dd>
      <dt>Version</dt><dd>${esc(e.version)} ${badge(e.compat)}</dd>
      <dt>Channel</dt><dd>${esc(e.channel)}</dd>
      <dt>Last sync</dt><dd>${ago(e.updatedAt)}</dd>
      <dt>API key last used</dt><dd id="key-last-used">${ago(e.keyLastUsedAt)}</dd>
      <dt>Capabilities</dt><dd>${caps || "none"}</dd>
      <dt>Upgrade (${esc(e.channel)})</dt><dd>${upgrade ? esc(upgrade.spec.version) + " <span class=muted>" + esc(upgrade.spec.artifact) + "</span>" : "none recorded"}</dd>
      <dt>Status</dt><dd>${e.deactivated ? badge("deactivated", "error") : "active"}</dd>
    </dl>
    <div class="actions">
      <button id="executor-upgrade" class="secondary" ${canManage ? "" : "disabled"}>Set upgrade…</button>
      <button id="executor-deactivate" class="danger" ${canManage ? "" : "disabled"}>Deactivate</button>
      <button id="executor-delete" class="danger" ${can("manageExecutors") && !nodes.some((n) => !n.removed) && (!e.online || e.deactivated) ? "" : "disabled title='only an executor with no nodes, offline or deactivated'"}>Delete</button>
    </div></div>
    <h2>Hosted nodes</h2>${nodesTable(nodes)}
    <h2>Recent events</h2>${eventsTable(mine)}`;
  $("#executor-deactivate").onclick = async () => {
    if (!confirm(`Deactivate executor ${name}? Its key stops working for it and its nodes stop being managed.`)) return;
    await act(() => api("POST", `/executors/${encodeURIComponent(name)}/deactivate`));
  };
  $("#executor-delete").onclick = async () => {
    if (!confirm(`Delete executor ${name}? Its keys are revoked and its name is free again.`)) return;
    try {
      await api("DELETE", `/executors/${encodeURIComponent(name)}`);
      location.hash = "#/executors";
    } catch (err) {
      flash(err.message);
    }
  };
  $("#executor-upgrade").onclick = async () => {
    const version = prompt(`Version for ${e.kind} executors on channel ${e.channel}:`);
    if (!version) return;
    const artifact = prompt(e.kind === "operator" ? "Image pinned by digest (repository@sha256:...):" : "Release file name in the agent's release_dir:");
    if (!artifact) return;
    let sha256 = null;
    if (e.kind !== "operator") {
      sha256 = prompt("SHA-256 of the release binary (64 hex digits):");
      if (!sha256) return;
    }
    await act(() => api("PUT", "/upgrades", { channel: e.channel, kind: e.kind, version, artifact, sha256 }));
  };
}

// Run an action, then show the view afresh; the action's answer, or undefined when it failed (flashed).
async function act(f) {
  try {
    const r = await f();
    flash("");
    route();
    return r;
  } catch (err) {
    flash(err.message);
  }
}

// ---- nodes ----

function pending(n) {
  return n.drift.revisionsBehind > 0 ? `<span class="pending" title="${n.drift.revisionsBehind} revision(s) not yet applied">pending change</span>` : "";
}

function nodesTable(nodes) {
  const rows = nodes
    .map(
      (n) => `<tr data-node="${esc(n.name)}">
      <td><a href="#/nodes/${encodeURIComponent(n.name)}">${esc(n.name)}</a></td>
      <td>${esc(n.spec.chain)}/${esc(n.spec.network)}</td>
      <td><a href="#/executors/${encodeURIComponent(n.executor)}">${esc(n.executor)}</a></td>
      <td>${badge(n.phase)} ${n.nodeDown ? badge("down") : ""}</td>
      <td>${esc(n.spec.desiredState)}</td>
      <td>${n.revision} ${pending(n)}</td></tr>`
    )
    .join("");
  return `<table><thead><tr><th>Name</th><th>Chain</th><th>Executor</th><th>Phase</th><th>Desired</th><th>Revision</th></tr></thead>
    <tbody>${rows || `<tr><td colspan="6" class="muted">No nodes.</td></tr>`}</tbody></table>`;
}

const SAMPLE_SPEC = {
  name: "my-node",
  chain: "demo",
  network: "local",
  clients: [{ role: "main", client: "standin", version: "1.0.0" }],
};

function nodesSetup() {
  const canDeploy = can("manageNodes");
  $("#view").innerHTML = `<details class="card" id="deploy" ${canDeploy ? "" : "hidden"}>
      <summary>Deploy a node</summary>
      <div id="wizard"></div>
      <details id="deploy-json"><summary>Advanced: a whole spec as JSON</summary>
        <label>Executor <select id="deploy-executor"></select></label>
        <label>Spec (JSON) <textarea id="deploy-spec">${esc(JSON.stringify(SAMPLE_SPEC, null, 2))}</textarea></label>
        <div class="actions"><button id="deploy-submit">Deploy</button></div>
      </details>
    </details>${nodesFilterForm()}`;
  $("#nodes-filter").onsubmit = (ev) => {
    ev.preventDefault();
    nodesFilter.executor = $("#filter-executor").value.trim();
    nodesFilter.chain = $("#filter-chain").value.trim();
    nodesFilter.phase = $("#filter-phase").value;
    nodesPages.splice(1);
    nodesView().catch((err) => flash(err.message));
  };
  if (!canDeploy) return;
  api("GET", "/executors").then((execs) => {
    const usable = execs.filter((e) => !e.deactivated);
    $("#deploy-executor").innerHTML = usable.map((e) => `<option>${esc(e.name)}</option>`).join("");
    wizardSetup(usable);
  });
  $("#deploy-submit").onclick = async () => {
    let spec;
    try {
      spec = JSON.parse($("#deploy-spec").value);
    } catch (err) {
      return flash("The spec is not valid JSON: " + err.message);
    }
    try {
      const n = await api("POST", "/nodes", { executor: $("#deploy-executor").value, spec });
      location.hash = "#/nodes/" + encodeURIComponent(n.name);
    } catch (err) {
      flash(err.message);
    }
  };
}

// ---- the deploy wizard ----
// Every list comes from the chosen executor's capabilities, so only what it
// runs can be chosen; the control plane builds the spec from the choices
// (POST /executors/{name}/draft, core's rules and defaults), shows it for
// review, and checks it again at deploy.

const opt = (value, label, selected) => `<option value="${esc(value)}" ${selected ? "selected" : ""}>${esc(label ?? value)}</option>`;

/** The clients of `chain` a node of `network` can use for `role`. */
function clientsFor(chain, role, network) {
  return chain.clients.filter((c) => c.role === role && (!c.networks || !c.networks.length || c.networks.includes(network)));
}

function rolesOf(chain) {
  return [...new Set(chain.clients.map((c) => c.role))];
}

function minVersion(client, network) {
  const m = (client.minVersions || []).find((v) => v.network === network);
  return m ? m.version : null;
}

/** An input for one setting of a client's schema: typed, empty meaning the client's default. */
function settingInput(id, key, value) {
  const v = value ?? "";
  const dflt = key.default != null ? `default ${key.default}` : "client default";
  switch (key.type) {
    case "bool":
      return `<select id="${id}" data-key="${esc(key.name)}">${opt("", dflt, v === "")}${opt("1", "on (1)", v === "1")}${opt("0", "off (0)", v === "0")}</select>`;
    case "enum":
      return `<select id="${id}" data-key="${esc(key.name)}">${opt("", dflt, v === "")}${key.allowed.map((a) => opt(a, a, v === a)).join("")}</select>`;
    case "integer":
      return `<input type="number" id="${id}" data-key="${esc(key.name)}" value="${esc(v)}" placeholder="${esc(dflt)}" ${key.min != null ? `min="${key.min}"` : ""} ${key.max != null ? `max="${key.max}"` : ""}>`;
    case "secret":
      // The name of a secret the executor holds, never its value.
      return `<input id="${id}" data-key="${esc(key.name)}" value="${esc(v)}" placeholder="name of a secret on the executor" required>`;
    default:
      return `<input id="${id}" data-key="${esc(key.name)}" value="${esc(v)}" placeholder="${esc(dflt)}">`;
  }
}

/**
 * A client's settings: its schema's keys with their types, or, for a client
 * that lists none, free `key=value` lines (its adapter's own keys are refused).
 */
function settingsHtml(prefix, client, current) {
  const keys = client.overrides || [];
  if (keys.length) {
    const rows = keys
      .map((k) => `<tr><td><label for="${prefix}-${esc(k.name)}" title="${esc(k.description)}">${esc(k.name)}</label><span class="muted"> ${esc(k.type)}</span></td><td>${settingInput(`${prefix}-${esc(k.name)}`, k, current[k.name])}</td><td class="muted">${esc(k.description)}</td></tr>`)
      .join("");
    return `<table class="settings" id="${prefix}"><tbody>${rows}</tbody></table>`;
  }
  const text = Object.entries(current).map(([k, v]) => `${k}=${v}`).join("\n");
  const managed = (client.managedKeys || []).length ? `Set by Novacula, refused: ${client.managedKeys.join(", ")}.` : "";
  return `<label>Settings, one <code>key=value</code> a line <textarea id="${prefix}" class="free-settings" rows="3">${esc(text)}</textarea></label><p class="muted">${esc(managed)}</p>`;
}

/** The settings a form's section holds, as a spec's `configOverrides`. */
function readSettings(prefix) {
  const el = $("#" + prefix);
  const out = {};
  if (!el) return out;
  if (el.tagName === "TEXTAREA") {
    for (const line of el.value.split("\n")) {
      const t = line.trim();
      if (!t) continue;
      const i = t.indexOf("=");
      if (i < 1) throw new ApiError(`settings: ${JSON.stringify(t)} is not key=value`);
      out[t.slice(0, i).trim()] = t.slice(i + 1).trim();
    }
    return out;
  }
  el.querySelectorAll("[data-key]").forEach((i) => {
    if (i.value !== "") out[i.dataset.key] = i.value;
  });
  return out;
}

/** A version field: the executor's list when it offers one, free text otherwise. */
function versionHtml(id, client, network, value) {
  const min = minVersion(client, network);
  const hint = min ? `at least ${min} on ${network}` : "any release";
  if (client.versions && client.versions.length) {
    // A node's own version stays chosen even if the executor no longer lists it.
    const versions = value && !client.versions.includes(value) ? [value, ...client.versions] : client.versions;
    return `<label>Version <select id="${id}">${versions.map((v) => opt(v, v, v === value)).join("")}</select></label>`;
  }
  return `<label>Version <input id="${id}" value="${esc(value || "")}" placeholder="${esc(min || "e.g. 1.2.3")}" required></label><span class="muted hint">${esc(hint)}</span>`;
}

let wz = null; // { execs }

function wizardSetup(execs) {
  // Online executors first, then by name.
  execs.sort((a, b) => (b.online - a.online) || a.name.localeCompare(b.name));
  wz = { execs };
  $("#wizard").innerHTML = `<form id="wz-form" novalidate>
      <div class="row">
        <label>Executor <select id="wz-executor">${execs.map((e) => opt(e.name, `${e.name} (${e.kind}, ${e.online ? "online" : "offline"})`)).join("")}</select></label>
        <label>Chain <select id="wz-chain"></select></label>
        <label>Network <select id="wz-network"></select></label>
        <label>Node type <select id="wz-node-type"></select></label>
        <label>Name <input id="wz-name" required></label>
      </div>
      <p id="wz-none" class="muted" hidden>This executor runs no chain: it has not reported what it can run.</p>
      <div id="wz-roles"></div>
      <div class="row" id="wz-storage">
        <label>Disk (GiB) <input type="number" id="wz-disk" min="1"></label>
        <label id="wz-class-label">Storage class <select id="wz-storage-class"></select></label>
      </div>
      <ul id="wz-problems" class="error"></ul>
      <div class="actions"><button id="wz-review" type="submit">Review</button></div>
    </form>
    <div id="wz-review-pane" hidden>
      <h3>The spec that will be written</h3>
      <pre id="wz-spec"></pre>
      <div class="actions"><button id="wz-back" class="secondary">Back</button><button id="wz-deploy">Deploy</button></div>
    </div>`;
  if (!execs.length) {
    $("#wz-none").hidden = false;
    $("#wz-none").textContent = "No executor has connected yet: connect one first.";
    return;
  }
  $("#wz-executor").onchange = wzExecutorChanged;
  $("#wz-chain").onchange = wzChainChanged;
  $("#wz-network").onchange = wzNetworkChanged;
  $("#wz-node-type").onchange = wzDefaults;
  $("#wz-form").onsubmit = (ev) => {
    ev.preventDefault();
    wzReview();
  };
  $("#wz-back").onclick = () => {
    $("#wz-review-pane").hidden = true;
    $("#wz-form").hidden = false;
  };
  $("#wz-deploy").onclick = wzDeploy;
  wzExecutorChanged();
}

const wzExec = () => wz.execs.find((e) => e.name === $("#wz-executor").value);
const wzCaps = () => (wzExec() || {}).capabilities || { chains: [] };
const wzChain = () => wzCaps().chains.find((c) => c.chain === $("#wz-chain").value);

function wzExecutorChanged() {
  const caps = wzCaps();
  $("#wz-chain").innerHTML = caps.chains.map((c) => opt(c.chain)).join("");
  $("#wz-none").hidden = caps.chains.length > 0;
  $("#wz-review").disabled = !caps.chains.length;
  const classes = caps.storageClasses;
  $("#wz-class-label").hidden = !(classes && classes.length);
  $("#wz-storage-class").innerHTML = opt("", "the cluster's default") + (classes || []).map((c) => opt(c)).join("");
  wzChainChanged();
}

function wzChainChanged() {
  const chain = wzChain();
  $("#wz-network").innerHTML = chain ? chain.networks.map((n) => opt(n)).join("") : "";
  $("#wz-node-type").innerHTML = chain ? chain.nodeTypes.map((t) => opt(t)).join("") : "";
  wzNetworkChanged();
}

/** Each role's clients for the network, with versions, resources and settings. */
function wzNetworkChanged() {
  const chain = wzChain();
  const network = $("#wz-network").value;
  if (!chain) {
    $("#wz-roles").innerHTML = "";
    return;
  }
  $("#wz-name").value = $("#wz-name").dataset.touched ? $("#wz-name").value : `${chain.chain}-${network}`.toLowerCase().replace(/[^a-z0-9-]/g, "-");
  $("#wz-name").oninput = () => ($("#wz-name").dataset.touched = "1");
  $("#wz-roles").innerHTML = rolesOf(chain)
    .map((role) => {
      const clients = clientsFor(chain, role, network);
      return `<fieldset class="card wz-role" data-role="${esc(role)}"><legend>${esc(role)}</legend>
        <div class="row">
          <label>Client <select id="wz-client-${esc(role)}">${clients.map((c) => opt(c.client)).join("")}</select></label>
          <span id="wz-version-box-${esc(role)}"></span>
          <label>CPU (millicores) <input type="number" min="0" id="wz-cpu-${esc(role)}"></label>
          <label>Memory (MiB) <input type="number" min="0" id="wz-mem-${esc(role)}"></label>
        </div>
        ${clients.length ? "" : `<p class="error">No client of this executor runs ${esc(network)} as ${esc(role)}.</p>`}
        <details><summary>Settings</summary><div id="wz-settings-box-${esc(role)}"></div></details>
      </fieldset>`;
    })
    .join("");
  for (const role of rolesOf(chain)) {
    $(`#wz-client-${role}`).onchange = () => wzClientChanged(role);
    wzClientChanged(role);
  }
  wzDefaults();
}

function wzClientChanged(role) {
  const chain = wzChain();
  const network = $("#wz-network").value;
  const client = chain.clients.find((c) => c.role === role && c.client === $(`#wz-client-${role}`).value);
  $(`#wz-version-box-${role}`).innerHTML = client ? versionHtml(`wz-version-${role}`, client, network, minVersion(client, network)) : "";
  $(`#wz-settings-box-${role}`).innerHTML = client ? settingsHtml(`wz-settings-${role}`, client, {}) : "";
  // A secret the node needs is asked for up front.
  $(`#wz-settings-box-${role}`).parentElement.open = !!client && (client.overrides || []).some((k) => k.type === "secret");
}

/** Resources and disk from the network's defaults (an archive node gets its larger disk). */
function wzDefaults() {
  const chain = wzChain();
  if (!chain) return;
  const d = (chain.networkDefaults || []).find((n) => n.network === $("#wz-network").value) || {};
  for (const role of rolesOf(chain)) {
    const r = ((d.resources || []).find((x) => x.role === role) || {}).resources || {};
    $(`#wz-cpu-${role}`).value = r.cpuMillis || "";
    $(`#wz-mem-${role}`).value = r.memoryMib || "";
  }
  const archive = $("#wz-node-type").value === "archive";
  const disk = archive && d.archiveDiskGib ? d.archiveDiskGib : d.diskGib;
  $("#wz-disk").value = disk || "";
}

function wzDraft() {
  const chain = wzChain();
  const num = (id) => (id.value === "" ? 0 : Number(id.value));
  const clients = rolesOf(chain)
    .filter((role) => $(`#wz-client-${role}`).value)
    .map((role) => {
      const cpu = num($(`#wz-cpu-${role}`));
      const mem = num($(`#wz-mem-${role}`));
      return {
        role,
        client: $(`#wz-client-${role}`).value,
        version: $(`#wz-version-${role}`).value.trim(),
        overrides: readSettings(`wz-settings-${role}`),
        resources: cpu || mem ? { cpuMillis: cpu, memoryMib: mem } : null,
      };
    });
  return {
    name: $("#wz-name").value.trim(),
    chain: chain.chain,
    network: $("#wz-network").value,
    nodeType: $("#wz-node-type").value,
    clients,
    diskGib: $("#wz-disk").value ? Number($("#wz-disk").value) : null,
    storageClass: $("#wz-storage-class").value || null,
  };
}

/** The form element a problem's field names (`clients[1].version`, `storage[0].sizeGib`...). */
function wzFieldElement(field, draft) {
  const role = (i) => (draft.clients[Number(i)] || {}).role;
  let m;
  if (field === "name") return $("#wz-name");
  if (field === "chain") return $("#wz-chain");
  if (field === "network") return $("#wz-network");
  if (field === "nodeType") return $("#wz-node-type");
  const part = clientPart(field);
  if (part) return $(`#wz-${part.id}-${role(part.index)}`);
  if ((m = field.match(/^clients \((.+)\)$/))) return $(`#wz-client-${m[1]}`);
  if ((m = field.match(/^storage\[\d+\]\.storageClass$/))) return $("#wz-storage-class");
  if ((m = field.match(/^storage\[\d+\]/))) return $("#wz-disk");
  return null;
}

/** A client's field a problem names (`clients[1].version`): its index, and the form's id part for it. */
function clientPart(field) {
  const m = field.match(/^clients\[(\d+)\]\.(version$|configOverrides|resources)/);
  return m && { index: Number(m[1]), id: { version: "version", configOverrides: "settings", resources: "cpu" }[m[2]] };
}

/** The problems of a refused request, or its message as one. */
function problemsOf(err) {
  return err.problems && err.problems.length ? err.problems : [{ field: "", code: "", message: err.message }];
}

/** Mark the fields of refused choices and list the problems. */
function markProblems(problems, locate) {
  document.querySelectorAll(".invalid").forEach((e) => {
    e.classList.remove("invalid");
    e.removeAttribute("aria-invalid");
  });
  for (const p of problems) {
    const el = locate(p.field);
    if (el) {
      el.classList.add("invalid");
      el.setAttribute("aria-invalid", "true");
    }
  }
  return problems.map((p) => `<li data-field="${esc(p.field)}" data-code="${esc(p.code)}">${esc(p.message)}</li>`).join("");
}

async function wzReview() {
  let draft;
  try {
    draft = wzDraft();
  } catch (err) {
    $("#wz-problems").innerHTML = `<li>${esc(err.message)}</li>`;
    return;
  }
  try {
    const r = await api("POST", `/executors/${encodeURIComponent(wzExec().name)}/draft`, draft);
    $("#wz-problems").innerHTML = markProblems([], () => null);
    wz.spec = r.spec;
    $("#wz-spec").textContent = JSON.stringify(r.spec, null, 2);
    $("#wz-form").hidden = true;
    $("#wz-review-pane").hidden = false;
  } catch (err) {
    const problems = problemsOf(err);
    $("#wz-problems").innerHTML = markProblems(problems, (f) => wzFieldElement(f, draft));
  }
}

async function wzDeploy() {
  try {
    const n = await api("POST", "/nodes", { executor: wzExec().name, spec: wz.spec });
    location.hash = "#/nodes/" + encodeURIComponent(n.name);
  } catch (err) {
    $("#wz-review-pane").hidden = true;
    $("#wz-form").hidden = false;
    const problems = problemsOf(err);
    $("#wz-problems").innerHTML = markProblems(problems, (f) => wzFieldElement(f, wzDraft()));
  }
}

// The node list comes in pages of at most 1000, by name; a short page is the last.
async function allNodes(query) {
  const all = [];
  for (;;) {
    const after = all.length ? "&after=" + encodeURIComponent(all[all.length - 1].name) : "";
    const page = await api("GET", "/nodes?limit=1000" + (query ? "&" + query : "") + after);
    all.push(...page);
    if (page.length < 1000) return all;
  }
}

// The Nodes view shows one page at a time (a fleet has 100,000 nodes), with
// the filters the API takes.
const PHASES = ["provisioning", "configuring", "starting", "running", "syncing", "stopping", "stopped", "error", "deleting"];
const nodesFilter = { executor: "", chain: "", phase: "" };
const nodesPages = [""];

function nodesFilterForm() {
  const opts = ["", ...PHASES].map((p) => `<option value="${p}" ${p === nodesFilter.phase ? "selected" : ""}>${p || "any phase"}</option>`).join("");
  return `<form class="card filters" id="nodes-filter">
      <label>Executor <input id="filter-executor" value="${esc(nodesFilter.executor)}"></label>
      <label>Chain <input id="filter-chain" value="${esc(nodesFilter.chain)}"></label>
      <label>Phase <select id="filter-phase">${opts}</select></label>
      <div class="actions"><button id="filter-apply" class="secondary">Filter</button></div>
    </form>`;
}

async function nodesView() {
  const query = Object.entries(nodesFilter)
    .filter(([, v]) => v)
    .map(([k, v]) => "&" + k + "=" + encodeURIComponent(v))
    .join("");
  const page = await api("GET", `/nodes?limit=${VIEW_PAGE}${query}` + afterOf(nodesPages));
  live().innerHTML = `<h1>Nodes</h1>${nodesTable(page)}${pagerHtml("nodes", nodesPages, page)}`;
  bindPager("nodes", nodesPages, page, nodesView);
}

/** Bytes in binary units, one decimal. */
function bytes(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
  let v = n, u = 0;
  while (v >= 1024 && u < units.length - 1) { v /= 1024; u++; }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}

// Tiles of a node's sync, from its last report.
function tiles(n) {
  const syncs = ((n.observed && n.observed.processes) || []).map((p) => p.sync).filter(Boolean);
  const disk = n.observed && n.observed.disk;
  const tile = (id, label, value, sub) =>
    `<div class="tile" id="${id}" data-value="${esc(value)}"><div class="tile-label">${label}</div><div class="tile-value">${esc(value)}</div><div class="muted">${esc(sub || "")}</div></div>`;
  const progress = syncs.length ? Math.min(...syncs.map((s) => s.progressPercent)).toFixed(2) + " %" : "-";
  const behind = syncs.length ? Math.max(...syncs.map((s) => s.syncDistance)) : null;
  const head = syncs.length ? String(Math.max(...syncs.map((s) => s.currentBlock))) : "-";
  const peers = syncs.length ? String(Math.max(...syncs.map((s) => s.peers))) : "-";
  const used = disk ? bytes(disk.usedBytes) : "-";
  const full = disk && disk.totalBytes ? `${Math.floor(((disk.totalBytes - disk.freeBytes) * 100) / disk.totalBytes)} % of its disk full` : "";
  return `<div class="tiles">${tile("tile-sync", "Sync progress", progress, behind === null ? "" : `${behind} behind`)}${tile("tile-peers", "Peers", peers)}${tile("tile-head", "Last block", head)}${tile("tile-disk", "Disk used", used, full)}</div>`;
}

// Head and peers over the last day, each scaled to its own range.
function historyChart(points) {
  if (points.length < 2) return `<p class="muted" id="history-chart">The chart starts after two reports a minute apart.</p>`;
  const W = 600, H = 120, t0 = points[0].at, t1 = points[points.length - 1].at;
  const line = (f, cls) => {
    const vs = points.map(f), lo = Math.min(...vs), hi = Math.max(...vs);
    const xy = points.map((p, i) => `${(((p.at - t0) / Math.max(1, t1 - t0)) * W).toFixed(1)},${(H - 4 - ((vs[i] - lo) / Math.max(1, hi - lo)) * (H - 8)).toFixed(1)}`);
    return `<polyline class="${cls}" fill="none" points="${xy.join(" ")}"/>`;
  };
  return `<figure id="history-chart" data-points="${points.length}"><svg viewBox="0 0 ${W} ${H}" width="${W}" height="${H}" role="img" aria-label="head and peers">
    ${line((p) => p.head, "chart-head")}${line((p) => p.peers, "chart-peers")}</svg>
    <figcaption><span class="chart-head-key">head</span> ${points[0].head} to ${points[points.length - 1].head}, <span class="chart-peers-key">peers</span> now ${points[points.length - 1].peers}, since ${new Date(t0).toLocaleString()}</figcaption></figure>`;
}

async function nodeView(name) {
  const [n, events, history] = await Promise.all([
    api("GET", "/nodes/" + encodeURIComponent(name)),
    api("GET", "/events?order=desc&limit=1000&node=" + encodeURIComponent(name)),
    api("GET", "/nodes/" + encodeURIComponent(name) + "/history"),
  ]);
  const client = (role) => n.spec.clients.find((c) => c.role === role);
  const ports = (role) => Object.entries((client(role) || {}).ports || {}).map(([k, v]) => `${k} ${v}`).join(", ");
  const sync = (s) =>
    s
      ? `head ${s.currentBlock}, ${s.syncDistance} behind (${s.progressPercent.toFixed(2)}%), ${s.peers} peers` +
        (s.executionOnline === false ? ", execution client unreachable" : "")
      : "";
  const procs = ((n.observed && n.observed.processes) || [])
    .map((p) => `<tr data-process="${esc(p.name)}"><td>${esc(p.name)}</td><td>${badge(p.status)}</td><td class="sync">${esc(sync(p.sync))}</td><td class="ports">${esc(ports(p.name))}</td><td>${esc(p.message)}</td></tr>`)
    .join("");
  const disk = n.observed && n.observed.disk;
  const button = (action, cls, permission) => {
    const ok = can(permission) && !n.deleted;
    const why = n.deleted ? "the node is being deleted" : `your role (${me.role}) may not do this`;
    return `<button id="action-${action}" class="${cls}" ${ok ? "" : "disabled"} title="${ok ? "" : esc(why)}">${action[0].toUpperCase() + action.slice(1)}</button>`;
  };
  live().innerHTML = `<h1>Node ${esc(n.name)} ${badge(n.phase, null, "node-phase")} ${n.nodeDown ? badge("down") : ""}</h1>
    <div class="card"><dl>
      <dt>Executor</dt><dd><a href="#/executors/${encodeURIComponent(n.executor)}">${esc(n.executor)}</a> ${badge(n.executorOnline ? "online" : "offline")}</dd>
      <dt>Desired state</dt><dd id="node-desired">${esc(n.spec.desiredState)}</dd>
      <dt>Revision</dt><dd>desired ${n.revision}, observed ${n.observed ? n.observed.revision : "none"} <span id="node-pending">${pending(n)}</span>${n.drift.liveness ? ' <span class="error">executor unreachable</span>' : ""}</dd>
      <dt>Restart generation</dt><dd>${n.spec.restartGeneration}</dd>
      <dt>Last report</dt><dd>${ago(n.observedAt)}</dd>
      <dt>Disk</dt><dd id="node-disk">${disk ? `${bytes(disk.usedBytes)} used by the node, ${bytes(disk.freeBytes)} free of ${bytes(disk.totalBytes)}` : "not reported"}</dd>
    </dl>
    <div class="actions">${button("start", "secondary", "operateNodes")}${button("stop", "secondary", "operateNodes")}${button("restart", "secondary", "operateNodes")}${button("edit", "secondary", "manageNodes")}${button("delete", "danger", "manageNodes")}</div></div>
    ${tiles(n)}
    <h2>Processes</h2><table><thead><tr><th>Process</th><th>Status</th><th>Sync</th><th>Ports</th><th>Message</th></tr></thead><tbody>${procs || `<tr><td colspan="5" class="muted">No report yet.</td></tr>`}</tbody></table>
    <h2>Last day</h2>${historyChart(history)}`;
  // Below the log pane (set up once, see nodeSetup): what is long.
  const more = $("#node-more");
  if (more) more.innerHTML = `<h2>Spec</h2><pre id="node-spec">${esc(JSON.stringify(n.spec, null, 2))}</pre><h2>Events</h2>${eventsTable(events.events.slice(0, 20))}`;
  for (const action of ["start", "stop", "restart"]) {
    $("#action-" + action).onclick = async () => {
      if (!confirm(`${action[0].toUpperCase() + action.slice(1)} node ${name}?`)) return;
      await act(() => api("POST", `/nodes/${encodeURIComponent(name)}/lifecycle`, { action }));
    };
  }
  $("#action-edit").textContent = "Edit configuration";
  $("#action-edit").onclick = () => openEdit(name).catch((err) => flash(err.message));
  $("#action-delete").onclick = async () => {
    if (!confirm(`Delete node ${name}? This is irreversible: its processes and data are removed.`)) return;
    await act(() => api("DELETE", "/nodes/" + encodeURIComponent(name)));
  };
}

// ---- the edit dialog ----
// Pre-filled with the node's spec: versions, resources, settings and disk
// size may change; what the node's data is of may not (the server refuses
// it too). "N changed" and the diff show what saving writes.

/** A spec as `path: value` lines, for the diff. */
function flatten(v, path, out) {
  if (v && typeof v === "object" && !Array.isArray(v)) {
    for (const [k, x] of Object.entries(v)) flatten(x, path ? `${path}.${k}` : k, out);
  } else if (Array.isArray(v) && v.some((x) => x && typeof x === "object")) {
    v.forEach((x, i) => flatten(x, `${path}[${i}]`, out));
  } else {
    out[path] = JSON.stringify(v);
  }
  return out;
}

function specDiff(before, after) {
  const a = flatten(before, "", {});
  const b = flatten(after, "", {});
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
  return keys.filter((k) => a[k] !== b[k]).map((k) => ({ path: k, before: a[k], after: b[k] }));
}

let editing = null; // { name, spec, chain }

async function openEdit(name) {
  const n = await api("GET", "/nodes/" + encodeURIComponent(name));
  const e = await api("GET", "/executors/" + encodeURIComponent(n.executor));
  const chain = ((e.capabilities || {}).chains || []).find((c) => c.chain === n.spec.chain) || { clients: [] };
  editing = { name, spec: n.spec, chain };
  const s = n.spec;
  const data = (s.storage || [])[0];
  const clients = s.clients
    .map((c, i) => {
      const sup = chain.clients.find((x) => x.role === c.role && x.client === c.client) || { client: c.client, overrides: [], managedKeys: [] };
      return `<fieldset class="card" data-role="${esc(c.role)}"><legend>${esc(c.role)}: ${esc(c.client)}</legend>
        <div class="row">${versionHtml(`edit-version-${i}`, sup, s.network, c.version)}
          <label>CPU (millicores) <input type="number" min="0" id="edit-cpu-${i}" value="${c.resources.cpuMillis || ""}"></label>
          <label>Memory (MiB) <input type="number" min="0" id="edit-mem-${i}" value="${c.resources.memoryMib || ""}"></label></div>
        <details ${Object.keys(c.configOverrides || {}).length ? "open" : ""}><summary>Settings</summary>${settingsHtml(`edit-settings-${i}`, sup, c.configOverrides || {})}</details>
      </fieldset>`;
    })
    .join("");
  const dialog = $("#edit-dialog");
  dialog.innerHTML = `<form id="edit-form" method="dialog">
      <h2>Edit configuration of ${esc(name)}</h2>
      <dl id="edit-fixed">
        <dt>Chain</dt><dd>${esc(s.chain)}</dd><dt>Network</dt><dd>${esc(s.network)}</dd><dt>Node type</dt><dd>${esc(s.nodeType)}</dd>
        <dt>Clients</dt><dd>${esc(s.clients.map((c) => `${c.role}: ${c.client}`).join(", "))}</dd>
        <dt>Storage class</dt><dd>${esc((data && data.storageClass) || "default")}</dd>
      </dl>
      <p class="muted" id="edit-why">These stay as deployed: the node's data is of its chain, network, node type and clients, and a volume keeps its storage class. Deploy another node to change them.</p>
      ${clients}
      ${data ? `<label>Disk (GiB) <input type="number" min="1" id="edit-disk" value="${data.sizeGib}"></label>` : ""}
      <p><strong id="edit-changed">0 changed</strong></p>
      <pre id="edit-diff"></pre>
      <ul id="edit-problems" class="error"></ul>
      <div class="actions"><button id="edit-cancel" class="secondary" type="button">Cancel</button><button id="edit-save" type="submit" disabled>Save</button></div>
    </form>`;
  const refresh = () => {
    let changes;
    try {
      changes = specDiff(editing.spec, editedSpec());
    } catch (err) {
      $("#edit-problems").innerHTML = `<li>${esc(err.message)}</li>`;
      return;
    }
    $("#edit-changed").textContent = `${changes.length} changed`;
    $("#edit-diff").textContent = changes.map((c) => `${c.path}: ${c.before ?? "(unset)"} -> ${c.after ?? "(unset)"}`).join("\n");
    $("#edit-save").disabled = !changes.length;
  };
  $("#edit-form").oninput = refresh;
  $("#edit-form").onchange = refresh;
  $("#edit-cancel").onclick = () => dialog.close();
  $("#edit-form").onsubmit = async (ev) => {
    ev.preventDefault();
    try {
      await api("PUT", `/nodes/${encodeURIComponent(name)}/spec`, { spec: editedSpec() });
      dialog.close();
      route();
    } catch (err) {
      const problems = problemsOf(err);
      $("#edit-problems").innerHTML = markProblems(problems, editFieldElement);
    }
  };
  dialog.showModal();
}

/** The node's spec with the dialog's values. */
function editedSpec() {
  const spec = JSON.parse(JSON.stringify(editing.spec));
  spec.clients.forEach((c, i) => {
    c.version = $(`#edit-version-${i}`).value.trim();
    c.resources = { cpuMillis: Number($(`#edit-cpu-${i}`).value || 0), memoryMib: Number($(`#edit-mem-${i}`).value || 0) };
    c.configOverrides = readSettings(`edit-settings-${i}`);
  });
  if ($("#edit-disk")) spec.storage[0].sizeGib = Number($("#edit-disk").value);
  return spec;
}

function editFieldElement(field) {
  const part = clientPart(field);
  if (part) return $(`#edit-${part.id}-${part.index}`);
  if (field.startsWith("storage[0]")) return $("#edit-disk");
  return null;
}

// ---- a node's logs ----

// The node page: its details refresh in #live; the log pane below streams
// one process's log (Server-Sent Events read with fetch, which sends the
// session header) and is not redrawn by the refresh.
const LOG_LINES_SHOWN = 1000;
let logs = null; // { ctl: AbortController, paused, held: [] }

function closeLogs() {
  if (logs) logs.ctl.abort();
  logs = null;
}

function nodeSetup(name) {
  $("#view").innerHTML = `<div id="live"></div>
    <div class="card" id="logs-card"><h2>Logs</h2>
      <div class="row">
        <label>Process <select id="logs-process"></select></label>
        <label>Level <select id="logs-level"><option value="">all</option><option value="debug">debug</option><option value="info">info</option><option value="warn">warn</option><option value="error">error</option></select></label>
        <label>Replay (lines) <input type="number" id="logs-tail" value="200" min="0" max="1000" style="width:6em"></label>
        <button id="logs-pause" class="secondary">Pause</button>
        <button id="logs-clear" class="secondary">Clear</button>
        <span id="logs-status" class="muted"></span>
      </div>
      <div id="logs" class="logs" role="log"></div>
    </div>
    <div id="node-more"></div>
    <dialog id="edit-dialog"></dialog>`;
  api("GET", "/nodes/" + encodeURIComponent(name))
    .then((n) => {
      const processes = n.spec.clients.map((c) => c.role).concat((n.spec.sidecars || []).map((s) => s.name));
      $("#logs-process").innerHTML = processes.map((p) => `<option>${esc(p)}</option>`).join("");
      openLogs(name);
    })
    .catch((err) => flash(err.message));
  for (const id of ["#logs-process", "#logs-level", "#logs-tail"]) $(id).onchange = () => openLogs(name);
  $("#logs-clear").onclick = () => {
    $("#logs").innerHTML = "";
    if (logs) logs.held = [];
    logStatus();
  };
  $("#logs-pause").onclick = () => {
    if (!logs) return;
    logs.paused = !logs.paused;
    $("#logs-pause").textContent = logs.paused ? "Resume" : "Pause";
    if (!logs.paused) showLines(logs.held.splice(0));
    logStatus();
  };
}

function logStatus(text) {
  if (text !== undefined) $("#logs-status").dataset.state = text;
  const state = $("#logs-status").dataset.state || "";
  const held = logs && logs.paused ? `paused, ${logs.held.length} new line${logs.held.length === 1 ? "" : "s"} held` : "";
  $("#logs-status").textContent = [state, held].filter(Boolean).join("; ");
}

function showLines(lines) {
  const pane = $("#logs");
  if (!pane || !lines.length) return;
  const atEnd = pane.scrollTop + pane.clientHeight >= pane.scrollHeight - 4;
  const frag = document.createDocumentFragment();
  for (const l of lines) {
    const div = document.createElement("div");
    div.className = "log-line level-" + l.level;
    div.dataset.level = l.level;
    div.textContent = l.text;
    frag.appendChild(div);
  }
  pane.appendChild(frag);
  while (pane.childElementCount > LOG_LINES_SHOWN) pane.firstElementChild.remove();
  if (atEnd) pane.scrollTop = pane.scrollHeight;
}

async function openLogs(name) {
  closeLogs();
  const mine = { ctl: new AbortController(), paused: false, held: [] };
  logs = mine;
  $("#logs").innerHTML = "";
  $("#logs-pause").textContent = "Pause";
  const q = new URLSearchParams({ process: $("#logs-process").value, tail: $("#logs-tail").value || "200", follow: "true" });
  if ($("#logs-level").value) q.set("level", $("#logs-level").value);
  logStatus("waiting for the executor...");
  const headers = { authorization: "Bearer " + sessionStorage.getItem("novacula-token"), accept: "text/event-stream", "x-novacula-client": "console" };
  const org = sessionStorage.getItem("novacula-org");
  if (org) headers["x-novacula-org"] = org;
  try {
    const res = await fetch(`/api/v1/nodes/${encodeURIComponent(name)}/logs?${q}`, { headers, signal: mine.ctl.signal });
    if (!res.ok) {
      const body = await res.json().catch(() => ({}));
      logStatus(body.error || `answered ${res.status}`);
      return;
    }
    const reader = res.body.getReader();
    const decoder = new TextDecoder();
    let pending = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done || logs !== mine) break;
      pending += decoder.decode(value, { stream: true });
      let end;
      while ((end = pending.indexOf("\n\n")) >= 0) {
        const block = pending.slice(0, end);
        pending = pending.slice(end + 2);
        let event = "message";
        const data = [];
        for (const line of block.split("\n")) {
          if (line.startsWith("event:")) event = line.slice(6).trim();
          else if (line.startsWith("data:")) data.push(line.slice(5).replace(/^ /, ""));
        }
        const text = data.join("\n");
        if (event === "line") {
          const l = JSON.parse(text);
          if (mine.paused) mine.held.push(l);
          else showLines([l]);
        } else if (event === "replayed") logStatus("streaming");
        else if (event === "skipped") logStatus(`${text} lines skipped (this page fell behind)`);
        else if (event === "error") logStatus(text);
        if (mine.paused) logStatus();
      }
    }
  } catch (err) {
    if (err.name !== "AbortError") logStatus(err.message);
  }
}

// ---- events ----

function eventsTable(events) {
  const rows = events
    .map(
      (e) => `<tr class="level-${esc(e.level)}" data-event="${e.seq}"><td>${e.seq}</td><td>${new Date(e.at).toLocaleString()}</td><td>${esc(e.level)}</td><td>${esc(e.message || e.kind)}</td><td>${esc(e.kind)}</td><td>${esc(e.actor)}</td>
      <td>${Object.entries(e.data || {}).map(([k, v]) => esc(k + "=" + v)).join(" ")}</td></tr>`
    )
    .join("");
  return `<table><thead><tr><th>#</th><th>At</th><th>Level</th><th>What happened</th><th>Kind</th><th>Actor</th><th>Data</th></tr></thead>
    <tbody>${rows || `<tr><td colspan="7" class="muted">No events.</td></tr>`}</tbody></table>`;
}

let eventsBefore = null; // cursor of the page shown; null: the newest

async function eventsView() {
  // one page, newest first; older pages through the cursor
  const query = "/events?order=desc&limit=200" + (eventsBefore === null ? "" : "&before=" + eventsBefore);
  const page = await api("GET", query);
  const older = page.events.length === 200 ? `<button id="events-older" class="secondary">Older</button>` : "";
  const newest = eventsBefore === null ? "" : `<button id="events-newest" class="secondary">Newest</button>`;
  live().innerHTML = `<h1>Events</h1>${eventsTable(page.events)}<div class="actions">${newest}${older}</div>`;
  if (older) $("#events-older").onclick = () => { eventsBefore = page.next; eventsView(); };
  if (newest) $("#events-newest").onclick = () => { eventsBefore = null; eventsView(); };
}

// ---- alerts ----

// Settings and channels are forms (set up once); incidents, deliveries and
// node policies refresh with the page.
function alertsSetup() {
  const manage = can("manageOrganization");
  const off = manage ? "" : "disabled";
  $("#view").innerHTML = `<h1>Alerts</h1>
    <div class="card" id="alert-settings"><h2>Rules</h2>
      <label class="inline"><input type="checkbox" id="rule-node-down" ${off}> node_down: a node that should run is stopped, in error or unreachable</label>
      <label class="inline"><input type="checkbox" id="rule-disk" ${off}> disk_usage: a node's disk is at least
        <input type="number" id="rule-disk-threshold" min="1" max="100" style="width:5em" ${off}> % full</label>
      <label class="inline"><input type="checkbox" id="rule-offline" ${off}> executor_offline: silent 30 s and then
        <input type="number" id="rule-offline-for" min="0" max="86400" style="width:7em" ${off}> s more</label>
      <label class="inline"><input type="checkbox" id="rule-stalled" ${off}> node_stalled: a running node's head has not moved for
        <input type="number" id="rule-stalled-for" min="60" max="86400" style="width:7em" ${off}> s</label>
      <label class="inline"><input type="checkbox" id="rule-distance" ${off}> sync_distance: a running node is more than
        <input type="number" id="rule-distance-threshold" min="1" style="width:7em" ${off}> blocks behind for
        <input type="number" id="rule-distance-for" min="0" max="86400" style="width:7em" ${off}> s</label>
      <label class="inline"><input type="checkbox" id="rule-unsupported" ${off}> executor_unsupported: an executor is out of the compatibility window for
        <input type="number" id="rule-unsupported-for" min="0" max="86400" style="width:7em" ${off}> s</label>
      <div class="actions"><button id="alert-settings-save" ${off}>Save rules</button><span class="muted" id="alert-settings-saved"></span></div>
    </div>
    <div class="card" id="alert-channels" ${manage ? "" : "hidden"}><h2>Channels</h2><div id="channels-table"></div>
      <div class="row">
        <label>Name <input id="channel-name"></label>
        <label>Kind <select id="channel-kind"><option value="webhook">Webhook (JSON)</option><option value="slack">Slack</option><option value="pagerduty">PagerDuty</option><option value="alertmanager">Alertmanager</option></select></label>
        <label>URL <input id="channel-url" size="40" placeholder="https://..."></label>
        <label>Secret (HMAC key, or PagerDuty routing key) <input id="channel-secret" type="password" autocomplete="off"></label>
      </div>
      <div class="actions"><button id="channel-add">Add channel</button></div>
    </div>
    <div class="card"><h2>Node policies</h2><p class="muted">A node's own values; "inherit" follows the rules above.</p><div id="policies"></div></div>`;
  const fill = (s) => {
    $("#rule-node-down").checked = s.nodeDown;
    $("#rule-disk").checked = s.diskUsage;
    $("#rule-disk-threshold").value = s.diskUsageThresholdPercent;
    $("#rule-offline").checked = s.executorOffline;
    $("#rule-offline-for").value = s.executorOfflineForSecs;
    $("#rule-stalled").checked = s.nodeStalled;
    $("#rule-stalled-for").value = s.nodeStalledForSecs;
    $("#rule-distance").checked = s.syncDistance;
    $("#rule-distance-threshold").value = s.syncDistanceThreshold;
    $("#rule-distance-for").value = s.syncDistanceForSecs;
    $("#rule-unsupported").checked = s.executorUnsupported;
    $("#rule-unsupported-for").value = s.executorUnsupportedForSecs;
  };
  api("GET", "/alerts/settings").then(fill).catch((err) => flash(err.message));
  policiesTable().catch((err) => flash(err.message));
  $("#alert-settings-save").onclick = async () => {
    try {
      const s = await api("PUT", "/alerts/settings", {
        nodeDown: $("#rule-node-down").checked,
        diskUsage: $("#rule-disk").checked,
        diskUsageThresholdPercent: Number($("#rule-disk-threshold").value),
        executorOffline: $("#rule-offline").checked,
        executorOfflineForSecs: Number($("#rule-offline-for").value),
        nodeStalled: $("#rule-stalled").checked,
        nodeStalledForSecs: Number($("#rule-stalled-for").value),
        syncDistance: $("#rule-distance").checked,
        syncDistanceThreshold: Number($("#rule-distance-threshold").value),
        syncDistanceForSecs: Number($("#rule-distance-for").value),
        executorUnsupported: $("#rule-unsupported").checked,
        executorUnsupportedForSecs: Number($("#rule-unsupported-for").value),
      });
      fill(s);
      $("#alert-settings-saved").textContent = "saved";
      await policiesTable();
    } catch (err) {
      flash(err.message);
    }
  };
  if (!manage) return;
  channelsTable().catch((err) => flash(err.message));
  $("#channel-add").onclick = async () => {
    const secret = $("#channel-secret").value;
    try {
      await api("POST", "/alerts/channels", { name: $("#channel-name").value, kind: $("#channel-kind").value, url: $("#channel-url").value, ...(secret ? { secret } : {}) });
      for (const f of ["#channel-name", "#channel-url", "#channel-secret"]) $(f).value = "";
      await channelsTable();
    } catch (err) {
      flash(err.message);
    }
  };
}

async function policiesTable() {
  const policies = await api("GET", "/alerts/policies");
  const edit = can("manageNodes") ? "" : "disabled";
  const tri = (v) => (v === null || v === undefined ? "inherit" : v ? "on" : "off");
  const select = (field, v) =>
    `<select data-field="${field}" ${edit}>${["inherit", "on", "off"].map((o) => `<option ${tri(v) === o ? "selected" : ""}>${o}</option>`).join("")}</select>`;
  const rows = policies
    .map(
      (p) => `<tr data-policy="${esc(p.node)}"><td><a href="#/nodes/${encodeURIComponent(p.node)}">${esc(p.node)}</a></td>
      <td>${select("nodeDown", p.override.nodeDown)} <span class="muted">${p.effective.nodeDown ? "on" : "off"}</span></td>
      <td>${select("diskUsage", p.override.diskUsage)} <span class="muted">${p.effective.diskUsage ? "on" : "off"}</span></td>
      <td><input type="number" min="1" max="100" style="width:5em" data-field="diskUsageThresholdPercent" placeholder="inherit" value="${p.override.diskUsageThresholdPercent ?? ""}" ${edit}>
        <span class="muted effective-threshold">${p.effective.diskUsageThresholdPercent} %</span></td>
      <td>${select("nodeStalled", p.override.nodeStalled)} <span class="muted">${p.effective.nodeStalled ? "on" : "off"}</span></td>
      <td>${select("syncDistance", p.override.syncDistance)} <span class="muted">${p.effective.syncDistance ? "on" : "off"}</span></td>
      <td><button class="secondary" data-policy-save="${esc(p.node)}" ${edit}>Save</button></td></tr>`
    )
    .join("");
  $("#policies").innerHTML = `<table><thead><tr><th>Node</th><th>node_down</th><th>disk_usage</th><th>Threshold (effective)</th><th>node_stalled</th><th>sync_distance</th><th></th></tr></thead>
    <tbody>${rows || `<tr><td colspan="7" class="muted">No nodes.</td></tr>`}</tbody></table>`;
  document.querySelectorAll("[data-policy-save]").forEach((b) => {
    b.onclick = async () => {
      const row = b.closest("tr");
      const field = (f) => row.querySelector(`[data-field="${f}"]`).value;
      const flag = (f) => ({ inherit: null, on: true, off: false })[field(f)];
      const threshold = field("diskUsageThresholdPercent");
      try {
        await api("PUT", `/nodes/${encodeURIComponent(b.dataset.policySave)}/alert-policy`, {
          nodeDown: flag("nodeDown"),
          diskUsage: flag("diskUsage"),
          diskUsageThresholdPercent: threshold === "" ? null : Number(threshold),
          nodeStalled: flag("nodeStalled"),
          syncDistance: flag("syncDistance"),
        });
        await policiesTable();
      } catch (err) {
        flash(err.message);
      }
    };
  });
}

async function channelsTable() {
  const channels = await api("GET", "/alerts/channels");
  const rows = channels
    .map(
      (c) => `<tr data-channel="${esc(c.id)}"><td>${esc(c.name)}</td><td>${esc(c.kind)}</td><td class="url">${esc(c.url)}</td><td>${c.hasSecret ? "set" : "none"}</td>
      <td>${badge(c.enabled ? "enabled" : "disabled", c.enabled ? "online" : "offline")}</td>
      <td><button class="secondary" data-channel-test="${esc(c.id)}">Test</button> <button class="secondary" data-channel-toggle="${esc(c.id)}" data-enabled="${c.enabled}">${c.enabled ? "Disable" : "Enable"}</button>
      <button class="danger" data-channel-delete="${esc(c.id)}">Delete</button> <span class="muted" data-channel-result="${esc(c.id)}"></span></td></tr>`
    )
    .join("");
  $("#channels-table").innerHTML = `<table><thead><tr><th>Name</th><th>Kind</th><th>URL</th><th>Secret</th><th>State</th><th></th></tr></thead>
    <tbody>${rows || `<tr><td colspan="6" class="muted">No channels: incidents are only in the console and the events feed.</td></tr>`}</tbody></table>`;
  const path = (id) => "/alerts/channels/" + encodeURIComponent(id);
  document.querySelectorAll("[data-channel-test]").forEach((b) => {
    b.onclick = async () => {
      const id = b.dataset.channelTest;
      const out = document.querySelector(`[data-channel-result="${id}"]`);
      out.textContent = "sending...";
      try {
        const d = await api("POST", path(id) + "/test");
        out.textContent = d.delivered ? `delivered (${d.responseCode}, ${d.latencyMs} ms)` : `failed: ${d.error || d.responseCode}`;
      } catch (err) {
        out.textContent = "";
        flash(err.message);
      }
    };
  });
  document.querySelectorAll("[data-channel-toggle]").forEach((b) => {
    b.onclick = () => act(() => api("PUT", path(b.dataset.channelToggle), { enabled: b.dataset.enabled !== "true" })).then(channelsTable);
  });
  document.querySelectorAll("[data-channel-delete]").forEach((b) => {
    b.onclick = async () => {
      if (!confirm("Delete this channel? Notifications not yet delivered to it are dropped.")) return;
      await act(() => api("DELETE", path(b.dataset.channelDelete)));
      await channelsTable();
    };
  });
}

async function alertsView() {
  const [open, all, deliveries] = await Promise.all([
    api("GET", "/incidents?status=open&limit=500"),
    api("GET", "/incidents?status=all&limit=50"),
    api("GET", "/alerts/deliveries?limit=50"),
  ]);
  const when = (t) => (t ? new Date(t).toLocaleString() : "");
  const incidentRows = (list) =>
    list
      .map(
        (i) => `<tr data-incident="${esc(i.id)}" class="${i.resolvedAt ? "" : "level-error"}"><td>${esc(i.id)}</td><td>${esc(i.rule)}</td><td>${esc(i.subject.kind)} ${esc(i.subject.name)}</td>
        <td>${esc(i.message)}</td><td>${badge(i.resolvedAt ? "resolved" : "open", i.resolvedAt ? "online" : "down")}</td><td>${when(i.openedAt)}</td><td>${when(i.resolvedAt)}</td></tr>`
      )
      .join("");
  const head = `<thead><tr><th>Id</th><th>Rule</th><th>Subject</th><th>Message</th><th>Status</th><th>Opened</th><th>Resolved</th></tr></thead>`;
  const replay = can("manageOrganization");
  const deliveryRows = deliveries
    .map(
      (d) => `<tr data-delivery="${esc(d.id)}" class="${d.delivered ? "" : "level-warn"}"><td>${when(d.at)}</td><td>${esc(d.channelName)}</td><td>${esc(d.rule)} ${esc(d.status)}</td>
      <td>${d.attempt}</td><td>${d.delivered ? "delivered" : d.finalFailure ? "given up" : "failed"}</td><td>${d.responseCode ?? ""}</td><td>${d.latencyMs} ms</td><td>${esc(d.error)}</td>
      <td>${replay && d.status !== "test" ? `<button class="secondary" data-replay="${esc(d.id)}">Replay</button>` : ""}</td></tr>`
    )
    .join("");
  live().innerHTML = `<h2>Open incidents (${open.length})</h2><table id="incidents-open">${head}<tbody>${incidentRows(open) || `<tr><td colspan="7" class="muted">Nothing is firing.</td></tr>`}</tbody></table>
    <h2>Recent incidents</h2><table id="incidents-recent">${head}<tbody>${incidentRows(all) || `<tr><td colspan="7" class="muted">No incidents yet.</td></tr>`}</tbody></table>
    <h2>Deliveries</h2><table id="deliveries"><thead><tr><th>At</th><th>Channel</th><th>Notification</th><th>Attempt</th><th>Result</th><th>Code</th><th>Latency</th><th>Error</th><th></th></tr></thead>
    <tbody>${deliveryRows || `<tr><td colspan="9" class="muted">No deliveries.</td></tr>`}</tbody></table>`;
  document.querySelectorAll("[data-replay]").forEach((b) => {
    b.onclick = async () => {
      try {
        await api("POST", `/alerts/deliveries/${encodeURIComponent(b.dataset.replay)}/replay`);
        b.textContent = "queued";
        b.disabled = true;
      } catch (err) {
        flash(err.message);
      }
    };
  });
}

// ---- members ----

function membersSetup() {
  const roleOptions = (selected) => me.grantableRoles.map((r) => `<option ${r === selected ? "selected" : ""}>${esc(r)}</option>`).join("");
  const org = me.org;
  const active = org.deactivated ? "Reactivate" : "Deactivate";
  $("#view").innerHTML = `<h1>Members of ${esc(org.name)}</h1>
    <div class="card" id="org-settings" ${can("manageOrganization") ? "" : "hidden"}>
      <label>Organization name (its id, ${esc(org.id)}, stays) <input id="org-name-input" value="${esc(org.name)}"></label>
      <label>Slug (another name for it in requests and sign-in) <input id="org-slug-input" value="${esc(org.slug)}"></label>
      <div class="actions"><img class="org-logo" id="org-logo-preview" alt="${esc(org.name)} logo" hidden>
        <label>Logo (PNG or JPEG, at most 256 KiB) <input id="org-logo-file" type="file" accept="image/png,image/jpeg"></label>
        <button id="org-logo-remove" class="secondary" ${org.logoUpdatedAt ? "" : "hidden"}>Remove logo</button></div>
      <div class="actions"><button id="org-save" class="secondary">Save name and slug</button>
        <button id="org-toggle" class="danger" ${can("ownOrganization") ? "" : "hidden"}>${active} organization</button></div>
    </div>
    <details class="card" id="member-add" ${can("manageMembers") ? "" : "hidden"}>
      <summary>Add a member</summary>
      <label>Username <input id="member-name"></label>
      <label>Password (at least 8 characters; they change it under Profile) <input id="member-password" type="password" autocomplete="new-password"></label>
      <label>Role <select id="member-role">${roleOptions("member")}</select></label>
      <div class="actions"><button id="member-add-submit">Add</button></div>
    </details>
    <details class="card" id="invite-form" ${can("manageMembers") ? "" : "hidden"}>
      <summary>Invite by email</summary>
      <label>Email <input id="invite-email" type="email"></label>
      <label>Role <select id="invite-role">${me.role === "owner" ? roleOptions("member") : "<option>member</option>"}</select></label>
      <div class="actions"><button id="invite-submit">Invite</button></div>
      <div id="invite-result"></div>
    </details>
    <div id="members"></div>
    <div id="invitations"></div>
    <div class="actions"><button id="member-leave" class="secondary" ${me.role === "owner" ? "disabled title='the owner transfers ownership first'" : ""}>Leave ${esc(me.orgId)}</button></div>`;
  showLogo(org).catch(() => {});
  $("#org-logo-file").onchange = async () => {
    const file = $("#org-logo-file").files[0];
    if (file && (await act(() => api("PUT", "/org/logo", file)))) await start();
  };
  $("#org-logo-remove").onclick = async () => {
    if (await act(() => api("DELETE", "/org/logo"))) await start();
  };
  $("#org-save").onclick = async () => {
    if (await act(() => api("PUT", "/org", { name: $("#org-name-input").value, slug: $("#org-slug-input").value.trim() || undefined }))) await start();
  };
  $("#org-toggle").onclick = async () => {
    const off = !org.deactivated;
    if (off && !confirm(`Deactivate ${org.id}? Its data is kept, but its members are signed out of it and its executors refused until you reactivate it.`)) return;
    if (await act(() => api("POST", off ? "/org/deactivate" : "/org/reactivate"))) await start();
  };
  $("#invite-submit").onclick = async () => {
    try {
      const r = await api("POST", "/invitations", { email: $("#invite-email").value.trim(), role: $("#invite-role").value });
      $("#invite-result").innerHTML = `<p>Invitation link, shown this once${r.emailed ? " (mailed too)" : ""}:</p>
        <div class="secret" id="invite-link">${esc(location.origin + r.path)}</div>${r.emailError ? `<p class="error">Not mailed: ${esc(r.emailError)}</p>` : ""}`;
      invitationsTable().catch((err) => flash(err.message));
    } catch (err) {
      flash(err.message);
    }
  };
  $("#member-add-submit").onclick = async () => {
    const body = { username: $("#member-name").value.trim(), password: $("#member-password").value, role: $("#member-role").value };
    await act(() => api("POST", "/users", body));
  };
  $("#member-leave").onclick = async () => {
    if (!confirm(`Leave organization ${me.orgId}? Only an owner or admin can add you again.`)) return;
    await act(() => api("DELETE", "/me/membership"));
    sessionStorage.removeItem("novacula-org");
    await start().catch(() => showLogin());
  };
  membersTable(roleOptions).catch((err) => flash(err.message));
  if (can("manageMembers")) invitationsTable().catch((err) => flash(err.message));
}

async function invitationsTable() {
  const list = await api("GET", "/invitations");
  const rows = list
    .map((i) => {
      const open = i.state === "pending" || i.state === "expired";
      const buttons = open ? `<button class="secondary" data-inv-resend="${esc(i.id)}">Resend</button> <button class="danger" data-inv-cancel="${esc(i.id)}">Cancel</button>` : "";
      return `<tr data-invitation="${esc(i.id)}"><td>${esc(i.email)}</td><td>${esc(i.role)}</td><td>${badge(i.state, i.state === "pending" ? "starting" : i.state === "accepted" ? "online" : "down")}</td>
        <td>${esc(i.invitedBy)}</td><td>${esc(i.acceptedBy)}</td><td>${new Date(i.expiresAt).toLocaleDateString()}</td><td>${buttons}</td></tr>`;
    })
    .join("");
  $("#invitations").innerHTML = `<h2>Invitations</h2><table><thead><tr><th>Email</th><th>Role</th><th>State</th><th>By</th><th>Accepted by</th><th>Expires</th><th></th></tr></thead>
    <tbody>${rows || `<tr><td colspan="7" class="muted">No invitations.</td></tr>`}</tbody></table>`;
  const path = (id) => "/invitations/" + encodeURIComponent(id);
  document.querySelectorAll("[data-inv-resend]").forEach((b) => {
    b.onclick = async () => {
      try {
        const r = await api("POST", path(b.dataset.invResend) + "/resend");
        $("#invite-form").open = true;
        $("#invite-result").innerHTML = `<p>New link for ${esc(r.email)} (the old one no longer works)${r.emailed ? ", mailed" : ""}:</p><div class="secret" id="invite-link">${esc(location.origin + r.path)}</div>`;
        invitationsTable().catch((err) => flash(err.message));
      } catch (err) {
        flash(err.message);
      }
    };
  });
  document.querySelectorAll("[data-inv-cancel]").forEach((b) => {
    b.onclick = async () => {
      if (!confirm("Cancel this invitation? Its link stops working.")) return;
      await api("DELETE", path(b.dataset.invCancel)).catch((err) => flash(err.message));
      invitationsTable().catch((err) => flash(err.message));
    };
  });
}

// ---- accepting an invitation (signed in or not) ----

async function inviteCard(el, token) {
  let offer;
  try {
    offer = await api("POST", "/invitations/preview", { token });
  } catch (err) {
    el.innerHTML = `<h1>Invitation</h1><p class="error" id="invite-error">${esc(err.message)}</p>`;
    return;
  }
  const signedIn = !!sessionStorage.getItem("novacula-token") && me;
  el.innerHTML = `<h1>Join ${esc(offer.orgId)}</h1>
    <p id="invite-offer">${esc(offer.invitedBy)} invites ${esc(offer.email)} to <strong>${esc(offer.orgId)}</strong> as <strong>${esc(offer.role)}</strong>.</p>
    ${
      signedIn
        ? `<div class="actions"><button id="invite-accept">Join as ${esc(me.username)}</button></div>`
        : `<label>Username (lowercase letters, digits, '-') <input id="invite-username" autocomplete="username"></label>
           <label>Password (at least 8 characters) <input id="invite-password" type="password" autocomplete="new-password"></label>
           <div class="actions"><button id="invite-accept">Create account and join</button></div>
           <p class="muted">Have an account already? Sign in first, then open this link again.</p>`
    }
    <p class="error" id="invite-error"></p>`;
  $("#invite-accept").onclick = async () => {
    const body = signedIn ? { token } : { token, username: $("#invite-username").value.trim(), password: $("#invite-password").value };
    try {
      const r = await api("POST", "/invitations/accept", body);
      sessionStorage.setItem("novacula-token", r.token);
      sessionStorage.setItem("novacula-org", r.user.orgId);
      $("#invite").hidden = true;
      location.hash = "#/nodes";
      await start();
    } catch (err) {
      $("#invite-error").textContent = err.message;
    }
  };
}

function inviteSetup(token) {
  inviteCard($("#view"), token);
}

function showInvite(token) {
  $("#login").hidden = true;
  $("#app").hidden = true;
  $("#invite").hidden = false;
  inviteCard($("#invite-card"), token);
}

async function membersTable(roleOptions) {
  const users = await api("GET", "/users");
  const rows = users
    .map((u) => {
      const role = u.manageable && u.role !== "owner" ? `<select data-role-of="${esc(u.username)}">${roleOptions(u.role)}</select>` : esc(u.role);
      const buttons = u.manageable
        ? `<button class="secondary" data-toggle="${esc(u.username)}">${u.disabled ? "Enable" : "Disable"}</button>` +
          (u.role !== "owner" ? ` <button class="danger" data-remove="${esc(u.username)}">Remove</button>` : "") +
          (can("ownOrganization") ? ` <button class="secondary" data-owner="${esc(u.username)}">Make owner</button>` : "")
        : "";
      return `<tr data-user="${esc(u.username)}"><td>${esc(u.username)}${u.username === me.username ? " (you)" : ""}</td><td>${role}</td>
        <td>${u.disabled ? badge("disabled", "down") : badge("active", "online")}</td><td>${new Date(u.createdAt).toLocaleDateString()}</td><td>${buttons}</td></tr>`;
    })
    .join("");
  $("#members").innerHTML = `<table><thead><tr><th>User</th><th>Role</th><th>State</th><th>Added</th><th></th></tr></thead><tbody>${rows}</tbody></table>`;
  const path = (name) => "/users/" + encodeURIComponent(name);
  document.querySelectorAll("[data-role-of]").forEach((sel) => {
    sel.onchange = async () => {
      await act(() => api("PUT", path(sel.dataset.roleOf), { role: sel.value }));
    };
  });
  document.querySelectorAll("[data-toggle]").forEach((b) => {
    b.onclick = async () => {
      const name = b.dataset.toggle;
      const disabling = b.textContent === "Disable";
      if (disabling && !confirm(`Disable ${name}? They are signed out at once and cannot sign in.`)) return;
      await act(() => api("POST", path(name) + (disabling ? "/disable" : "/enable")));
    };
  });
  document.querySelectorAll("[data-remove]").forEach((b) => {
    b.onclick = async () => {
      if (!confirm(`Remove ${b.dataset.remove} from ${me.orgId}? Their account stays.`)) return;
      await act(() => api("DELETE", path(b.dataset.remove)));
    };
  });
  document.querySelectorAll("[data-owner]").forEach((b) => {
    b.onclick = async () => {
      if (!confirm(`Make ${b.dataset.owner} the owner of ${me.orgId}? You become an admin.`)) return;
      if (await act(() => api("POST", "/ownership", { username: b.dataset.owner }))) await start();
    };
  });
}

// ---- profile ----

function profileSetup() {
  $("#view").innerHTML = `<h1>${esc(me.username)}</h1>
    <div class="card"><dl><dt>Organization</dt><dd>${esc(me.orgId)}</dd><dt>Role</dt><dd>${esc(me.role)}</dd>
      <dt>May</dt><dd id="profile-permissions">${me.permissions.map(esc).join(", ")}</dd></dl></div>
    <div class="card">
      <h2>Change password</h2>
      <label>Current password <input id="password-current" type="password" autocomplete="current-password"></label>
      <label>New password (at least 8 characters) <input id="password-new" type="password" autocomplete="new-password"></label>
      <div class="actions"><button id="password-submit">Change password</button></div>
      <p class="muted">Every other session of yours is signed out.</p>
    </div>
    <h2>Your recent activity in ${esc(me.orgId)}</h2><div id="my-activity"></div>`;
  api("GET", "/me/activity?limit=20").then((page) => ($("#my-activity").innerHTML = auditTable(page.entries))).catch((err) => flash(err.message));
  $("#password-submit").onclick = async () => {
    const body = { currentPassword: $("#password-current").value, newPassword: $("#password-new").value };
    const r = await act(() => api("PUT", "/me/password", body));
    if (r) {
      sessionStorage.setItem("novacula-token", r.token);
      flash("Password changed.");
    }
  };
}

// ---- audit log ----

function auditTable(entries) {
  const rows = entries
    .map(
      (e) => `<tr data-audit="${e.seq}"><td>${e.seq}</td><td>${new Date(e.at).toLocaleString()}</td><td>${esc(e.actorName)}${e.impersonator ? ` <span class="muted">(by ${esc(e.impersonator)})</span>` : ""}</td><td>${esc(e.action)}</td>
      <td>${esc(e.targetKind)} ${esc(e.targetId)}</td><td>${esc(e.source)}</td><td>${Object.entries(e.details || {}).map(([k, v]) => esc(k + "=" + v)).join(" ")}</td></tr>`
    )
    .join("");
  return `<table><thead><tr><th>#</th><th>At</th><th>Actor</th><th>Action</th><th>Target</th><th>Via</th><th>Details</th></tr></thead>
    <tbody>${rows || `<tr><td colspan="7" class="muted">No entries.</td></tr>`}</tbody></table>`;
}

function auditSetup() {
  $("#view").innerHTML = `<h1>Audit log</h1>
    <form id="audit-filter" class="card actions">
      <label>Actor <input id="audit-actor" placeholder="username or key id"></label>
      <label>Action <input id="audit-action" placeholder="e.g. user.role.changed"></label>
      <label>Target <input id="audit-target" placeholder="user, key, executor or node"></label>
      <button id="audit-apply" type="submit">Filter</button>
    </form><div id="audit"></div>`;
  let before = 0;
  const load = async () => {
    const q = new URLSearchParams({ limit: "100", before: String(before) });
    for (const f of ["actor", "action", "target"]) if ($("#audit-" + f).value.trim()) q.set(f, $("#audit-" + f).value.trim());
    try {
      const page = await api("GET", "/audit?" + q);
      $("#audit").innerHTML = auditTable(page.entries) + `<div class="actions"><button id="audit-newest" class="secondary" ${before ? "" : "disabled"}>Newest</button>
        <button id="audit-older" class="secondary" ${page.next ? "" : "disabled"}>Older</button></div>`;
      $("#audit-older").onclick = () => { before = page.next; load(); };
      $("#audit-newest").onclick = () => { before = 0; load(); };
    } catch (err) {
      flash(err.message);
    }
  };
  $("#audit-filter").onsubmit = (ev) => {
    ev.preventDefault();
    before = 0;
    load();
  };
  load();
}

// ---- platform (administrators named by the server's configuration) ----

function platformSetup() {
  $("#view").innerHTML = `<h1>Platform</h1>
    <h2>Organizations</h2><div id="platform-orgs"></div>
    <h2>Act as a user (support)</h2>
    <form id="impersonate-form" class="card actions">
      <label>Username <input id="impersonate-username" required></label>
      <label>Organization (default: their first) <input id="impersonate-org"></label>
      <label>Reason <input id="impersonate-reason" placeholder="ticket, incident"></label>
      <button type="submit">Impersonate</button>
    </form>
    <p class="muted">For one hour at most; a banner stays up while it lasts, and everything done is audited with both names.</p>
    <h2>Releases</h2><div id="platform-releases"></div>
    <form id="release-form" class="card actions">
      <label>Channel <select id="release-channel"><option>stable</option><option>beta</option><option>dev</option></select></label>
      <label>Kind <select id="release-kind"><option>agent</option><option>operator</option></select></label>
      <label>Version <input id="release-version" required placeholder="1.4.0"></label>
      <label>Artifact <input id="release-artifact" required placeholder="file in the hosts' release directory, or image@sha256:..."></label>
      <label>SHA-256 (agent) <input id="release-sha256"></label>
      <button type="submit">Publish</button>
    </form>
    <h2>Platform audit log</h2><div id="platform-audit"></div>`;
  $("#impersonate-form").onsubmit = async (ev) => {
    ev.preventDefault();
    const body = { username: $("#impersonate-username").value.trim() };
    if ($("#impersonate-org").value.trim()) body.org = $("#impersonate-org").value.trim();
    if ($("#impersonate-reason").value.trim()) body.reason = $("#impersonate-reason").value.trim();
    try {
      const r = await api("POST", "/platform/impersonate", body);
      sessionStorage.setItem("novacula-admin-token", sessionStorage.getItem("novacula-token"));
      sessionStorage.setItem("novacula-admin-org", sessionStorage.getItem("novacula-org") || "");
      sessionStorage.setItem("novacula-token", r.token);
      sessionStorage.setItem("novacula-org", r.user.orgId);
      location.hash = "#/nodes";
      await start();
    } catch (err) {
      flash(err.message);
    }
  };
  $("#release-form").onsubmit = async (ev) => {
    ev.preventDefault();
    const body = { channel: $("#release-channel").value, kind: $("#release-kind").value, version: $("#release-version").value.trim(), artifact: $("#release-artifact").value.trim() };
    if ($("#release-sha256").value.trim()) body.sha256 = $("#release-sha256").value.trim();
    await act(() => api("PUT", "/platform/releases", body));
  };
  platformTables().catch((err) => flash(err.message));
}

async function platformTables() {
  const [orgs, releases, audit] = await Promise.all([api("GET", "/platform/orgs"), api("GET", "/platform/releases"), api("GET", "/platform/audit?limit=50")]);
  const rows = orgs
    .map(
      (o) => `<tr data-platform-org="${esc(o.id)}"><td>${esc(o.id)}</td><td>${esc(o.name)}</td><td>${esc(o.owner)}</td><td>${o.members}</td>
      <td>${badge(o.deactivated ? "deactivated" : "active", o.deactivated ? "down" : "online")}</td>
      <td>${o.deactivated ? `<button class="secondary" data-org-reactivate="${esc(o.id)}">Reactivate</button>` : `<button class="danger" data-org-deactivate="${esc(o.id)}">Deactivate</button>`}</td></tr>`
    )
    .join("");
  $("#platform-orgs").innerHTML = `<table><thead><tr><th>Id</th><th>Name</th><th>Owner</th><th>Members</th><th>State</th><th></th></tr></thead><tbody>${rows}</tbody></table>`;
  document.querySelectorAll("[data-org-deactivate]").forEach((b) => {
    b.onclick = () => {
      if (confirm(`Deactivate ${b.dataset.orgDeactivate}? Its members and executors are refused until the platform reactivates it.`)) {
        act(() => api("POST", `/platform/orgs/${encodeURIComponent(b.dataset.orgDeactivate)}/deactivate`));
      }
    };
  });
  document.querySelectorAll("[data-org-reactivate]").forEach((b) => {
    b.onclick = () => act(() => api("POST", `/platform/orgs/${encodeURIComponent(b.dataset.orgReactivate)}/reactivate`));
  });
  const rel = releases.map((r) => `<tr><td>${esc(r.spec.channel)}</td><td>${esc(r.kind)}</td><td>${esc(r.spec.version)}</td><td>${esc(r.spec.artifact)}</td><td>${esc(r.setBy)}</td></tr>`).join("");
  $("#platform-releases").innerHTML = `<table><thead><tr><th>Channel</th><th>Kind</th><th>Version</th><th>Artifact</th><th>By</th></tr></thead>
    <tbody>${rel || `<tr><td colspan="5" class="muted">No releases: executors are offered only their organizations' own upgrades.</td></tr>`}</tbody></table>`;
  $("#platform-audit").innerHTML = auditTable(audit.entries);
}

// ---- API keys ----

function keyState(k) {
  return k.revokedAt ? "revoked" : k.expired ? "expired" : "active";
}

function keysSetup() {
  $("#view").innerHTML = `<h1>API keys</h1><div id="key-result"></div><div id="keys"></div>
    <p class="muted">Rotating gives a new key for the same executor and lifetime and revokes the old one at once: put the new key in the
    executor's configuration right away (its heartbeats with the old key are refused). A key's "last used" moves to the new key with its next heartbeat.</p>`;
  keysTable().catch((err) => flash(err.message));
}

async function keysTable() {
  const keys = await api("GET", "/keys");
  const manage = can("manageExecutors");
  const rows = keys
    .map((k) => {
      const state = keyState(k);
      const buttons = !manage
        ? ""
        : state === "revoked"
          ? `<button class="danger" data-key-delete="${esc(k.id)}">Delete</button>`
          : `<button class="secondary" data-key-rotate="${esc(k.id)}">Rotate</button> <button class="danger" data-key-revoke="${esc(k.id)}">Revoke</button>`;
      return `<tr data-key="${esc(k.id)}"><td>${esc(k.id)}</td><td>${esc(k.label)}</td><td>${esc(k.executor)}</td>
        <td>${badge(state, state === "active" ? "online" : "down")}</td>
        <td>${k.expiresAt ? esc(new Date(k.expiresAt).toISOString().slice(0, 10)) : "never"}</td><td>${ago(k.lastUsedAt)}</td><td>${buttons}</td></tr>`;
    })
    .join("");
  $("#keys").innerHTML = `<table><thead><tr><th>Id</th><th>Label</th><th>Executor</th><th>State</th><th>Expires</th><th>Last used</th><th></th></tr></thead>
    <tbody>${rows || `<tr><td colspan="7" class="muted">No keys.</td></tr>`}</tbody></table>`;
  const again = () => keysTable().catch((err) => flash(err.message));
  const path = (id) => "/keys/" + encodeURIComponent(id);
  document.querySelectorAll("[data-key-rotate]").forEach((b) => {
    b.onclick = async () => {
      const id = b.dataset.keyRotate;
      if (!confirm(`Rotate key ${id}? It stops working at once; the new key is shown once.`)) return;
      try {
        const r = await api("POST", path(id) + "/rotate");
        $("#key-result").innerHTML = `<div class="card"><p><strong>New API key</strong> for ${esc(r.executor || "the executor")}, shown this once:</p>
          <div class="secret" id="rotated-key">${esc(r.key)}</div></div>`;
        again();
      } catch (err) {
        flash(err.message);
      }
    };
  });
  for (const [attr, verb] of [["keyRevoke", "revoke"], ["keyDelete", "delete"]]) {
    document.querySelectorAll(`[data-key-${verb}]`).forEach((b) => {
      b.onclick = async () => {
        const id = b.dataset[attr];
        if (!confirm(`${verb[0].toUpperCase() + verb.slice(1)} key ${id}?`)) return;
        try {
          await api(verb === "revoke" ? "POST" : "DELETE", verb === "revoke" ? path(id) + "/revoke" : path(id));
          again();
        } catch (err) {
          flash(err.message);
        }
      };
    });
  }
}

// ---- connect a new executor ----

function connectSetup() {
  const cp = location.origin;
  $("#view").innerHTML = `<h1>Connect new executor</h1>
    <div class="card">
      <label>Executor name (lowercase DNS label) <input id="connect-name" value="edge-1"></label>
      <label>Backend <select id="connect-kind"><option value="agent">agent (systemd host)</option><option value="operator">operator (Kubernetes)</option></select></label>
      <label>Release channel <select id="connect-channel"><option>stable</option><option>beta</option><option>dev</option></select></label>
      <div class="actions"><button id="connect-submit" ${can("manageExecutors") ? "" : "disabled"}>Create API key</button></div>
    </div>
    <div id="connect-result"></div>`;
  $("#connect-submit").onclick = async () => {
    const name = $("#connect-name").value.trim();
    const kind = $("#connect-kind").value;
    const channel = $("#connect-channel").value;
    try {
      const r = await api("POST", "/keys", { label: `${kind} ${name}`, executor: name });
      const cmd =
        kind === "agent"
          ? // the key goes through a 0600 file, never a command line; install keeps it in /etc/novacula/agent.toml (0600)
            `(umask 077; cat > novacula-key <<'KEY'\n${r.key}\nKEY\n)\nsudo novacula-agent install --control-plane ${cp} --api-key-file novacula-key \\\n  --name ${name} --channel ${channel} && rm novacula-key`
          : `kubectl create namespace validators\nkubectl -n validators create secret generic novacula-api-key --from-literal=api-key=${r.key}\nhelm install novacula-operator charts/novacula-operator -n validators \\\n  --set executor.name=${name} --set executor.channel=${channel} --set controlPlane.url=${cp}`;
      $("#connect-result").innerHTML = `<div class="card">
        <p><strong>API key</strong>, shown this once; it is stored hashed:</p>
        <div class="secret" id="connect-key">${esc(r.key)}</div>
        <p>Install command:</p><pre id="connect-command">${esc(cmd)}</pre>
        <p class="muted">The executor appears under <a href="#/executors">Executors</a> after its first heartbeat.
        The key ${r.expiresAt ? "expires on " + esc(new Date(r.expiresAt).toISOString().slice(0, 10)) : "never expires"}; rotate it under <a href="#/keys">API keys</a>.</p></div>`;
    } catch (err) {
      flash(err.message);
    }
  };
}

// ---- boot ----

const invited = location.hash.match(/^#\/invite\/(.+)$/);
if (sessionStorage.getItem("novacula-token")) start().catch(showLogin);
else if (invited) showInvite(decodeURIComponent(invited[1]));
else showLogin();
