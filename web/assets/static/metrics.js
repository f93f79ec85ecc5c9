// Traffic charts on the app page: requests per minute, 5xx share and p99
// latency of the last hour, as small inline SVGs drawn from
// GET /api/apps/{app}/metrics (one point per minute, the current minute
// last). Self-contained: it only fills the #traffic container and moves it
// below the app's header once app.js has drawn the page.
(() => {
  const m = location.pathname.match(/^\/apps\/([^/]+)$/);
  const box = document.getElementById("traffic");
  if (!m || !box) return;
  const name = decodeURIComponent(m[1]);
  const url = `/api/apps/${encodeURIComponent(name)}/metrics?since=1h`;
  const refreshEvery = 30000;
  const svgNS = "http://www.w3.org/2000/svg";
  const W = 300, H = 60;

  function node(tag, attrs, ...children) {
    const e = tag.startsWith("svg:") ? document.createElementNS(svgNS, tag.slice(4)) : document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) e.setAttribute(k, v);
    for (const c of children) e.append(c);
    return e;
  }

  // chart draws values (one per minute) as bars or a line, scaled to max.
  function chart(title, values, fmt, kind, color) {
    const max = Math.max(...values, 0);
    const n = Math.max(values.length, 1);
    const x = (i) => (i + 0.5) * (W / n);
    const y = (v) => H - 2 - (max > 0 ? (v / max) * (H - 6) : 0);
    const svg = node("svg:svg", { viewBox: `0 0 ${W} ${H}`, width: "100%", height: H, role: "img",
      "aria-label": `${title}: last ${fmt(values[values.length - 1] || 0)}, max ${fmt(max)}`, class: "traffic-chart" });
    svg.append(node("svg:line", { x1: 0, y1: H - 1, x2: W, y2: H - 1, stroke: "currentColor", "stroke-opacity": "0.25" }));
    if (kind === "bars") {
      const bw = Math.max(W / n - 1, 1);
      values.forEach((v, i) => {
        const r = node("svg:rect", { x: (x(i) - bw / 2).toFixed(1), y: y(v).toFixed(1), width: bw.toFixed(1),
          height: (H - 2 - y(v)).toFixed(1), fill: color });
        r.append(node("svg:title", {}, fmt(v)));
        svg.append(r);
      });
    } else if (values.length > 0) {
      const pts = values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`).join(" ");
      svg.append(node("svg:polyline", { points: pts, fill: "none", stroke: color, "stroke-width": "1.5" }));
    }
    const last = values.length ? values[values.length - 1] : 0;
    return node("figure", { class: "traffic-fig" },
      node("figcaption", {}, `${title} `, node("strong", {}, fmt(last)), node("span", { class: "muted" }, ` · max ${fmt(max)}`)), svg);
  }

  const int = (v) => String(Math.round(v));
  const pct = (v) => `${v.toFixed(1)}%`;
  const msf = (v) => (v < 10 ? `${v.toFixed(1)}ms` : `${Math.round(v)}ms`);

  function render(data) {
    const pts = data.points || [];
    const t = data.totals || {};
    box.replaceChildren(
      node("h2", {}, "Traffic ", node("span", { class: "muted" }, "last hour, per minute")),
      node("p", { class: "muted", id: "traffic-totals" },
        `${t.requests || 0} requests · ${t.status_5xx || 0} 5xx · p50 ${msf(t.p50_ms || 0)} · p95 ${msf(t.p95_ms || 0)} · p99 ${msf(t.p99_ms || 0)}`),
      node("div", { class: "traffic-charts" },
        chart("Requests/min", pts.map((p) => p.requests), int, "bars", "#4f7cff"),
        chart("5xx", pts.map((p) => (p.requests ? (100 * p.status_5xx) / p.requests : 0)), pct, "line", "#e5484d"),
        chart("p99", pts.map((p) => p.p99_ms), msf, "line", "#f5a524")));
    box.hidden = false;
  }

  // Lay the charts out without touching style.css (the dashboard's own).
  box.style.maxWidth = "1100px";
  const place = () => {
    const head = document.querySelector("#main .app-head");
    if (head && box.previousElementSibling !== head) head.after(box);
  };
  new MutationObserver(place).observe(document.getElementById("main") || document.body, { childList: true });
  const styleCharts = () => {
    const wrap = box.querySelector(".traffic-charts");
    if (!wrap) return;
    Object.assign(wrap.style, { display: "grid", gridTemplateColumns: "repeat(auto-fit, minmax(200px, 1fr))", gap: "1rem" });
    for (const f of wrap.querySelectorAll("figure")) f.style.margin = "0";
  };

  let timer = null;
  async function load() {
    try {
      const resp = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
      if (resp.status === 404 || resp.status === 401) return; // no such app, or logged out: stop
      if (resp.ok) {
        render(await resp.json());
        styleCharts();
        place();
      }
    } catch (e) {
      // The daemon is unreachable for a moment: try again at the next tick.
    }
    timer = setTimeout(load, refreshEvery);
  }
  document.addEventListener("visibilitychange", () => {
    if (document.hidden) { clearTimeout(timer); timer = null; } else if (timer === null) load();
  });
  load();
})();
