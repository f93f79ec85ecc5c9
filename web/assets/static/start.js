// plat dashboard: routes the page to its script (loaded last).
"use strict";

document.getElementById("logout").addEventListener("click", async () => {
  await fetch("/logout", { method: "POST", headers: { "X-CSRF-Token": csrf }, credentials: "same-origin" });
  location.href = "/login";
});

{
  const m = location.pathname.match(/^\/apps\/([^/]+)$/);
  if (m) appPage(decodeURIComponent(m[1])).catch((e) => { if (!(e instanceof AuthError)) main.replaceChildren(el("p", { class: "error" }, e.message)); });
  else if (location.pathname === "/tokens") tokensPage();
  else appsPage();
}
