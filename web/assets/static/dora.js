// plat dashboard: the DORA delivery metrics (docs/dora.md) of every app on
// the apps page (/) and of one app on its page (/apps/NAME), drawn into
// #dora. Self-contained: app.js knows nothing of it.
"use strict";

(() => {
  const box = document.getElementById("dora");
  const page = location.pathname.match(/^\/apps\/([^/]+)$/);
  if (!box || (!page && location.pathname !== "/")) return;
  const path = page ? `/api/apps/${encodeURIComponent(decodeURIComponent(page[1]))}/dora` : "/api/dora";
  const refreshEvery = 60000; // the numbers move with deploys, not by the second

  const css = document.createElement("link");
  css.rel = "stylesheet";
  css.href = "/static/dora.css";
  document.head.append(css);

  function h(tag, attrs, ...kids) {
    const e = tag === "svg" || tag === "rect" || tag === "title"
      ? document.createElementNS("http://www.w3.org/2000/svg", tag) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) e.setAttribute(k, v);
    for (const c of kids.flat()) if (c !== undefined && c !== null) e.append(c instanceof Node ? c : String(c));
    return e;
  }

  // seconds reads a Go duration string ("1h20m0s", "250ms").
  function seconds(s) {
    const unit = { h: 3600, m: 60, s: 1, ms: 1e-3, us: 1e-6, "µs": 1e-6, ns: 1e-9 };
    let total = 0;
    for (const [, n, u] of s.matchAll(/([0-9.]+)(h|ms|m|s|us|µs|ns)/g)) total += parseFloat(n) * unit[u];
    return total;
  }

  // short prints a duration the way people say it: 2d4h, 1h20m, 25m, 40s.
  function short(s) {
    if (!s) return "—";
    const t = Math.round(seconds(s));
    const d = Math.floor(t / 86400), hr = Math.floor((t % 86400) / 3600), m = Math.floor((t % 3600) / 60);
    if (d >= 2) return `${d}d${hr ? hr + "h" : ""}`;
    if (t >= 3600) return `${Math.floor(t / 3600)}h${m ? m + "m" : ""}`;
    if (t >= 60) return `${m}m`;
    return `${t}s`;
  }

  const pct = (r) => (r === null || r === undefined ? "—" : `${Math.round(r * 100)}%`);
  const day = (iso) => new Date(iso).toLocaleDateString([], { month: "short", day: "numeric" });

  function tile(key, label, value, detail, band, help) {
    return h("div", { class: "dora-tile", "data-metric": key, title: help },
      h("div", { class: "dora-label" }, label),
      h("div", { class: "dora-value" }, value),
      h("div", { class: "dora-detail" }, detail, " ", band ? h("span", { class: `dora-band ${band}` }, band) : ""));
  }

  // trend draws the deploys of each period as bars, failures in red.
  function trend(periods) {
    const w = 12, gap = 4, height = 28;
    const most = Math.max(1, ...periods.map((p) => p.deployment_frequency.deploys));
    const svg = h("svg", { class: "dora-trend", width: periods.length * (w + gap), height, role: "img", "aria-label": "deploys per week" });
    periods.forEach((p, i) => {
      const n = p.deployment_frequency.deploys, failed = p.change_failure_rate.failed;
      const tip = `${day(p.from)} – ${day(p.to)}: ${n} deploys, lead time ${short(p.lead_time.median)}, failure rate ${pct(p.change_failure_rate.rate)}, restore ${short(p.time_to_restore.median)}`;
      const bh = Math.max(1, Math.round((n / most) * height)), fh = Math.round((failed / most) * height);
      svg.append(h("rect", { x: i * (w + gap), y: height - bh, width: w, height: bh, class: "ok" }, h("title", {}, tip)));
      if (fh > 0) svg.append(h("rect", { x: i * (w + gap), y: height - fh, width: w, height: fh, class: "bad" }, h("title", {}, tip)));
    });
    return svg;
  }

  function render(d) {
    const df = d.deployment_frequency, lt = d.lead_time, cf = d.change_failure_rate, tr = d.time_to_restore;
    box.replaceChildren(
      h("div", { class: "dora-head" },
        h("h2", {}, "Delivery"),
        h("span", { class: "muted" }, `DORA metrics, last ${d.days} days${d.app ? "" : ", all apps"}`),
        trend(d.trend)),
      h("div", { class: "dora-tiles" },
        tile("deployment_frequency", "Deploys", String(df.deploys), `${df.per_week}/week`, df.band,
          "Push, config and resources releases that went live (rollbacks are not deploys)."),
        tile("lead_time", "Lead time", short(lt.median), lt.samples ? `median of ${lt.samples}` : "no pushes", lt.band,
          "From the pushed commit's time to the release going live."),
        tile("change_failure_rate", "Change failure rate", pct(cf.rate), `${cf.failed} of ${cf.deploys}`, cf.band,
          `Deploys replaced by a rollback, or by another deploy within ${short(d.fix_window)}.`),
        tile("time_to_restore", "Time to restore", short(tr.median), tr.samples ? `median of ${tr.samples}` : "no incidents", tr.band,
          "From a failed deploy going live to the next good release going live.")));
    box.hidden = false;
  }

  let timer;
  async function load() {
    try {
      const resp = await fetch(`${path}?days=30`, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (resp.status === 404 || resp.status === 401) { // no such app, or logged out: stop asking
        box.hidden = true;
        clearInterval(timer);
        return;
      }
      if (resp.ok) render(await resp.json());
    } catch (e) {
      // Unreachable daemon: keep the last numbers; the next round retries.
    }
  }
  load();
  timer = setInterval(() => { if (!document.hidden) load(); }, refreshEvery);
})();
