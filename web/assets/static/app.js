// plat dashboard: renders the apps list (/) and an app's page (/apps/NAME)
// from the JSON API. No framework: fetch, WebSocket and the DOM.
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
// the CSRF token. A lost session sends the browser to the login page.
async function api(path, opts = {}) {
  const headers = { Accept: "application/json", ...(opts.headers || {}) };
  if (opts.method && opts.method !== "GET") headers["X-CSRF-Token"] = csrf;
  if (opts.body && typeof opts.body !== "string") {
    opts.body = JSON.stringify(opts.body);
    headers["Content-Type"] = "application/json";
  }
  const resp = await fetch(path, { ...opts, headers, credentials: "same-origin" });
  if (resp.status === 401) {
    location.href = "/login";
    throw new AuthError("session ended");
  }
  return resp;
}

async function json(path) {
  const resp = await api(path);
  const body = await resp.json();
  if (!resp.ok) throw new Error(body.error || resp.statusText);
  return body;
}

function ago(iso) {
  if (!iso || iso.startsWith("0001")) return "—";
  const s = Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000);
  if (s < 60) return `${Math.floor(s)}s ago`;
  if (s < 3600) return `${Math.floor(s / 60)}m ago`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ago`;
  return `${Math.floor(s / 86400)}d ago`;
}

function clock(iso) {
  return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", second: "2-digit" });
}

const badge = (status, id, label) => el("span", { class: `badge ${status}`, id, title: status === "sleeping" ? "scaled to zero: the next request wakes it" : undefined }, label || status);
// statusLabel is an app's status with its sleep stage: "sleeping (warm)".
const statusLabel = (a) => a.status === "sleeping" && a.sleep ? `sleeping (${a.sleep})` : a.status;

// dur shortens a Go duration string: 5m, not 5m0s.
const dur = (d) => d.replace(/m0s$/, "m").replace(/h0m$/, "h");

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

// every runs fn now and then every ms while the page is open; a failed run
// is retried at the next tick.
function every(ms, fn) {
  let stopped = false;
  const tick = async () => {
    if (stopped) return;
    try { await fn(); } catch (e) { if (!(e instanceof AuthError)) console.warn(e); }
    if (!stopped) setTimeout(tick, ms);
  };
  tick();
  return () => { stopped = true; };
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

// --- apps page ---

function appsPage() {
  document.title = "Apps · plat";
  const list = el("div", { class: "apps", id: "apps" });
  main.replaceChildren(
    el("div", { class: "app-head" }, el("div", {}, el("h1", {}, "Apps"), el("p", { class: "muted" }, "Deploy with git push platform main."))),
    list,
    cliPanel(),
  );
  every(5000, async () => {
    const apps = await json("/api/apps");
    if (apps.length === 0) {
      list.replaceChildren(el("div", { class: "panel empty-state" }, "No apps yet. Create one with ", el("code", {}, "plat apps:create NAME"), "."));
      return;
    }
    list.replaceChildren(...apps.map((a) =>
      el("a", { class: `app-card ${a.status}`, href: `/apps/${encodeURIComponent(a.name)}`, "data-app": a.name, "data-status": a.status },
        el("div", { class: "name" }, a.name, badge(a.status, undefined, statusLabel(a))),
        el("dl", {},
          el("dt", {}, "Release"), el("dd", {}, a.active ? `v${a.active}` : "—"),
          el("dt", {}, "Replicas"), el("dd", { class: "replicas" }, a.active ? String(a.replicas ?? "—") : "—"),
          el("dt", {}, "URL"), el("dd", {}, a.url),
          el("dt", {}, "Deployed"), el("dd", { title: a.deployed_at || "" }, ago(a.deployed_at)),
          el("dt", {}, "Commit"), el("dd", { class: "mono" }, a.git_sha ? a.git_sha.slice(0, 7) : "—"),
        ))));
  });
}

// cliPanel shows how to install the CLI from this daemon and log in. The
// token stays a placeholder: the user pastes their own, never ours.
function cliPanel() {
  const origin = window.location.origin;
  const line = (text) => el("div", { class: "cli-line" },
    el("code", {}, text),
    navigator.clipboard && el("button", { class: "link", onclick: (ev) => {
      navigator.clipboard.writeText(text).then(() => { ev.target.textContent = "Copied"; });
    } }, "Copy"));
  return el("section", { class: "panel cli", id: "cli" },
    el("h2", {}, "Use the CLI"),
    el("p", { class: "muted" }, "Install plat on your laptop (Linux or macOS), then log in with your API token:"),
    line(`curl -fsSL ${origin}/install-cli | sh`),
    line(`plat login ${origin} --token YOUR_TOKEN`),
    el("p", { class: "muted" }, "Then ", el("code", {}, "plat completion bash"), " (or zsh, fish) for tab completion, and ", el("code", {}, "plat dashboard"), " to come back here logged in."));
}

// --- app page ---

function appPage(name) {
  document.title = `${name} · plat`;
  const base = `/api/apps/${encodeURIComponent(name)}`;
  const head = el("div", { class: "app-head" });
  const releases = el("div", { class: "scroll-x" });
  const deployOut = el("pre", { class: "terminal short", id: "deploy-output" });
  const deployPanel = el("section", { class: "panel", id: "deploy", hidden: true },
    el("div", { class: "panel-head" }, el("h2", {}, "Deploy output"), el("span", { class: "live", id: "deploy-state" })), deployOut);
  const buildLog = el("section", { class: "panel", hidden: true });
  const logView = el("pre", { class: "terminal", id: "logs" }, el("span", { class: "empty" }, "Waiting for output…"));
  const logState = el("span", { class: "live off", id: "log-state" }, "connecting");
  const timeline = el("ol", { class: "timeline", id: "events" });
  const config = el("div", { id: "config" });
  const domains = el("div", { id: "domains" });
  const scaleSettings = el("p", { id: "scale-settings" });
  const replicas = el("div", { class: "scroll-x" });
  const scaleOut = el("pre", { class: "terminal short", id: "scale-output", hidden: true });
  const field = (id, label, attrs) => el("label", { for: id }, label, el("input", { id, name: id.replace("scale-", ""), ...attrs }));
  const scaleForm = el("form", { id: "scale-form", class: "scale-form", onsubmit: (ev) => { ev.preventDefault(); scale(); } },
    field("scale-min", "Min", { type: "number", min: 0, required: true, title: "0 lets the app sleep when idle" }),
    field("scale-max", "Max", { type: "number", min: 1, required: true }),
    field("scale-idle", "Idle", { type: "text", placeholder: "5m", pattern: "^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$", title: "time without requests before sleeping (min 0), e.g. 5m" }),
    field("scale-target", "Target", { type: "number", min: 1, title: "in-flight requests per replica the autoscaler aims at" }),
    el("button", { type: "submit", class: "primary", id: "scale-submit" }, "Scale"));

  main.replaceChildren(
    head,
    deployPanel,
    el("section", { class: "panel" }, el("div", { class: "panel-head" }, el("h2", {}, "Live logs"), logState), logView),
    el("section", { class: "panel", id: "scaling" }, el("h2", {}, "Replicas and scaling"), scaleSettings, replicas, scaleForm, scaleOut),
    el("section", { class: "panel" }, el("h2", {}, "Releases"), releases),
    buildLog,
    el("div", { class: "grid2" },
      el("section", { class: "panel" }, el("h2", {}, "Events"), timeline),
      el("div", { class: "stack" },
        el("section", { class: "panel" }, el("h2", {}, "Config vars"), config),
        el("section", { class: "panel" }, el("h2", {}, "Domains"), domains))),
  );

  let lastDeploy = "";
  async function refresh() {
    const resp = await api(base);
    if (resp.status === 404) {
      main.replaceChildren(el("div", { class: "panel empty-state" }, `No app named ${name}. `, el("a", { href: "/" }, "See all apps"), "."));
      throw new Error("no such app");
    }
    const [app, rels, events, doms, ps] = await Promise.all([resp.json(), json(`${base}/releases`), json(`${base}/events`), json(`${base}/domains`),
      json(`${base}/ps`).catch((e) => { if (e instanceof AuthError) throw e; return []; })]); // a daemon without replicas
    head.replaceChildren(
      el("div", {}, el("h1", {}, name, " ", badge(app.status, "app-status", statusLabel(app))),
        el("a", { href: app.url, target: "_blank", rel: "noopener" }, app.url)),
      el("dl", { class: "facts" },
        el("dt", {}, "Active"), el("dd", {}, app.active ? `v${app.active}` : "—"),
        el("dt", {}, "Deployed"), el("dd", {}, ago(app.deployed_at)),
        el("dt", {}, "Replicas"), el("dd", { id: "app-replicas" }, String(app.replicas ?? "—")),
        el("dt", {}, "Strategy"), el("dd", { id: "app-strategy", title: app.strategy?.description || "" }, strategyText(app.strategy)),
        el("dt", {}, "Git"), el("dd", { class: "mono" }, app.git_url)),
    );
    // The default host, then the custom domains (same scheme and port as the app's URL).
    const u = new URL(app.url);
    const hosts = [u.hostname, ...(doms.domains || [])];
    domains.replaceChildren(el("ul", { class: "plain" }, ...hosts.map((h) => {
      const href = `${u.protocol}//${h}${u.port ? ":" + u.port : ""}/`;
      return el("li", {}, el("a", { href, target: "_blank", rel: "noopener" }, new URL(href).host));
    })));
    renderReleases(app, rels);
    renderScale(app, ps);
    timeline.replaceChildren(...events.slice().reverse().map((e) =>
      el("li", {}, el("span", { class: "when", title: e.time }, ago(e.time)),
        el("span", {}, el("span", { class: `kind ${e.kind.replace(/\s+/g, "-")}` }, e.kind), e.release ? ` v${e.release}` : "", el("br"),
          el("span", { class: "muted" }, e.message)))));
    if (events.length === 0) timeline.replaceChildren(el("li", { class: "muted" }, "No deploys yet."));
    const stamp = JSON.stringify([app.active, rels.length]);
    if (stamp !== lastDeploy) { lastDeploy = stamp; loadConfig(); }
  }

  function renderReleases(app, rels) {
    if (rels.length === 0) {
      releases.replaceChildren(el("p", { class: "muted" }, "No releases yet. Push with ", el("code", {}, "git push platform main"), "."));
      return;
    }
    const rows = rels.slice().reverse().map((r) => {
      const canRollBack = r.version !== app.active && r.image_id && r.status !== "failed" && r.status !== "deploying";
      return el("tr", { "data-version": r.version },
        el("td", {}, el("strong", {}, `v${r.version}`)),
        el("td", {}, badge(r.status)),
        el("td", { class: "hide-narrow" }, r.cause),
        el("td", { class: "mono hide-narrow" }, r.git_sha ? r.git_sha.slice(0, 7) : "—"),
        el("td", { title: r.created_at }, ago(r.created_at)),
        el("td", { class: "reason hide-narrow", title: r.reason || "" }, r.reason || ""),
        el("td", { class: "actions" },
          r.cause === "push" ? el("button", { class: "small link hide-narrow", onclick: () => showBuildLog(r.version) }, "build log") : "",
          " ",
          canRollBack ? el("button", { class: "small rollback", "data-version": r.version, onclick: () => rollback(r.version) }, "Roll back") : ""));
    });
    releases.replaceChildren(el("table", { id: "releases" },
      el("thead", {}, el("tr", {}, el("th", {}, "Version"), el("th", {}, "Status"), el("th", { class: "hide-narrow" }, "Cause"), el("th", { class: "hide-narrow" }, "Commit"), el("th", {}, "Age"), el("th", { class: "hide-narrow" }, "Reason"), el("th", {}))),
      el("tbody", {}, rows)));
  }

  function renderScale(app, ps) {
    const s = app.scale || {};
    // Several replicas: log lines show their replica's label.
    logView.classList.toggle("multi", (app.replicas || 0) > 1 || (s.max || 0) > 1);
    scaleSettings.textContent = scaleText(s);
    if (!scaleForm.dataset.filled && s.max) { // fill once: never overwrite what the user types
      scaleForm.dataset.filled = "1";
      document.getElementById("scale-min").value = s.min;
      document.getElementById("scale-max").value = s.max;
      document.getElementById("scale-idle").value = s.idle ? dur(s.idle) : "";
      document.getElementById("scale-target").value = s.target || "";
    }
    if (ps.length === 0) {
      replicas.replaceChildren(el("p", { class: "muted", id: "replicas-none" },
        app.status === "sleeping" ? "Asleep: no replica runs. The next request wakes the app." : "No replicas running."));
      return;
    }
    replicas.replaceChildren(el("table", { id: "replicas" },
      el("thead", {}, el("tr", {}, el("th", {}, "Replica"), el("th", {}, "State"), el("th", {}, "Release"), el("th", {}, "In flight"), el("th", { class: "hide-narrow" }, "Address"), el("th", { class: "hide-narrow" }, "Container"))),
      el("tbody", {}, ps.map((r) => el("tr", { "data-label": r.label, "data-state": r.state },
        el("td", {}, el("strong", {}, r.label)),
        el("td", {}, badge(r.state)),
        el("td", {}, r.release ? `v${r.release}` : "—"),
        el("td", { class: "in-flight" }, String(r.in_flight)),
        el("td", { class: "mono hide-narrow" }, r.addr || "—"),
        el("td", { class: "mono hide-narrow", title: r.container_id }, (r.container_id || "").slice(0, 12)))))));
  }

  // scale sends the form's settings and shows the daemon's progress lines.
  async function scale() {
    const num = (id) => document.getElementById(id).value;
    const body = { min: Number(num("scale-min")), max: Number(num("scale-max")) };
    if (num("scale-idle")) body.idle = num("scale-idle");
    if (num("scale-target")) body.target = Number(num("scale-target"));
    const submit = document.getElementById("scale-submit");
    submit.disabled = true;
    scaleOut.hidden = false;
    scaleOut.classList.remove("failed");
    scaleOut.textContent = "";
    const line = (text) => { scaleOut.append(text + "\n"); scaleOut.scrollTop = scaleOut.scrollHeight; };
    const fail = (msg) => { scaleOut.classList.add("failed"); line(`error: ${msg}`); };
    try {
      const resp = await api(`${base}/scale`, { method: "POST", body });
      if (!resp.ok) throw new Error((await resp.json()).error || resp.statusText);
      await readNDJSON(resp, (msg) => {
        if (msg.progress !== undefined) line(msg.progress);
        if (msg.error) fail(msg.error);
        const done = msg.app || msg.release;
        if (done) line(`-----> scaled: ${scaleText(done.scale)}`);
      });
    } catch (e) {
      if (!(e instanceof AuthError)) fail(e.message);
    }
    submit.disabled = false;
    delete scaleForm.dataset.filled; // show what the daemon kept
    refresh();
  }

  async function showBuildLog(version) {
    const resp = await api(`${base}/releases/${version}/build-log`);
    const text = resp.ok ? await resp.text() : (await resp.json()).error;
    buildLog.hidden = false;
    buildLog.replaceChildren(
      el("div", { class: "panel-head" }, el("h2", {}, `Build log of v${version}`), el("button", { class: "small", onclick: () => { buildLog.hidden = true; } }, "Close")),
      el("pre", { class: "terminal short" }, text));
    buildLog.scrollIntoView({ behavior: "smooth", block: "nearest" });
  }

  async function loadConfig() {
    const env = await json(`${base}/config`);
    const keys = Object.keys(env).sort();
    if (keys.length === 0) {
      config.replaceChildren(el("p", { class: "muted" }, "No config vars. Set them with ", el("code", {}, `plat config:set ${name} KEY=value`), "."));
      return;
    }
    config.replaceChildren(el("table", { class: "config" }, el("tbody", {}, keys.map((k) => {
      const val = el("td", { class: "val" }, "••••••••");
      let shown = false;
      const btn = el("button", { class: "small", onclick: () => { shown = !shown; val.textContent = shown ? env[k] : "••••••••"; btn.textContent = shown ? "Hide" : "Reveal"; } }, "Reveal");
      return el("tr", {}, el("td", { class: "mono" }, k), val, el("td", {}, btn));
    }))));
  }

  // rollback asks for confirmation, then streams the deploy's progress.
  function rollback(version) {
    const dlg = document.getElementById("confirm");
    document.getElementById("confirm-text").textContent =
      `Roll ${name} back to v${version}? Its image and config are deployed as a new release; the current one keeps serving until the new one is healthy.`;
    dlg.returnValue = "";
    dlg.showModal();
    dlg.addEventListener("close", async () => {
      if (dlg.returnValue !== "ok") return;
      document.querySelectorAll("button.rollback").forEach((b) => { b.disabled = true; });
      streaming = true;
      deployPanel.hidden = false;
      deployOut.textContent = "";
      setState(true, `rolling back to v${version}`);
      try {
        const resp = await api(`${base}/rollback`, { method: "POST", body: { version } });
        if (!resp.ok) throw new Error((await resp.json()).error || resp.statusText);
        await readNDJSON(resp, (msg) => {
          if (msg.progress !== undefined) appendDeployLine(msg.progress);
          if (msg.error) appendDeployLine(`error: ${msg.error}`);
          if (msg.release) appendDeployLine(`-----> v${msg.release.version} is live`);
        });
      } catch (e) {
        if (!(e instanceof AuthError)) appendDeployLine(`error: ${e.message}`);
      }
      setState(false, "finished");
      streaming = false;
      refresh();
    }, { once: true });
  }

  function appendDeployLine(line) {
    const atEnd = deployOut.scrollTop + deployOut.clientHeight >= deployOut.scrollHeight - 4;
    deployOut.append(line + "\n");
    if (atEnd) deployOut.scrollTop = deployOut.scrollHeight;
  }
  function setState(running, text) {
    const s = document.getElementById("deploy-state");
    s.className = `live ${running ? "on" : ""}`;
    s.textContent = text;
  }

  // A deploy started elsewhere (git push, CLI) is shown by polling its
  // output from the line last seen: a background tab that was throttled
  // catches up on its next poll instead of freezing.
  let seen = 0, seenVersion = 0, streaming = false;
  async function fetchDeploy(from) {
    const resp = await api(`${base}/deploy?from=${from}`);
    return resp.ok ? resp.json() : null;
  }
  async function pollDeploy() {
    if (streaming) return;
    let p = await fetchDeploy(seen);
    if (!p) return;
    if (p.version !== seenVersion) {
      const firstLook = seenVersion === 0;
      seenVersion = p.version;
      if (!(p = await fetchDeploy(0))) return;
      seen = p.dropped || 0;
      if (firstLook && !p.running) { seen += p.lines.length; return; } // an old, finished deploy
      deployOut.textContent = "";
    }
    if (p.lines.length === 0 && deployPanel.hidden) return;
    deployPanel.hidden = false;
    p.lines.forEach(appendDeployLine);
    seen = Math.max(seen, p.dropped || 0) + p.lines.length;
    setState(p.running, p.running ? `deploying v${p.version}` : `v${p.version} finished`);
  }

  every(3000, refresh);
  every(1000, pollDeploy);
  followLogs(base, logView, logState);
}

// followLogs shows the app's live logs over a websocket and reconnects with
// backoff, asking for the lines after the last one shown, so a network drop
// or a daemon restart loses and repeats nothing the server still has.
function followLogs(base, view, state) {
  const maxLines = 2000;
  let last = "", delay = 500, empty = true;
  const connect = () => {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const q = last ? `?since=${encodeURIComponent(last)}` : "";
    const ws = new WebSocket(`${proto}//${location.host}${base}/logs/ws${q}`);
    ws.onopen = () => { state.className = "live on"; state.textContent = "live"; delay = 500; };
    ws.onmessage = (ev) => {
      const line = JSON.parse(ev.data);
      last = line.time;
      if (empty) { view.replaceChildren(); empty = false; }
      const atEnd = view.scrollTop + view.clientHeight >= view.scrollHeight - 4;
      view.append(el("div", { class: "line", "data-replica": line.replica },
        el("span", { class: "ts", title: line.time }, clock(line.time)),
        line.replica ? el("span", { class: "replica" }, `${line.replica} | `) : "",
        line.text));
      while (view.childElementCount > maxLines) view.firstElementChild.remove();
      if (atEnd) view.scrollTop = view.scrollHeight;
    };
    ws.onclose = async () => {
      state.className = "live off";
      state.textContent = "reconnecting";
      // A closed socket may mean the session ended: ask once, cheaply.
      try { await api("/api/whoami"); } catch (e) { if (e instanceof AuthError) return; }
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, 10000);
    };
  };
  connect();
}

document.getElementById("logout").addEventListener("click", async () => {
  await fetch("/logout", { method: "POST", headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" });
  location.href = "/login";
});

const m = location.pathname.match(/^\/apps\/([^/]+)$/);
if (m) appPage(decodeURIComponent(m[1])); else appsPage();
