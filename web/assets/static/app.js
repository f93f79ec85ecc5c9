// plat dashboard: shared helpers, live updates and the apps and tokens
// pages. No framework: fetch, EventSource, WebSocket and the DOM. The app
// page is apppage.js, the forms and dialogs actions.js; start.js routes.
"use strict";

const csrf = document.querySelector('meta[name="csrf-token"]').content;
const main = document.getElementById("main");

// el builds an element; strings become text nodes, never HTML.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c !== undefined && c !== null && c !== false) e.append(c instanceof Node ? c : String(c));
  }
  return e;
}

class AuthError extends Error {}

// api calls the control API with the session cookie; state changes carry
// the CSRF token. A lost session sends the browser to the login page and
// back here after it.
async function api(path, opts = {}) {
  const headers = { Accept: "application/json", ...(opts.headers || {}) };
  if (opts.method && opts.method !== "GET") headers["X-CSRF-Token"] = csrf;
  if (opts.body && typeof opts.body !== "string") {
    opts.body = JSON.stringify(opts.body);
    headers["Content-Type"] = "application/json";
  }
  const resp = await fetch(path, { ...opts, headers, credentials: "same-origin" });
  if (resp.status === 401) {
    toLogin();
    throw new AuthError("session ended");
  }
  return resp;
}

function toLogin() {
  const here = location.pathname + location.search;
  location.href = here === "/" ? "/login" : `/login?next=${encodeURIComponent(here)}`;
}

// errorOf reads the API's {"error": ...} answer.
async function errorOf(resp) {
  try { return (await resp.json()).error || resp.statusText; } catch { return resp.statusText; }
}

async function json(path) {
  const resp = await api(path);
  if (!resp.ok) throw new Error(await errorOf(resp));
  return resp.json();
}

function ago(iso) {
  if (!iso || iso.startsWith("0001")) return "—";
  const s = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (s < 60) return `${Math.floor(s)}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

// agoEl is a relative time kept current in place by the ticker below.
const agoEl = (tag, iso, attrs = {}) => el(tag, { ...attrs, "data-ago": iso || "", title: iso || "" }, ago(iso));
setInterval(() => {
  document.querySelectorAll("[data-ago]").forEach((e) => {
    const t = ago(e.dataset.ago);
    if (e.textContent !== t) e.textContent = t;
  });
}, 10000);

function clock(iso) {
  return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

const badge = (status, id, label) => el("span", { class: `badge ${status}`, id, title: status === "sleeping" ? "scaled to zero: the next request wakes it" : undefined }, label || status);
// statusLabel is an app's status with its sleep stage: "sleeping (warm)".
const statusLabel = (a) => a.status === "sleeping" && a.sleep ? `sleeping (${a.sleep})` : a.status;

// dur shortens a Go duration string: 5m, not 5m0s. Numbers are nanoseconds
// (older daemons send durations so).
function dur(d) {
  if (typeof d === "number") {
    if (!d) return "";
    const ms = d / 1e6;
    d = ms < 1000 ? `${ms}ms` : ms % 60000 === 0 ? `${ms / 60000}m` : `${ms / 1000}s`;
  }
  return (d || "").replace(/m0s$/, "m").replace(/h0m$/, "h");
}

// strategyText describes an app's release strategy: its settings in one
// line (`plat strategy` has them one a line); blue-green, the default, has none.
function strategyText(s) {
  if (!s || !s.name || s.name === "blue-green") return "blue-green";
  return s.description || s.name;
}

// scaleText describes scale settings like `plat scale` does.
function scaleText(s) {
  if (!s || !s.max) return "—";
  const parts = [`min ${s.min}`, `max ${s.max}`];
  if (s.idle) parts.push(`idle ${dur(s.idle)}`);
  if (s.target) parts.push(`target ${s.target}`);
  const notes = [];
  if (s.min === 0) notes.push(s.idle ? `sleeps after ${dur(s.idle)} without requests` : "sleeps when idle");
  const low = Math.max(s.min, 1);
  if (s.max > low) notes.push(`autoscales ${low}–${s.max}`);
  return parts.join(", ") + (notes.length ? ` (${notes.join("; ")})` : "");
}

// readNDJSON calls onMessage with each JSON line of a streamed response.
async function readNDJSON(resp, onMessage) {
  const reader = resp.body.getReader();
  const decoder = new TextDecoder();
  let buf = "";
  for (;;) {
    const { value, done } = await reader.read();
    buf += decoder.decode(value || new Uint8Array(), { stream: !done });
    let i;
    while ((i = buf.indexOf("\n")) >= 0) {
      const line = buf.slice(0, i).trim();
      buf = buf.slice(i + 1);
      if (line) onMessage(JSON.parse(line));
    }
    if (done) break;
  }
  if (buf.trim()) onMessage(JSON.parse(buf));
}

// setText changes an element's text only when it differs, so a selection
// or focus elsewhere is never disturbed.
function setText(e, text) {
  if (e.textContent !== text) e.textContent = text;
}

// syncChildren updates parent's children in place from items: a child
// whose item is unchanged is left alone (selection, focus and open
// tooltips survive), a changed one is replaced, a gone one removed.
// Children marked data-keep (a log or progress shown under a row) stay
// right after the child they follow.
function syncChildren(parent, items, key, render) {
  const old = new Map();
  for (const c of [...parent.children]) {
    if (c.dataset.key !== undefined) old.set(c.dataset.key, c);
    else if (c.dataset.keep === undefined && items.length) c.remove(); // a placeholder
  }
  let prev = null;
  for (const item of items) {
    const k = String(key(item));
    const stamp = JSON.stringify(item);
    let node = old.get(k);
    old.delete(k);
    if (!node || node.dataset.stamp !== stamp) {
      const fresh = render(item);
      fresh.dataset.key = k;
      fresh.dataset.stamp = stamp;
      if (node) node.replaceWith(fresh);
      node = fresh;
    }
    let want = prev ? prev.nextElementSibling : parent.firstElementChild;
    while (want && want.dataset.keep !== undefined && want !== node) want = want.nextElementSibling;
    if (node !== want) parent.insertBefore(node, want);
    prev = node;
    while (prev.nextElementSibling && prev.nextElementSibling.dataset.keep !== undefined) prev = prev.nextElementSibling;
  }
  for (const n of old.values()) {
    while (n.nextElementSibling && n.nextElementSibling.dataset.keep !== undefined) n.nextElementSibling.remove();
    n.remove();
  }
}

// --- live updates ---

// banner shows a page-level notice while the daemon cannot be reached:
// what the page shows may be stale.
const offline = {
  since: null,
  show() {
    if (!this.since) this.since = new Date();
    const b = document.getElementById("offline");
    setText(b, `Cannot reach the plat daemon since ${clock(this.since.toISOString())}: what this page shows may be out of date. Reconnecting…`);
    b.hidden = false;
    document.body.classList.add("stale");
  },
  hide() {
    this.since = null;
    document.getElementById("offline").hidden = true;
    document.body.classList.remove("stale");
  },
};

// watch follows a server-sent event stream, calling handlers[event] with
// each event's data. The daemon pushes only what changed; nothing polls.
// When the stream breaks the page says so; it reconnects, unless check()
// (called before reconnecting after an HTTP error) says to stop.
function watch(url, handlers, check) {
  let es, stopped = false, delay = 1000;
  const open = () => {
    es = new EventSource(url);
    es.onopen = () => { offline.hide(); delay = 1000; };
    for (const [name, fn] of Object.entries(handlers)) {
      es.addEventListener(name, (ev) => { offline.hide(); fn(JSON.parse(ev.data)); });
    }
    es.onerror = async () => {
      if (stopped) return;
      if (es.readyState !== EventSource.CLOSED) { offline.show(); return; } // the browser retries
      es.close();
      // An HTTP error: the session ended, the app is gone, or the daemon
      // is restarting. Ask once before trying again.
      try {
        const resp = await api("/api/whoami");
        if (!resp.ok) offline.show();
        else if (check && !(await check())) { stop(); return; }
      } catch (e) {
        if (e instanceof AuthError) return;
        offline.show();
      }
      if (!stopped) setTimeout(open, delay);
      delay = Math.min(delay * 2, 10000);
    };
  };
  const stop = () => { stopped = true; if (es) es.close(); };
  open();
  return stop;
}

// copyLine is a command with a Copy button.
function copyLine(text, id) {
  return el("div", { class: "cli-line", id },
    el("code", {}, text),
    el("button", { type: "button", class: "small copy", onclick: (ev) => {
      const done = () => { ev.target.textContent = "Copied"; };
      if (navigator.clipboard) navigator.clipboard.writeText(text).then(done, () => {});
    } }, "Copy"));
}

// --- apps page ---

function appsPage() {
  document.title = "Apps · plat";
  const list = el("div", { class: "apps", id: "apps" }, el("p", { class: "muted" }, "Loading…"));
  main.replaceChildren(
    el("div", { class: "page-head" },
      el("div", {}, el("h1", {}, "Apps"), el("p", { class: "muted" }, "Deploy with git push platform main.")),
      el("button", { class: "primary", id: "new-app", onclick: () => createAppDialog() }, "New app")),
    list,
    cliPanel(),
  );
  watch("/api/watch", {
    apps(apps) {
      if (apps.length === 0) {
        list.replaceChildren(el("div", { class: "panel empty-state", id: "no-apps" }, "No apps yet. ",
          el("button", { class: "link", onclick: () => createAppDialog() }, "Create one"), " or run ", el("code", {}, "plat apps:create NAME"), "."));
        return;
      }
      syncChildren(list, apps.map(cardData), (a) => a.name, appCard);
    },
  });
}

// cardData is what an app card shows: the keys that change it.
const cardData = (a) => ({ name: a.name, status: a.status, sleep: a.sleep || "", warning: a.warning || "", active: a.active, replicas: a.replicas, url: a.url, deployed_at: a.deployed_at, git_sha: a.git_sha || "" });

function appCard(a) {
  return el("a", { class: `app-card ${a.status}`, href: `/apps/${encodeURIComponent(a.name)}`, "data-app": a.name, "data-status": a.status },
    el("div", { class: "name" }, a.name, badge(a.status, undefined, statusLabel(a))),
    a.warning ? el("p", { class: "warning" }, a.warning) : "",
    el("dl", {},
      el("dt", {}, "Release"), el("dd", {}, a.active ? `v${a.active}` : "—"),
      el("dt", {}, "Replicas"), el("dd", { class: "replicas" }, a.active ? String(a.replicas ?? "—") : "—"),
      el("dt", {}, "URL"), el("dd", {}, a.url),
      el("dt", {}, "Deployed"), agoEl("dd", a.deployed_at),
      el("dt", {}, "Commit"), el("dd", { class: "mono" }, a.git_sha ? a.git_sha.slice(0, 7) : "—")));
}

// cliPanel shows how to install the CLI from this daemon and log in. The
// token stays a placeholder: the user pastes their own, never ours.
function cliPanel() {
  const origin = window.location.origin;
  return el("section", { class: "panel cli", id: "cli" },
    el("h2", {}, "Use the CLI"),
    el("p", { class: "muted" }, "Install plat on your laptop (Linux or macOS), then log in with your API token:"),
    copyLine(`curl -fsSL ${origin}/install-cli | sh`),
    copyLine(`plat login ${origin} --token YOUR_TOKEN`),
    el("p", { class: "muted" }, "Then ", el("code", {}, "plat completion bash"), " (or zsh, fish) for tab completion, and ", el("code", {}, "plat dashboard"), " to come back here logged in."));
}

// plat is what later panels (rollouts, metrics) use to join the app page:
// plat.appPanels.push({ id, title, after, mount(section, ctx) }) where ctx
// has name, base (the app's API path) and on(event, fn) for the app's
// live events (app, releases, events, domains, ps, deploy);
// plat.releaseActions.push((release, { name, base, rowOf }) => nodes) adds
// buttons to each release row.
window.plat = { el, api, json, errorOf, readNDJSON, setText, syncChildren, agoEl, badge, appPanels: [], releaseActions: [] };
