// plat dashboard: the release-strategy form on an app's page. It joins the
// page as a plat.appPanels panel after "Replicas and scaling", shows only
// the settings of the strategy chosen (the API refuses another strategy's
// settings), sends PUT /api/apps/NAME/strategy with the CSRF token (api()
// adds it) and shows the API's error in place. Settings left empty take
// their defaults.
"use strict";

(() => {
  const { el, api, errorOf } = window.plat;
  const durPattern = "^([0-9]+(\\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$";
  // settings lists each strategy's fields: API name, label, input attributes.
  const settings = {
    "blue-green": [],
    canary: [
      ["steps", "Steps (%)", { placeholder: "10,50,100", pattern: "^\\s*\\d+(\\s*,\\s*\\d+)*\\s*$", title: "percent of requests to the new release at each step, e.g. 10,50,100" }],
      ["step_time", "Step time", { placeholder: "1m", pattern: durPattern, title: "how long a step runs before it is judged" }],
      ["max_error_rate", "Max 5xx %", { type: "number", step: "any", min: 0, max: 100, placeholder: "1" }],
      ["max_p99", "Max p99", { placeholder: "off", pattern: durPattern, title: "abort if the canary's p99 latency is above this; 0s: off" }],
      ["min_requests", "Min requests", { type: "number", min: 0, placeholder: "20", title: "requests a step needs before it is judged" }],
    ],
    rolling: [["batch", "Batch", { type: "number", min: 1, placeholder: "1", title: "replicas replaced at a time" }]],
    "in-place": [["hold", "Hold", { placeholder: "0s", pattern: durPattern, title: "how long the old replicas wait after stopping traffic" }]],
  };
  const numeric = new Set(["max_error_rate", "min_requests", "batch"]);
  const id = (k) => `strategy-${k.replace(/_/g, "-")}`;

  window.plat.appPanels.push({
    id: "strategy", title: "Release strategy", after: "scaling",
    mount(sec, ctx) {
      const select = el("select", { id: "strategy-name", name: "name" },
        ...Object.keys(settings).map((n) => el("option", { value: n }, n)));
      const groups = {};
      for (const [name, fields] of Object.entries(settings)) {
        groups[name] = el("span", { class: "strategy-fields", "data-strategy": name, style: "display: contents" },
          ...fields.map(([k, label, attrs]) => el("label", { for: id(k) }, label,
            el("input", { id: id(k), name: k, type: "text", autocomplete: "off", ...attrs }))));
      }
      const show = () => {
        for (const [name, g] of Object.entries(groups)) {
          g.hidden = name !== select.value;
          g.style.display = g.hidden ? "none" : "contents";
          for (const input of g.querySelectorAll("input")) input.disabled = g.hidden;
        }
      };
      select.addEventListener("change", show);
      const save = el("button", { type: "submit", class: "primary", id: "strategy-save" }, "Save");
      const form = el("form", { id: "strategy-form", class: "inline-form", onsubmit: async (ev) => {
        ev.preventDefault();
        const body = { name: select.value };
        for (const [k] of settings[select.value]) {
          const v = document.getElementById(id(k)).value.trim();
          if (v === "") continue; // the default
          if (k === "steps") body.steps = v.split(",").map((p) => Number(p.trim()));
          else body[k] = numeric.has(k) ? Number(v) : v;
        }
        save.disabled = true;
        try {
          const resp = await api(`${ctx.base}/strategy`, { method: "PUT", body });
          if (!resp.ok) { formNote(form, "strategy-note", await errorOf(resp), true); return; }
          const s = await resp.json();
          fill(s, true);
          // The watch stream pushes the app too; show the change at once.
          const line = document.getElementById("app-strategy");
          if (line) { line.textContent = strategyText(s); line.title = s.description || ""; }
          formNote(form, "strategy-note", `Saved: the next deploy goes ${strategyText(s)}.`, false);
        } catch (e) {
          if (!(e instanceof AuthError)) formNote(form, "strategy-note", e.message, true);
        } finally {
          save.disabled = false;
        }
      } },
      el("label", { for: "strategy-name" }, "Strategy", select), ...Object.values(groups), save);
      sec.append(el("p", { class: "muted" }, "How the next releases go live; a deploy in progress keeps its strategy. Empty settings take their defaults."), form);
      // fill shows s in the form: once from the app, and after each save.
      function fill(s, force) {
        if (form.dataset.filled && !force) return;
        form.dataset.filled = "1";
        select.value = s && s.name && settings[s.name] ? s.name : "blue-green";
        for (const [k] of settings[select.value]) {
          const v = s[k];
          document.getElementById(id(k)).value = v === undefined || v === null ? "" : Array.isArray(v) ? v.join(",") : String(v);
        }
        show();
      }
      ctx.on("app", (app) => fill(app.strategy || {}, false));
      show();
    },
  });
})();
