/**
 * The web console: one self-contained page (no external assets). Everything dynamic is rendered with
 * textContent / DOM APIs, never innerHTML, so API data cannot inject markup. The script runs under a
 * per-response CSP nonce.
 */
export function consolePage(nonce: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Cairn</title>
<style nonce="${nonce}">
body{font:14px system-ui,sans-serif;margin:0;background:#f6f7f9;color:#1d2330}
header{background:#1d2330;color:#fff;padding:10px 20px;display:flex;justify-content:space-between;align-items:center}
main{padding:20px;max-width:1100px;margin:auto}section{background:#fff;border:1px solid #dde1e8;border-radius:6px;padding:14px;margin-bottom:16px}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:5px 8px;border-bottom:1px solid #eef0f3}
input,select,button{font:inherit;padding:5px 8px;margin:2px}.hidden{display:none}.err{color:#b00020}
.s-online,.s-completed,.s-SUCCEEDED{color:#0a7d32}.s-failed,.s-FAILED,.s-INTERRUPTED{color:#b00020}
</style></head><body>
<header><strong>Cairn</strong><span id="who"></span></header>
<main>
<section id="login-view"><h2>Sign in</h2>
<form id="login-form"><input id="email" type="email" placeholder="email" autocomplete="username" required>
<input id="password" type="password" placeholder="password" autocomplete="current-password" required>
<button type="submit">Sign in</button></form><p id="login-error" class="err"></p></section>
<div id="app-view" class="hidden">
<section><h2>Runners</h2><table><thead><tr><th>Name</th><th>Hostname</th><th>Status</th><th>Last seen</th></tr></thead><tbody id="runners"></tbody></table></section>
<section><h2>Backups</h2>
<form id="create-form"><select id="runner-select" required></select><input id="backup-name" placeholder="name" pattern="[A-Za-z0-9][A-Za-z0-9._\\-]{0,63}" required>
<button type="submit" id="create-btn">Create backup</button> <span id="create-status"></span></form>
<p id="app-error" class="err"></p>
<table><thead><tr><th>Name</th><th>Kind</th><th>Status</th><th>File</th><th>Size</th><th>Created</th></tr></thead><tbody id="backups"></tbody></table></section>
<button id="logout">Sign out</button></div>
</main>
<script nonce="${nonce}">
"use strict";
const $ = (id) => document.getElementById(id);
let polling = null, watchedJob = null;
async function api(path, opts) {
  const res = await fetch(path, Object.assign({ credentials: "same-origin", headers: { "content-type": "application/json" } }, opts || {}));
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error((body.error && body.error.message) || ("HTTP " + res.status));
  return body;
}
function cell(tr, text, cls) { const td = document.createElement("td"); td.textContent = text == null ? "" : String(text); if (cls) td.className = cls; tr.appendChild(td); }
function fmtSize(n) { if (n == null) return ""; const u = ["B","KiB","MiB","GiB","TiB"]; let i = 0; while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; } return n.toFixed(i ? 1 : 0) + " " + u[i]; }
function fmtTime(s) { return s ? new Date(s).toLocaleString() : ""; }
async function refresh() {
  try {
    const [runners, backups] = await Promise.all([api("/api/v1/runners"), api("/api/v1/backups?limit=50")]);
    const rt = $("runners"); rt.replaceChildren();
    const sel = $("runner-select"); const cur = sel.value; sel.replaceChildren();
    for (const r of runners) {
      const tr = document.createElement("tr"); cell(tr, r.name); cell(tr, r.hostname); cell(tr, r.status, "s-" + r.status); cell(tr, fmtTime(r.lastSeenAt)); rt.appendChild(tr);
      if (!r.revokedAt) { const o = document.createElement("option"); o.value = r.id; o.textContent = r.name + " (" + r.status + ")"; sel.appendChild(o); }
    }
    if (cur) sel.value = cur;
    const bt = $("backups"); bt.replaceChildren();
    for (const b of backups) {
      const tr = document.createElement("tr"); cell(tr, b.name); cell(tr, b.kind); cell(tr, b.status + (b.error ? " (" + b.error.code + ")" : ""), "s-" + b.status);
      cell(tr, b.fileName); cell(tr, fmtSize(b.size)); cell(tr, fmtTime(b.createdAt)); bt.appendChild(tr);
    }
    if (watchedJob) {
      const j = await api("/api/v1/jobs/" + encodeURIComponent(watchedJob));
      const p = j.progress || {};
      $("create-status").textContent = j.state + (p.phase ? " · " + p.phase : "") + (p.percent != null ? " · " + p.percent.toFixed(0) + "%" : "") + " · " + fmtSize(p.bytes) + " · " + p.files + " files";
      if (["SUCCEEDED","FAILED","CANCELLED","INTERRUPTED"].includes(j.state)) watchedJob = null;
    }
    $("app-error").textContent = "";
  } catch (e) { $("app-error").textContent = e.message; if (/authentication/.test(e.message)) showLogin(); }
}
function showApp(user) { $("login-view").classList.add("hidden"); $("app-view").classList.remove("hidden"); $("who").textContent = user.email + " · " + user.role; refresh(); if (!polling) polling = setInterval(refresh, 1000); }
function showLogin() { if (polling) { clearInterval(polling); polling = null; } $("app-view").classList.add("hidden"); $("login-view").classList.remove("hidden"); $("who").textContent = ""; }
$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault(); $("login-error").textContent = "";
  try { const r = await api("/api/v1/auth/login", { method: "POST", body: JSON.stringify({ email: $("email").value, password: $("password").value }) }); $("password").value = ""; showApp(r.user); }
  catch (e) { $("login-error").textContent = e.message; }
});
$("create-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  try { const r = await api("/api/v1/backups", { method: "POST", body: JSON.stringify({ runnerId: $("runner-select").value, name: $("backup-name").value, type: "full" }) }); watchedJob = r.job.id; $("create-status").textContent = "queued"; refresh(); }
  catch (e) { $("create-status").textContent = e.message; }
});
$("logout").addEventListener("click", async () => { await api("/api/v1/auth/logout", { method: "POST" }).catch(() => {}); showLogin(); });
api("/api/v1/auth/me").then((r) => showApp(r.user), () => showLogin());
</script></body></html>`;
}
