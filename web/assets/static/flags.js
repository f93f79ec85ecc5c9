// plat dashboard: an app's feature flags (plat flags) on its page, each with
// an on/off toggle and a percentage of users. Joins the app page through
// plat.appPanels; reloads when the app's timeline moves (every flag change
// is an event), so a change from the CLI shows up too.
"use strict";

(() => {
  const { el, api, errorOf } = window.plat;
  window.plat.appPanels.push({
    id: "flags-panel", title: "Feature flags", after: "scaling",
    mount(section, { name, base, on }) {
      const path = `${base}/flags`;
      const list = el("tbody", { id: "flags" });
      const msg = el("p", { class: "error", id: "flags-error", role: "alert", hidden: true });
      const help = el("p", { class: "muted" }, "Your app sees the flags that are on for each user in the ",
        el("code", {}, "Plat-Flags"), " request header. A percentage keeps the same users on as it grows.");
      const newName = el("input", { id: "flag-name", placeholder: "new-checkout", pattern: "[a-z0-9][a-z0-9._-]*", "aria-label": "flag name" });
      const newPct = el("input", { id: "flag-percent", type: "number", min: 0, max: 100, value: 100, "aria-label": "percent of users" });
      const form = el("form", { class: "inline-form", id: "flag-form", onsubmit: (e) => { e.preventDefault(); set(newName.value.trim(), Number(newPct.value)).then((ok) => { if (ok) newName.value = ""; }); } },
        newName, newPct, el("span", {}, "%"), el("button", { type: "submit" }, "Add flag"));
      section.append(help, el("table", { class: "flags" },
        el("thead", {}, el("tr", {}, el("th", {}, "Flag"), el("th", {}, "On"), el("th", {}, "Users"), el("th", {}))), list), msg, form);

      function showError(text) { msg.textContent = text || ""; msg.hidden = !text; }

      async function set(flag, percent) {
        if (!flag) return false;
        const resp = await api(path, { method: "POST", body: { flags: { [flag]: percent } } });
        if (!resp.ok) { showError(await errorOf(resp)); return false; }
        showError("");
        render(await resp.json());
        return true;
      }

      async function unset(flag) {
        const resp = await api(`${path}/${encodeURIComponent(flag)}`, { method: "DELETE" });
        if (!resp.ok) { showError(await errorOf(resp)); return; }
        showError("");
        render(await resp.json());
      }

      function row(f) {
        const toggle = el("input", { type: "checkbox", "aria-label": `${f.name} on`, onchange: () => set(f.name, toggle.checked ? Math.max(f.percent, 100) : 0) });
        toggle.checked = f.percent > 0;
        const pct = el("input", { type: "number", min: 0, max: 100, value: f.percent, class: "flag-percent", "aria-label": `${f.name} percent`,
          onchange: () => set(f.name, Number(pct.value)) });
        return el("tr", { "data-flag": f.name },
          el("td", { class: "mono" }, f.name), el("td", {}, toggle), el("td", {}, pct, "%"),
          el("td", {}, el("button", { class: "small", onclick: () => unset(f.name) }, "Remove")));
      }

      function render(data) {
        const flags = data.flags || [];
        // Keep a row whose input has focus: the user is typing in it.
        if (section.contains(document.activeElement) && list.contains(document.activeElement)) return;
        list.replaceChildren(...(flags.length ? flags.map(row) : [el("tr", {}, el("td", { colspan: 4, class: "muted" }, "No flags yet."))]));
      }

      async function load() {
        const resp = await api(path);
        if (resp.ok) render(await resp.json());
      }
      load();
      on("events", () => load());
    },
  });
})();
