// plat dashboard: the rollout in progress on an app's page (/apps/NAME),
// drawn into #rollout: a split bar with the weights, each release's
// requests, 5xx % and p99 in the current step, and Promote / Abort buttons
// (confirmed, with the CSRF token, like Roll back; confirmDialog is
// actions.js's). It polls GET
// .../rollout every second while a rollout runs, every 10 s otherwise.
// Self-contained: app.js knows nothing of it.
"use strict";

(() => {
  const box = document.getElementById("rollout");
  const page = location.pathname.match(/^\/apps\/([^/]+)$/);
  if (!box || !page) return;
  const app = decodeURIComponent(page[1]);
  const base = `/api/apps/${encodeURIComponent(app)}/rollout`;
  const csrf = document.querySelector('meta[name="csrf-token"]').content;
  const fast = 1000, slow = 10000;

  const css = document.createElement("link");
  css.rel = "stylesheet";
  css.href = "/static/rollout.css";
  document.head.append(css);

  function h(tag, attrs, ...kids) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (k === "class") e.className = v;
      else e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of kids.flat()) if (c !== undefined && c !== null) e.append(c instanceof Node ? c : String(c));
    return e;
  }

  // ms prints a Go duration string ("12.5ms", "1.2s") as milliseconds.
  function ms(s) {
    const unit = { h: 3600e3, m: 60e3, s: 1e3, ms: 1, us: 1e-3, "µs": 1e-3, ns: 1e-6 };
    let total = 0;
    for (const [, n, u] of (s || "").matchAll(/([0-9.]+)(h|ms|m|s|us|µs|ns)/g)) total += parseFloat(n) * unit[u];
    return total >= 1000 ? `${(total / 1000).toFixed(2)} s` : `${Math.round(total)} ms`;
  }

  let busy = false;
  // act confirms (the dashboard's confirmDialog, as Roll back does), then
  // promotes or aborts; the answer comes once traffic moved.
  async function act(action, st) {
    const promote = action === "promote";
    const ok = await confirmDialog(promote ? `Promote v${st.to} of ${app}?` : `Abort the rollout of v${st.to}?`,
      promote ? `v${st.to} gets all requests at once and the remaining steps are skipped; v${st.from} drains and stops.`
        : `All requests go back to v${st.from} at once and v${st.to} is recorded as failed.`,
      promote ? "Promote" : "Abort");
    if (!ok) return;
    busy = true;
    box.querySelectorAll("button").forEach((b) => { b.disabled = true; });
    try {
      const resp = await fetch(`${base}/${action}`, {
        method: "POST", credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRF-Token": csrf },
      });
      if (resp.status === 401) { location.href = "/login"; return; }
      if (!resp.ok) box.append(h("p", { class: "rollout-error" }, (await resp.json()).error || resp.statusText));
    } finally {
      busy = false;
      poll();
    }
  }

  function render(st) {
    const [stable, canary] = st.releases.length === 2 ? st.releases
      : [{ version: st.from, weight: 100 - st.weight, requests: 0, error_rate: 0, p99: "0s" }, { version: st.to, weight: st.weight, requests: 0, error_rate: 0, p99: "0s" }];
    const seg = (r, cls) => {
      const s = h("div", { class: `rollout-seg ${cls}`, title: `v${r.version}: ${r.weight}% of requests` }, r.weight >= 8 ? `v${r.version} ${r.weight}%` : "");
      s.style.width = `${r.weight}%`; // CSSOM: allowed by the page's CSP
      return s;
    };
    const step = st.step > 0 ? `step ${st.step} of ${st.steps.length} (${st.steps.map((p) => p + "%").join(", ")})` : "starting: the new replicas are health-checked";
    const ends = st.step_ends ? Math.max(0, Math.round((new Date(st.step_ends) - Date.now()) / 1000)) : null;
    box.replaceChildren(
      h("div", { class: "rollout-head" },
        h("h2", {}, `${st.strategy} rollout: v${st.from} → v${st.to}`),
        h("span", { class: "rollout-state", "data-state": st.state }, st.state),
        h("span", { class: "muted" }, step, ends !== null && st.state === "step" ? ` · judged in ${ends}s` : "", st.extensions ? ` · extended ${st.extensions}× (too few requests)` : "")),
      h("div", { class: "rollout-bar", role: "img", "aria-label": `v${stable.version} ${stable.weight}%, v${canary.version} ${canary.weight}%` },
        seg(stable, "stable"), seg(canary, "canary")),
      h("table", { class: "rollout-table" },
        h("thead", {}, h("tr", {}, ["release", "role", "weight", "requests (step)", "5xx", "p50", "p99"].map((c) => h("th", {}, c)))),
        h("tbody", {}, st.releases.map((r) => h("tr", { "data-release": r.version, class: r.role },
          h("td", {}, `v${r.version}`), h("td", {}, r.role), h("td", {}, `${r.weight}%`), h("td", { class: "requests" }, r.requests),
          h("td", { class: "errors" }, `${r.error_rate.toFixed(1)}%`), h("td", {}, ms(r.p50)), h("td", { class: "p99" }, ms(r.p99)))))),
      h("div", { class: "rollout-actions" },
        h("button", { class: "small primary", id: "rollout-promote", disabled: busy || st.state !== "step", onclick: () => act("promote", st) }, "Promote"),
        h("button", { class: "small danger", id: "rollout-abort", disabled: busy || st.state === "aborting", onclick: () => act("abort", st) }, "Abort")));
    box.hidden = false;
  }

  let timer;
  async function poll() {
    clearTimeout(timer);
    let running = false;
    try {
      const resp = await fetch(base, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (resp.status === 401) { location.href = "/login"; return; }
      if (resp.ok) {
        running = true;
        if (!busy) render(await resp.json());
      } else {
        box.hidden = true;
        box.replaceChildren();
      }
    } catch (e) {
      // The daemon restarts or the network blips: try again later.
    }
    timer = setTimeout(poll, running ? fast : slow);
  }
  // A tab brought back to the front looks at once.
  document.addEventListener("visibilitychange", () => { if (!document.hidden) poll(); });
  poll();
})();
