// plat dashboard: an app's active shadow (plat shadow) on its page: how the
// mirrored release's answers compare with the live ones. Joins the app page
// through plat.appPanels; hidden while the app has no shadow. The numbers
// move with traffic, not with app events, so they are read every few
// seconds, and only while a shadow runs.
"use strict";

(() => {
  const { el, api, setText } = window.plat;
  const every = 3000;
  window.plat.appPanels.push({
    id: "shadow-panel", title: "Shadow traffic", after: "releases-panel",
    mount(section, { base, on }) {
      section.hidden = true;
      const summary = el("p", { id: "shadow-summary" });
      const facts = el("dl", { class: "facts", id: "shadow-facts" });
      section.append(summary, facts, el("p", { class: "muted" }, "Mirrored requests carry ", el("code", {}, "Plat-Shadow: 1"),
        "; their answers are compared, then discarded. The live answer never waits for them."));
      let timer = null;

      function render(sh) {
        section.dataset.read = "1"; // the shadow was read at least once
        section.hidden = !sh.active;
        if (!sh.active) return;
        setText(summary, `Mirroring ${sh.percent}% of ${sh.methods.join(", ")} requests to ${sh.release}.`);
        const pairs = Object.entries(sh.pairs || {}).map(([k, n]) => `${k}: ${n}`).join(", ");
        const rows = [
          ["Mirrored", String(sh.mirrored)], ["Dropped (queue full)", String(sh.dropped)],
          ["Not mirrored (body over 1 MiB)", String(sh.too_large)], ["Shadow errors", String(sh.errors)],
          ["Status match", String(sh.match)], ["Status mismatch", `${sh.mismatch}${pairs && sh.mismatch ? ` (${pairs})` : ""}`],
          ["p50 live / shadow", `${sh.live_p50 || "—"} / ${sh.shadow_p50 || "—"}`],
          ["p99 live / shadow", `${sh.live_p99 || "—"} / ${sh.shadow_p99 || "—"}`],
        ];
        facts.replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", { "data-key": k }, v)]));
      }

      // load reads the shadow; only the newest of overlapping loads (a
      // timer's and an event's) renders, and a failed read is retried
      // while the panel shows, so a stopped shadow never stays on screen.
      let seq = 0;
      async function load() {
        const mine = ++seq;
        clearTimeout(timer);
        let sh = null;
        try {
          const resp = await api(`${base}/shadow`);
          if (resp.status === 404 || resp.status === 401) return;
          if (resp.ok) sh = await resp.json();
        } catch (_) {
          // unreachable for now: the page's banner says so; retry below
        }
        if (mine !== seq) return;
        if (sh) render(sh);
        if (sh ? sh.active : !section.hidden) timer = setTimeout(load, every);
      }
      load();
      on("events", () => load()); // a shadow started or stopped is an event
    },
  });
})();
