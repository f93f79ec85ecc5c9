// plat dashboard: the swarm's nodes on the apps page (/), from GET
// /api/nodes, only when the daemon runs in swarm mode (a plain daemon
// answers 409 and the panel stays away). Read once per visit: nodes change
// seldom, and `plat nodes` is there for a fresh look.
"use strict";

(() => {
  if (location.pathname !== "/") return;
  const { el, api } = window.plat;
  (async () => {
    let resp;
    try { resp = await api("/api/nodes"); } catch { return; }
    if (!resp.ok) return; // 409: not in swarm mode
    const nodes = await resp.json();
    const rows = nodes.map((n) => el("tr", { "data-node": n.hostname },
      el("td", {}, el("strong", {}, n.hostname)),
      el("td", {}, n.leader ? `${n.role} (leader)` : n.role),
      el("td", {}, n.state),
      el("td", {}, n.availability),
      el("td", { class: "mono hide-narrow" }, n.addr || "—"),
      el("td", { class: "hide-narrow" }, n.engine || "—"),
      el("td", { class: "tasks" }, (n.tasks || []).map((t) => `${t.app} v${t.release}`).join(", ") || "—")));
    const sec = el("section", { class: "panel", id: "nodes" }, el("h2", {}, "Swarm nodes"),
      el("div", { class: "scroll-x" }, el("table", {},
        el("thead", {}, el("tr", {}, el("th", {}, "Node"), el("th", {}, "Role"), el("th", {}, "State"), el("th", {}, "Availability"),
          el("th", { class: "hide-narrow" }, "Address"), el("th", { class: "hide-narrow" }, "Engine"), el("th", {}, "Replicas"))),
        el("tbody", {}, ...rows))));
    // After the app cards, before the CLI panel.
    const apps = document.getElementById("apps");
    if (apps) apps.after(sec); else document.getElementById("main").append(sec);
  })();
})();
