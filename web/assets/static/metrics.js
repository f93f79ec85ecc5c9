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

  // slots is the hour as 60 one-minute slots, the current minute last;
  // chart draws one value per slot (null: no data) as bars or a line.
  const slots = 60;
  function chart(title, values, fmt, kind, color) {
    const present = values.filter((v) => v !== null);
    const max = Math.max(...present, 0);
    const x = (i) => (i + 0.5) * (W / slots);
    const y = (v) => H - 2 - (max > 0 ? (v / max) * (H - 6) : 0);
    const svg = node("svg:svg", { viewBox: `0 0 ${W} ${H}`, width: "100%", height: H, role: "img", preserveAspectRatio: "none",
      "aria-label": `${title}: last ${fmt(present[present.length - 1] || 0)}, max ${fmt(max)}`, class: "traffic-chart" });
    svg.append(node("svg:line", { x1: 0, y1: H - 1, x2: W, y2: H - 1, stroke: "currentColor", "stroke-opacity": "0.25" }));
    const bw = W / slots - 1;
    let run = [];
    const flush = () => {
      if (run.length > 1) svg.append(node("svg:polyline", { points: run.join(" "), fill: "none", stroke: color, "stroke-width": "1.5" }));
      run = [];
    };
    values.forEach((v, i) => {
      if (v === null) { flush(); return; }
      if (kind === "bars") {
        const r = node("svg:rect", { x: (x(i) - bw / 2).toFixed(1), y: y(v).toFixed(1), width: bw.toFixed(1),
          height: (H - 2 - y(v)).toFixed(1), fill: color });
        r.append(node("svg:title", {}, fmt(v)));
        svg.append(r);
        return;
      }
      run.push(`${x(i).toFixed(1)},${y(v).toFixed(1)}`);
      const dot = node("svg:circle", { cx: x(i).toFixed(1), cy: y(v).toFixed(1), r: "1.8", fill: color });
      dot.append(node("svg:title", {}, fmt(v)));
      svg.append(dot);
    });
    flush();
    const last = present.length ? present[present.length - 1] : 0;
    return node("figure", { class: "traffic-fig" },
      node("figcaption", {}, `${title} `, node("strong", {}, fmt(last)), node("span", { class: "muted" }, ` · max ${fmt(max)}`)), svg);
  }

  // bySlot places each point's value in its minute of the last hour.
  function bySlot(data, value) {
    const out = new Array(slots).fill(null);
    const now = Date.parse(data.now);
    for (const p of data.points || []) {
      const ago = Math.floor((now - Date.parse(p.time)) / 60000);
      const i = slots - 1 - Math.min(Math.max(ago, 0), slots - 1);
      out[i] = value(p);
    }
    return out;
  }

  const int = (v) => String(Math.round(v));
  const pct = (v) => `${v.toFixed(1)}%`;
  const msf = (v) => (v < 10 ? `${v.toFixed(1)}ms` : `${Math.round(v)}ms`);

  function render(data) {
    const t = data.totals || {};
    box.replaceChildren(
      node("h2", {}, "Traffic ", node("span", { class: "muted" }, "last hour, per minute")),
      node("p", { class: "muted", id: "traffic-totals" },
        `${t.requests || 0} requests · ${t.status_5xx || 0} 5xx · p50 ${msf(t.p50_ms || 0)} · p95 ${msf(t.p95_ms || 0)} · p99 ${msf(t.p99_ms || 0)}`),
      node("div", { class: "traffic-charts" },
        chart("Requests/min", bySlot(data, (p) => p.requests), int, "bars", "#4f7cff"),
        chart("5xx", bySlot(data, (p) => (p.requests ? (100 * p.status_5xx) / p.requests : null)), pct, "line", "#e5484d"),
        chart("p99", bySlot(data, (p) => (p.requests ? p.p99_ms : null)), msf, "line", "#f5a524")));
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
