// plat dashboard: an app's page. The daemon pushes the app's state as
// server-sent events (GET /api/apps/NAME/watch); each section updates in
// place from the event it shows, so focus, selections and open tooltips
// survive. Nothing polls.
"use strict";

function panel(id, title, ...children) {
  return el("section", { class: "panel", id, "data-section": id }, title ? el("h2", {}, title) : "", ...children);
}

// inlineRow is a row right after tr holding a <pre> (a release's log or a
// rollback's progress), kept in place when the table updates.
function inlineRow(tr, id) {
  document.getElementById(`${id}-row`)?.remove();
  const pre = el("pre", { class: "terminal short inline-out", id, role: "status" });
  const row = el("tr", { class: "inline-row", id: `${id}-row`, "data-keep": "" },
    el("td", { colspan: 8 }, el("div", { class: "inline-head" }, el("button", { class: "small", onclick: () => row.remove() }, "Close")), pre));
  tr.after(row);
  return pre;
}

async function appPage(name) {
  document.title = `${name} · plat`;
  const base = `/api/apps/${encodeURIComponent(name)}`;
  const first = await api(base);
  if (first.status === 404) { // no app: say so once; nothing keeps asking
    main.replaceChildren(el("div", { class: "panel empty-state", id: "missing" }, `No app named ${name}. `, el("a", { href: "/" }, "See all apps"), "."));
    return;
  }
  if (!first.ok) throw new Error(await errorOf(first));
  const state = { app: await first.json(), releases: [], deploy: null };
  const listeners = {};
  const on = (ev, fn) => (listeners[ev] ||= []).push(fn);
  on("releases", (rels) => { state.releases = rels; }); // first: other sections read it

  // --- head: status, warning, facts, actions ---
  const status = el("span", { id: "app-status-slot" });
  const warning = el("p", { class: "warning", id: "app-warning", role: "alert", hidden: true });
  const facts = el("dl", { class: "facts" });
  const restartBtn = el("button", { id: "restart", onclick: () => restart() }, "Restart");
  const actionsBar = el("div", { class: "actions-bar", id: "app-actions" }, restartBtn);
  const head = el("div", { class: "app-head", id: "app-head", "data-section": "head" },
    el("div", { class: "title" }, el("h1", {}, name, " ", status), el("a", { id: "app-url", target: "_blank", rel: "noopener" }), warning),
    el("div", { class: "head-side" }, facts, actionsBar));
  const factCells = {};
  for (const [k, label] of [["active", "Active"], ["deployed", "Deployed"], ["replicas", "Replicas"], ["strategy", "Strategy"], ["git", "Git"]]) {
    const ids = { replicas: "app-replicas", strategy: "app-strategy", git: "git-url" };
    factCells[k] = el("dd", { id: ids[k], class: k === "git" ? "mono" : undefined });
    facts.append(el("dt", {}, label), factCells[k]);
  }
  on("app", (app) => {
    state.app = app;
    const b = status.firstElementChild;
    if (!b || b.textContent !== statusLabel(app)) status.replaceChildren(badge(app.status, "app-status", statusLabel(app)));
    setText(warning, app.warning ? `⚠ ${app.warning}` : "");
    warning.hidden = !app.warning;
    const url = document.getElementById("app-url");
    if (url.getAttribute("href") !== app.url) { url.href = app.url; url.textContent = app.url; }
    setText(factCells.active, app.active ? `v${app.active}` : "—");
    if (factCells.deployed.dataset.ago !== (app.deployed_at || "")) factCells.deployed.replaceWith(factCells.deployed = agoEl("dd", app.deployed_at));
    setText(factCells.replicas, String(app.replicas ?? "—"));
    setText(factCells.strategy, strategyText(app.strategy));
    factCells.strategy.title = app.strategy?.description || "";
    setText(factCells.git, app.git_url);
    restartBtn.disabled = !app.active;
  });

  // --- deploy output: live, or kept with the release ---
  const deployOut = el("pre", { class: "terminal short", id: "deploy-output" });
  const deployState = el("span", { class: "live", id: "deploy-state" });
  const failure = el("div", { class: "failure", id: "deploy-failure", role: "alert", hidden: true });
  const deployPanel = panel("deploy", null, el("div", { class: "panel-head" }, el("h2", {}, "Deploy output"), deployState), failure, deployOut);
  deployPanel.hidden = true;
  on("deploy", (d) => {
    deployPanel.hidden = false;
    if (d.reset || !state.deploy || state.deploy.version !== d.version) deployOut.textContent = "";
    state.deploy = d;
    const atEnd = deployOut.scrollTop + deployOut.clientHeight >= deployOut.scrollHeight - 4;
    if (d.lines.length) deployOut.append(d.lines.join("\n") + "\n");
    if (atEnd) deployOut.scrollTop = deployOut.scrollHeight;
    renderDeployState();
  });
  on("releases", () => renderDeployState());
  on("app", () => renderDeployState());
  // renderDeployState says how the shown deploy ended: a failure as a
  // failure, with its reason in full and what still serves.
  function renderDeployState() {
    const d = state.deploy;
    if (!d) return;
    const rel = state.releases.find((r) => r.version === d.version);
    let text = `deploying v${d.version}`, cls = "live on";
    const failed = !d.running && rel && rel.status === "failed";
    if (failed) { text = `v${d.version} failed`; cls = "live bad"; }
    else if (!d.running && rel && rel.status === "deploying") { text = `v${d.version} deploying`; }
    else if (!d.running) { text = rel && rel.version === state.app.active ? `v${d.version} is live` : `v${d.version} finished`; cls = "live done"; }
    setText(deployState, text);
    if (deployState.className !== cls) deployState.className = cls;
    deployOut.classList.toggle("failed", !!failed);
    failure.hidden = !failed;
    if (failed) {
      const serving = state.app.active ? `Still serving v${state.app.active}.` : "Nothing is serving yet.";
      const want = JSON.stringify([rel.reason, serving]);
      if (failure.dataset.stamp !== want) {
        failure.dataset.stamp = want;
        failure.replaceChildren(el("strong", {}, `Deploy of v${d.version} failed`), el("p", { class: "reason-full" }, rel.reason || "no reason recorded"), el("p", { class: "serving" }, serving));
      }
    }
  }

  // --- live logs ---
  const logView = el("pre", { class: "terminal", id: "logs" }, el("span", { class: "empty" }, "Waiting for output…"));
  const logState = el("span", { class: "live off", id: "log-state" }, "connecting");
  const logsPanel = panel("logs-panel", null, el("div", { class: "panel-head" }, el("h2", {}, "Live logs"), logState), logView);

  // --- releases ---
  const relBody = el("tbody", {});
  const releasesPanel = panel("releases-panel", "Releases", el("div", { class: "scroll-x" },
    el("table", { id: "releases", class: "cards-narrow" },
      el("thead", {}, el("tr", {}, el("th", {}, "Version"), el("th", {}, "Status"), el("th", {}, "Cause"), el("th", {}, "Commit"), el("th", {}, "Age"), el("th", {}, "Reason"), el("th", {}))),
      relBody)),
  el("p", { class: "muted", id: "no-releases", hidden: true }, "No releases yet. Push with ", el("code", {}, "git push platform main"), "."));
  on("releases", (rels) => {
    state.releases = rels;
    document.getElementById("no-releases").hidden = rels.length > 0;
    const active = state.app.active;
    const rows = rels.slice().reverse().map((r) => ({ version: r.version, status: r.version === active && r.status === "active" ? "active" : r.status,
      cause: r.cause, git_sha: r.git_sha || "", created_at: r.created_at, reason: r.reason || "",
      preview: r.status === "staged" ? r.preview_url || "" : "",
      canRollBack: r.version !== active && !!r.image_id && !["failed", "deploying", "staged", "unstaged"].includes(r.status) }));
    syncChildren(relBody, rows, (r) => r.version, releaseRow);
  });
  function releaseRow(r) {
    const tr = el("tr", { "data-version": r.version, class: r.status === "failed" ? "failed" : undefined },
      el("td", { "data-label": "Version" }, el("strong", {}, `v${r.version}`)),
      el("td", { "data-label": "Status" }, badge(r.status)),
      el("td", { "data-label": "Cause" }, r.cause),
      el("td", { class: "mono", "data-label": "Commit" }, r.git_sha ? r.git_sha.slice(0, 7) : "—"),
      agoEl("td", r.created_at, { "data-label": "Age" }),
      el("td", { class: "reason", "data-label": "Reason" },
        r.preview ? el("a", { href: r.preview, target: "_blank", rel: "noopener", class: "preview-link" }, `staged at ${r.preview}`) : r.reason),
      el("td", { class: "actions" },
        r.cause === "push" ? el("button", { class: "small build-log", onclick: () => showLog(r.version, "build-log", "build log") }, "Build log") : "",
        el("button", { class: "small deploy-log", onclick: () => showLog(r.version, "deploy-log", "deploy output") }, "Output"),
        r.canRollBack ? el("button", { class: "small rollback", "data-version": r.version, onclick: () => rollback(r.version) }, "Roll back") : "",
        ...window.plat.releaseActions.flatMap((fn) => fn(r, { name, base, rowOf }))));
    return tr;
  }
  // rowOf is a release's row as shown now (rows are replaced as they change).
  const rowOf = (version) => relBody.querySelector(`tr[data-version="${version}"]`);
  async function showLog(version, kind, what) {
    const pre = inlineRow(rowOf(version), "release-log");
    pre.textContent = `Loading the ${what} of v${version}…`;
    const resp = await api(`${base}/releases/${version}/${kind}`);
    pre.textContent = resp.ok ? await resp.text() : await errorOf(resp);
    pre.closest("tr").scrollIntoView({ block: "nearest" });
  }

  // rollback shows what it will change, then streams its progress right
  // below the row clicked.
  async function rollback(version) {
    let preview;
    try { preview = await json(`${base}/rollback/preview?version=${version}`); } catch (e) { if (e instanceof AuthError) return; preview = { error: e.message }; }
    const short = (id) => (id || "").replace(/^sha256:/, "").slice(0, 12) || "—";
    const keys = (label, ks) => ks && ks.length ? el("li", {}, `${label}: `, el("code", {}, ks.join(", "))) : "";
    const body = preview.error ? el("p", { class: "error" }, preview.error) : el("div", { id: "rollback-preview" },
      el("p", {}, `Deploys the image and config of v${version} as a new release. v${preview.from} keeps serving until the new one is healthy.`),
      el("ul", { class: "diff" },
        el("li", {}, "Image: ", preview.same_image ? "unchanged" : [el("code", {}, short(preview.image_from)), " → ", el("code", {}, short(preview.image_to))],
          preview.git_sha_to && preview.git_sha_from !== preview.git_sha_to ? ` (commit ${preview.git_sha_from.slice(0, 7)} → ${preview.git_sha_to.slice(0, 7)})` : ""),
        keys("Config keys added", preview.added), keys("Config keys removed", preview.removed), keys("Config values changed", preview.changed),
        preview.added && !preview.added.length && !preview.removed.length && !preview.changed.length ? el("li", {}, "Config: unchanged") : ""));
    if (!(await confirmDialog(`Roll ${name} back to v${version}?`, body, "Roll back"))) return;
    const out = inlineRow(rowOf(version), "rollback-output");
    out.scrollIntoView({ block: "nearest" });
    await runStream(rowOf(version).querySelector("button.rollback"), out, `${base}/rollback`, { method: "POST", body: { version } },
      (rel) => `-----> v${rel.version} is live`);
  }

  // --- replicas and scaling ---
  const scaleSettings = el("p", { id: "scale-settings" });
  const replicas = el("div", { class: "scroll-x" });
  const field = (id, label, attrs) => el("label", { for: id }, label, el("input", { id, name: id.replace(/^\w+-/, ""), ...attrs }));
  const scaleSubmit = el("button", { type: "submit", class: "primary", id: "scale-submit" }, "Scale");
  const scaleForm = el("form", { id: "scale-form", class: "inline-form", onsubmit: async (ev) => {
    ev.preventDefault();
    const v = (id) => document.getElementById(id).value;
    const body = { min: Number(v("scale-min")), max: Number(v("scale-max")) };
    if (v("scale-idle")) body.idle = v("scale-idle");
    if (v("scale-target")) body.target = Number(v("scale-target"));
    const out = outputBox(scaleForm, "scale-output");
    const app = await runStream(scaleSubmit, out, `${base}/scale`, { method: "POST", body }, (a) => `-----> scaled: ${scaleText(a.scale)}`);
    if (app) { delete scaleForm.dataset.filled; fillScale(app); } // show what the daemon kept
  } },
  field("scale-min", "Min", { type: "number", min: 0, required: true, title: "0 lets the app sleep when idle" }),
  field("scale-max", "Max", { type: "number", min: 1, required: true }),
  field("scale-idle", "Idle", { type: "text", placeholder: "5m", pattern: "^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$", title: "time without requests before sleeping (min 0), e.g. 5m" }),
  field("scale-target", "Target", { type: "number", min: 1, title: "in-flight requests per replica the autoscaler aims at" }),
  scaleSubmit);
  const scalingPanel = panel("scaling", "Replicas and scaling", scaleSettings, replicas, scaleForm);
  function fillScale(app) {
    const s = app.scale || {};
    if (scaleForm.dataset.filled || !s.max) return; // fill once: never overwrite what the user types
    scaleForm.dataset.filled = "1";
    document.getElementById("scale-min").value = s.min;
    document.getElementById("scale-max").value = s.max;
    document.getElementById("scale-idle").value = s.idle ? dur(s.idle) : "";
    document.getElementById("scale-target").value = s.target || "";
  }
  on("app", (app) => {
    const s = app.scale || {};
    logView.classList.toggle("multi", (app.replicas || 0) > 1 || (s.max || 0) > 1);
    setText(scaleSettings, scaleText(s));
    fillScale(app);
  });
  on("ps", (ps) => {
    if (ps.length === 0) {
      const text = state.app.status === "sleeping" ? "Asleep: no replica runs. The next request wakes the app." : "No replicas running.";
      const p = document.getElementById("replicas-none");
      if (p) setText(p, text); else replicas.replaceChildren(el("p", { class: "muted", id: "replicas-none" }, text));
      return;
    }
    let tbody = replicas.querySelector("#replicas tbody");
    if (!tbody) {
      tbody = el("tbody", {});
      replicas.replaceChildren(el("table", { id: "replicas" },
        el("thead", {}, el("tr", {}, el("th", {}, "Replica"), el("th", {}, "State"), el("th", {}, "Release"), el("th", {}, "In flight"), el("th", { class: "hide-narrow" }, "Address"), el("th", { class: "hide-narrow" }, "Container"))), tbody));
    }
    syncChildren(tbody, ps.map((r) => ({ label: r.label, state: r.state, release: r.release, in_flight: r.in_flight, addr: r.addr || "", container_id: r.container_id || "" })), (r) => r.label,
      (r) => el("tr", { "data-label": r.label, "data-state": r.state },
        el("td", {}, el("strong", {}, r.label)),
        el("td", {}, badge(r.state)),
        el("td", {}, r.release ? `v${r.release}` : "—"),
        el("td", { class: "in-flight" }, String(r.in_flight)),
        el("td", { class: "mono hide-narrow" }, r.addr || "—"),
        el("td", { class: "mono hide-narrow", title: r.container_id }, r.container_id.slice(0, 12))));
  });

  // --- config vars: a change is a new release, its progress under the form ---
  const configBody = el("tbody", {});
  const configKey = el("input", { id: "config-key", placeholder: "KEY", required: true, autocomplete: "off", spellcheck: "false", pattern: "[A-Za-z_][A-Za-z0-9_]*", title: "letters, digits and _; not starting with a digit" });
  const configValue = el("input", { id: "config-value", placeholder: "value", autocomplete: "off", spellcheck: "false" });
  const configSet = el("button", { type: "submit", class: "primary", id: "config-set" }, "Set");
  const configForm = el("form", { id: "config-form", class: "inline-form", onsubmit: (ev) => {
    ev.preventDefault();
    changeConfig({ set: { [configKey.value.trim()]: configValue.value } }, configSet);
  } }, configKey, configValue, configSet);
  const configNone = el("p", { class: "muted", id: "config-none", hidden: true }, "No config vars yet.");
  const configPanel = panel("config", "Config vars", el("table", { class: "config" }, configBody), configNone, configForm);
  async function changeConfig(body, button) {
    const out = outputBox(configForm, "config-output");
    const rel = await runStream(button, out, `${base}/config`, { method: "POST", body }, (r) => `-----> v${r.version} is live`);
    if (rel && body.set) { configKey.value = ""; configValue.value = ""; }
    loadConfig();
  }
  let configStamp = "";
  on("app", (app) => {
    const stamp = JSON.stringify([app.env_keys, app.active]);
    if (stamp !== configStamp) { configStamp = stamp; loadConfig(); }
  });
  async function loadConfig() {
    const env = await json(`${base}/config`);
    const keys = Object.keys(env).sort();
    configNone.hidden = keys.length > 0;
    syncChildren(configBody, keys.map((k) => ({ k, v: env[k] })), (c) => c.k, ({ k, v }) => {
      const val = el("td", { class: "val" }, "••••••••");
      let shown = false;
      const btn = el("button", { type: "button", class: "small reveal", onclick: () => { shown = !shown; val.textContent = shown ? v : "••••••••"; btn.textContent = shown ? "Hide" : "Reveal"; } }, "Reveal");
      const unset = el("button", { type: "button", class: "small danger unset", onclick: () => changeConfig({ unset: [k] }, unset) }, "Unset");
      return el("tr", { "data-config": k }, el("td", { class: "mono key" }, k), val, el("td", { class: "actions" }, btn, unset));
    });
  }

  // --- domains ---
  const domainList = el("ul", { class: "plain", id: "domain-list" });
  const domainInput = el("input", { id: "domain-name", placeholder: "www.example.com", required: true, autocomplete: "off", spellcheck: "false" });
  const domainForm = el("form", { id: "domain-form", class: "inline-form", onsubmit: async (ev) => {
    ev.preventDefault();
    const resp = await api(`${base}/domains`, { method: "POST", body: { domain: domainInput.value.trim() } });
    if (!resp.ok) { formNote(domainForm, "domain-note", await errorOf(resp), true); return; }
    formNote(domainForm, "domain-note", `Added ${domainInput.value.trim()}.`, false);
    domainInput.value = "";
  } }, domainInput, el("button", { type: "submit", class: "primary", id: "domain-add" }, "Add domain"));
  const domainsPanel = panel("domains", "Domains", domainList, domainForm);
  on("domains", (doms) => {
    const u = new URL(state.app.url);
    const link = (h) => { const href = `${u.protocol}//${h}${u.port ? ":" + u.port : ""}/`; return el("a", { href, target: "_blank", rel: "noopener" }, new URL(href).host); };
    const items = [{ host: doms.default || u.hostname, custom: false }, ...(doms.domains || []).map((h) => ({ host: h, custom: true }))];
    syncChildren(domainList, items, (d) => d.host, (d) => el("li", { "data-domain": d.host }, link(d.host),
      d.custom ? el("button", { class: "small danger", onclick: async () => {
        if (!(await confirmDialog(`Remove ${d.host}?`, `${name} stops answering at ${d.host}.`, "Remove"))) return;
        const resp = await api(`${base}/domains/${encodeURIComponent(d.host)}`, { method: "DELETE" });
        formNote(domainForm, "domain-note", resp.ok ? `Removed ${d.host}.` : await errorOf(resp), !resp.ok);
      } }, "Remove") : el("span", { class: "muted" }, " (default)")));
  });

  // --- health check ---
  const hfield = (id, label, attrs) => field(id, label, { type: "text", autocomplete: "off", ...attrs });
  const durPattern = "^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$";
  const healthForm = el("form", { id: "health-form", class: "inline-form", onsubmit: async (ev) => {
    ev.preventDefault();
    const v = (id) => document.getElementById(id).value.trim();
    const body = { path: v("health-path"), timeout: v("health-timeout"), interval: v("health-interval"), deadline: v("health-deadline") };
    const resp = await api(`${base}/health`, { method: "PUT", body });
    formNote(healthForm, "health-note", resp.ok ? "Saved: the next deploy checks it so." : await errorOf(resp), !resp.ok);
  } },
  hfield("health-path", "Path", { placeholder: "/" }),
  hfield("health-timeout", "Timeout", { placeholder: "2s", pattern: durPattern }),
  hfield("health-interval", "Interval", { placeholder: "500ms", pattern: durPattern }),
  hfield("health-deadline", "Deadline", { placeholder: "60s", pattern: durPattern }),
  el("button", { type: "submit", class: "primary", id: "health-save" }, "Save"));
  const healthPanel = panel("health", "Health check", el("p", { class: "muted" }, "A new release gets traffic only once this answers 2xx or 3xx."), healthForm);
  on("app", (app) => {
    if (healthForm.dataset.filled) return;
    healthForm.dataset.filled = "1";
    const h = app.health || {};
    document.getElementById("health-path").value = h.path || "";
    for (const k of ["timeout", "interval", "deadline"]) document.getElementById(`health-${k}`).value = dur(h[k]);
  });

  // --- events ---
  const timeline = el("ol", { class: "timeline", id: "events" }, el("li", { class: "none muted", id: "no-events" }, "No deploys yet."));
  const eventsPanel = panel("events-panel", "Events", timeline);
  on("events", (events) => {
    if (events.length === 0) return;
    syncChildren(timeline, events.slice().reverse(), (e) => `${e.time}|${e.kind}|${e.release || 0}`, (e) =>
      el("li", {}, agoEl("span", e.time, { class: "when" }),
        el("span", {}, el("span", { class: `kind ${e.kind.replace(/\s+/g, "-")}` }, e.kind), e.release ? ` v${e.release}` : "", el("br"),
          el("span", { class: "muted" }, e.message))));
  });

  // --- restart and destroy ---
  async function restart() {
    if (!(await confirmDialog(`Restart ${name}?`, "Each replica is replaced by a fresh one, one at a time; requests keep being served.", "Restart"))) return;
    const out = outputBox(actionsBar, "restart-output");
    await runStream(restartBtn, out, `${base}/restart`, { method: "POST" }, () => "-----> restarted");
  }
  const destroyInput = el("input", { id: "destroy-confirm", autocomplete: "off", spellcheck: "false", placeholder: name, "aria-label": `type ${name} to confirm` });
  const destroyBtn = el("button", { type: "submit", class: "danger", id: "destroy", disabled: true }, `Destroy ${name}`);
  destroyInput.addEventListener("input", () => { destroyBtn.disabled = destroyInput.value !== name; });
  const destroyForm = el("form", { id: "destroy-form", class: "inline-form", onsubmit: async (ev) => {
    ev.preventDefault();
    if (destroyInput.value !== name) return;
    destroyBtn.disabled = true;
    const resp = await api(`${base}?confirm=${encodeURIComponent(destroyInput.value)}`, { method: "DELETE" });
    if (!resp.ok) { formNote(destroyForm, "destroy-note", await errorOf(resp), true); destroyBtn.disabled = false; return; }
    stopAll();
    location.href = "/";
  } }, el("label", { for: "destroy-confirm" }, el("span", {}, "Type ", el("code", {}, name), " to confirm"), destroyInput), destroyBtn);
  const dangerPanel = panel("danger", "Destroy", el("p", { class: "muted" }, "Removes the app's containers, releases, images, config and repository. There is no undo."), destroyForm);

  // Sections in page order; later panels (plat.appPanels) join after the
  // section they name.
  const sections = [head, deployPanel, logsPanel, releasesPanel, scalingPanel,
    el("div", { class: "grid2", "data-section": "settings" }, el("div", { class: "stack" }, configPanel, healthPanel), el("div", { class: "stack" }, domainsPanel, eventsPanel)),
    dangerPanel];
  for (const p of window.plat.appPanels) {
    const sec = panel(p.id, p.title);
    const i = sections.findIndex((s) => s.dataset.section === p.after);
    sections.splice(i < 0 ? sections.length - 1 : i + 1, 0, sec);
    p.mount(sec, { name, base, on, state });
  }
  main.replaceChildren(...sections);

  const stopLogs = followLogs(base, logView, logState);
  const handlers = {
    gone() { stopAll(); main.replaceChildren(el("div", { class: "panel empty-state", id: "missing" }, `${name} was destroyed. `, el("a", { href: "/" }, "See all apps"), ".")); },
  };
  for (const ev of ["app", "releases", "events", "domains", "ps", "deploy"]) handlers[ev] = (data) => (listeners[ev] || []).forEach((fn) => fn(data));
  // After an HTTP error the stream is opened again only if the app still exists.
  const stopWatch = watch(`${base}/watch`, handlers, async () => (await api(base)).status !== 404);
  function stopAll() { stopWatch(); stopLogs(); }
  for (const fn of listeners.app || []) fn(state.app);
}

// followLogs shows the app's live logs over a websocket and reconnects with
// backoff, asking for the lines after the last one shown, so a network drop
// or a daemon restart loses and repeats nothing the server still has.
function followLogs(base, view, state) {
  const maxLines = 2000;
  let last = "", delay = 500, empty = true, stopped = false, ws;
  const connect = () => {
    const proto = location.protocol === "https:" ? "wss:" : "ws:";
    const q = last ? `?since=${encodeURIComponent(last)}` : "";
    ws = new WebSocket(`${proto}//${location.host}${base}/logs/ws${q}`);
    ws.onopen = () => { state.className = "live on"; state.textContent = "live"; delay = 500; };
    ws.onmessage = (ev) => {
      const line = JSON.parse(ev.data);
      last = line.time;
      if (empty) { view.replaceChildren(); empty = false; }
      const atEnd = view.scrollTop + view.clientHeight >= view.scrollHeight - 4;
      // The router's request lines say so, as `plat logs` does, and are
      // dimmer than the app's own output.
      const router = line.source === "router";
      view.append(el("div", { class: router ? "line router" : "line", "data-replica": line.replica, "data-source": line.source },
        el("span", { class: "ts", title: line.time }, clock(line.time)),
        router ? el("span", { class: "source" }, "router | ") : "",
        !router && line.replica ? el("span", { class: "replica" }, `${line.replica} | `) : "",
        line.text));
      while (view.childElementCount > maxLines) view.firstElementChild.remove();
      if (atEnd) view.scrollTop = view.scrollHeight;
    };
    ws.onclose = async () => {
      if (stopped) return;
      state.className = "live off";
      state.textContent = "reconnecting";
      // A closed socket may mean the session ended: ask once, cheaply.
      try { await api("/api/whoami"); } catch (e) { if (e instanceof AuthError) return; }
      if (!stopped) setTimeout(connect, delay);
      delay = Math.min(delay * 2, 10000);
    };
  };
  connect();
  return () => { stopped = true; if (ws) ws.close(); };
}
