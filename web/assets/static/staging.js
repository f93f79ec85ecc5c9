// plat dashboard: an app's branch previews (a panel on its page) and the
// Promote and Unstage buttons of a staged release's row. The panel joins
// through plat.appPanels and is hidden while the app has no preview; a
// push or deletion of a branch is an event on the app's timeline, so it
// reloads then, and every few seconds while previews exist (a preview
// sleeps and wakes without an event). The buttons join each release row
// through plat.releaseActions.
"use strict";

(() => {
  const { el, api, errorOf, badge, agoEl } = window.plat;
  const every = 5000; // previews' sleeping/running changes are not events

  window.plat.appPanels.push({
    id: "previews-panel", title: "Branch previews", after: "releases-panel",
    mount(section, { base, on }) {
      section.hidden = true;
      const list = el("tbody", { id: "previews" });
      section.append(el("div", { class: "scroll-x" }, el("table", { class: "previews cards-narrow" },
        el("thead", {}, el("tr", {}, el("th", {}, "Branch"), el("th", {}, "Release"), el("th", {}, "URL"), el("th", {}, "Last push"), el("th", {}, "Status"))),
        list)),
      el("p", { class: "muted" }, "A push of any branch but main runs it here; deleting the branch (",
        el("code", {}, "git push platform :BRANCH"), ") deletes its preview."));
      let timer = null, stopped = false;

      const row = (p) => el("tr", { "data-branch": p.branch },
        el("td", { class: "mono", "data-label": "Branch" }, p.branch),
        el("td", { "data-label": "Release" }, p.release ? `v${p.release}` : "—"),
        el("td", { "data-label": "URL" }, el("a", { href: p.url, target: "_blank", rel: "noopener", class: "preview-url" }, p.url)),
        agoEl("td", p.last_push, { "data-label": "Last push" }),
        el("td", { "data-label": "Status" }, badge(p.status)));

      async function load() {
        clearTimeout(timer);
        if (stopped) return;
        const resp = await api(`${base}/previews`); // a 401 throws: no more polls
        if (resp.status === 404) { stopped = true; return; } // the app is gone
        if (!resp.ok) return;
        const previews = await resp.json();
        section.hidden = !previews.length;
        window.plat.syncChildren(list, previews, (p) => p.branch, row);
        if (previews.length) timer = setTimeout(load, every);
      }
      load();
      on("events", () => load());
    },
  });

  // stagedActions are the Promote and Unstage buttons of a staged release;
  // each asks first, then shows its progress or error under the row.
  window.plat.releaseActions.push((r, { name, base, rowOf }) => {
    if (r.status !== "staged") return "";
    const path = `${base}/releases/${r.version}`;
    const promote = async () => {
      const body = el("p", {}, `Production switches to v${r.version} with the app's strategy; the live release keeps serving until then. `,
        r.preview ? ["It runs now at ", el("a", { href: r.preview, target: "_blank", rel: "noopener" }, r.preview), "."] : "");
      if (!(await confirmDialog(`Promote v${r.version} of ${name}?`, body, "Promote"))) return;
      const out = inlineRow(rowOf(r.version), "promote-output");
      out.scrollIntoView({ block: "nearest" });
      await runStream(rowOf(r.version).querySelector("button.promote"), out, `${path}/promote`, { method: "POST" },
        (rel) => `-----> v${rel.version} is live`);
    };
    const unstage = async () => {
      if (!(await confirmDialog(`Unstage v${r.version} of ${name}?`, `v${r.version} stops running at its preview URL; production is not changed.`, "Unstage"))) return;
      const button = rowOf(r.version).querySelector("button.unstage");
      button.disabled = true;
      try {
        const resp = await api(`${path}/unstage`, { method: "POST" });
        if (!resp.ok) {
          const out = inlineRow(rowOf(r.version), "unstage-output");
          out.classList.add("failed");
          out.textContent = `error: ${await errorOf(resp)}`;
        }
      } finally {
        button.disabled = false;
      }
    };
    return [
      el("button", { class: "small primary promote", "data-version": r.version, onclick: promote }, "Promote"),
      el("button", { class: "small unstage", "data-version": r.version, onclick: unstage }, "Unstage"),
    ];
  });
})();
