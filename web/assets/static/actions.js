// plat dashboard: actions. Every one goes through the same JSON API as the
// CLI, with the CSRF token (api() adds it), and shows its progress right
// next to the control that started it.
"use strict";

// outputBox is a progress area placed after the element the user clicked.
function outputBox(after, id) {
  let box = id && document.getElementById(id);
  if (!box) {
    box = el("pre", { class: "terminal short inline-out", id, role: "status", "aria-live": "polite" });
    after.after(box);
  }
  box.hidden = false;
  box.classList.remove("failed", "ok");
  box.textContent = "";
  return box;
}

// runStream sends a request whose answer streams NDJSON progress
// ({"progress"}, then {"release"|"app"} or {"error"}) into box; button is
// disabled meanwhile. It returns the final result, or null on failure.
async function runStream(button, box, path, opts, describe) {
  const line = (text) => {
    const atEnd = box.scrollTop + box.clientHeight >= box.scrollHeight - 4;
    box.append(text + "\n");
    if (atEnd) box.scrollTop = box.scrollHeight;
  };
  const fail = (msg) => { box.classList.add("failed"); line(`error: ${msg}`); };
  if (button) button.disabled = true;
  let result = null;
  try {
    const resp = await api(path, opts);
    if (!resp.ok) throw new Error(await errorOf(resp));
    await readNDJSON(resp, (msg) => {
      if (msg.progress !== undefined) line(msg.progress);
      if (msg.error) fail(msg.error);
      const done = msg.release || msg.app;
      if (done) { result = done; box.classList.add("ok"); line(describe ? describe(done) : "-----> done"); }
    });
  } catch (e) {
    if (!(e instanceof AuthError)) fail(e.message);
  }
  if (button) button.disabled = false;
  return result;
}

// confirmDialog asks a question; content is a node or text. It resolves
// true when the user confirms.
function confirmDialog(title, content, okLabel) {
  const dlg = document.getElementById("confirm");
  document.getElementById("confirm-title").textContent = title;
  document.getElementById("confirm-text").replaceChildren(content);
  document.getElementById("confirm-ok").textContent = okLabel || "OK";
  dlg.returnValue = "";
  dlg.showModal();
  return new Promise((resolve) => dlg.addEventListener("close", () => resolve(dlg.returnValue === "ok"), { once: true }));
}

// formError shows an API error under a form.
function formNote(form, id, text, bad) {
  let n = document.getElementById(id);
  if (!n) { n = el("p", { id, role: "status" }); form.after(n); }
  n.className = bad ? "error" : "note";
  n.textContent = text;
  n.hidden = !text;
}

// --- create an app ---

function createAppDialog() {
  let dlg = document.getElementById("create-app");
  if (dlg) dlg.remove();
  const input = el("input", { id: "create-name", name: "name", required: true, autocomplete: "off", spellcheck: "false",
    pattern: "[a-z][a-z0-9-]*", title: "lower-case letters, digits and dashes, starting with a letter", placeholder: "myapp" });
  const body = el("div", { id: "create-body" });
  const form = el("form", { id: "create-form", onsubmit: async (ev) => {
    ev.preventDefault();
    const submit = form.querySelector("button.primary");
    submit.disabled = true;
    try {
      const resp = await api("/api/apps", { method: "POST", body: { name: input.value.trim() } });
      if (!resp.ok) { formNote(form, "create-error", await errorOf(resp), true); return; }
      const app = await resp.json();
      form.hidden = true;
      body.replaceChildren(
        el("p", {}, "Created ", el("strong", {}, app.name), ". In your app's git repository:"),
        copyLine(`git remote add platform ${app.git_url}`, "create-remote"),
        copyLine("git push platform main", "create-push"),
        el("p", { class: "muted" }, "Git asks for a password: paste an API token (any user name). Or let the CLI set the remote with your token: ", el("code", {}, `plat git:remote ${app.name}`), "."),
        el("menu", {}, el("button", { type: "button", onclick: () => dlg.close() }, "Close"),
          el("a", { class: "button primary", href: `/apps/${encodeURIComponent(app.name)}`, id: "create-open" }, `Open ${app.name}`)));
    } catch (e) {
      if (!(e instanceof AuthError)) formNote(form, "create-error", e.message, true);
    } finally {
      submit.disabled = false;
    }
  } },
  el("label", { for: "create-name" }, "App name"), input,
  el("menu", {}, el("button", { type: "button", onclick: () => dlg.close() }, "Cancel"), el("button", { type: "submit", class: "primary", id: "create-submit" }, "Create app")));
  dlg = el("dialog", { id: "create-app", class: "wide" }, el("h2", {}, "New app"), form, body);
  document.body.append(dlg);
  dlg.showModal();
  input.focus();
}

// --- tokens ---

function tokensPage() {
  document.title = "Tokens · plat";
  const list = el("div", { class: "scroll-x", id: "tokens" });
  const name = el("input", { id: "token-name", required: true, placeholder: "laptop", autocomplete: "off" });
  const expires = el("input", { id: "token-expires", placeholder: "90d", title: "lifetime like 90d or 12h; empty: never expires", autocomplete: "off" });
  const created = el("div", { id: "token-created" });
  const form = el("form", { class: "inline-form", id: "token-form", onsubmit: async (ev) => {
    ev.preventDefault();
    const resp = await api("/api/tokens", { method: "POST", body: { name: name.value.trim(), expires_in: expires.value.trim() } });
    if (!resp.ok) { formNote(form, "token-error", await errorOf(resp), true); return; }
    formNote(form, "token-error", "", false);
    const tok = await resp.json();
    created.replaceChildren(el("div", { class: "panel notice" },
      el("p", {}, "Token ", el("strong", {}, tok.name), " created. Copy it now: it is not shown again."),
      copyLine(tok.token, "token-secret")));
    name.value = ""; expires.value = "";
    load();
  } },
  el("label", { for: "token-name" }, "Name", name), el("label", { for: "token-expires" }, "Expires in", expires),
  el("button", { type: "submit", class: "primary", id: "token-create" }, "Create token"));
  main.replaceChildren(
    el("div", { class: "page-head" }, el("div", {}, el("h1", {}, "API tokens"), el("p", { class: "muted" }, "Tokens log in the CLI, git pushes and this dashboard."))),
    el("section", { class: "panel" }, el("h2", {}, "New token"), form, created),
    el("section", { class: "panel" }, el("h2", {}, "Tokens"), list));
  async function load() {
    const toks = await json("/api/tokens");
    list.replaceChildren(el("table", {}, el("thead", {}, el("tr", {}, el("th", {}, "Name"), el("th", {}, "Created"), el("th", {}, "Last used"), el("th", {}, "Expires"), el("th", {}))),
      el("tbody", {}, toks.map((t) => el("tr", { "data-token": t.name },
        el("td", {}, el("strong", {}, t.name), t.current ? el("span", { class: "muted" }, " (this session)") : ""),
        agoEl("td", t.created_at), agoEl("td", t.last_used),
        el("td", {}, t.expired ? badge("expired") : t.expires_at ? new Date(t.expires_at).toLocaleDateString() : "never"),
        el("td", { class: "actions" }, el("button", { class: "small danger", onclick: async (ev) => {
          const ok = await confirmDialog(`Revoke ${t.name}?`, t.current ? "This session uses it: you will be logged out." : "Clients using it stop working at once.", "Revoke");
          if (!ok) return;
          const resp = await api(`/api/tokens/${encodeURIComponent(t.name)}`, { method: "DELETE" });
          if (!resp.ok) { formNote(ev.target.closest("table"), "revoke-error", await errorOf(resp), true); return; }
          load();
        } }, "Revoke")))))));
  }
  load();
}
