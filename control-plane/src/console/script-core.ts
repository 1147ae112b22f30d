/**
 * Console script, part 1: API access, DOM helpers, formatting and the refresh loop. Plain browser JS
 * kept as a string (no build step); every value from the API reaches the page through textContent or
 * a Text node, never as markup. String.raw keeps regex backslashes; the code uses no template literals.
 */
export const coreScript = String.raw`
"use strict";
const $ = (id) => document.getElementById(id);
const state = { user: null, runners: [], backups: [], details: new Map(), stale: new Set(), dests: null,
  testResults: new Map(), samples: new Map(), jobs: new Map(), polling: null, busy: false, tick: 0, watchedJob: null };
const TERMINAL = ["SUCCEEDED", "FAILED", "CANCELLED", "INTERRUPTED"];

class ApiError extends Error { constructor(status, code, message) { super(message); this.status = status; this.code = code; } }
async function api(path, opts) {
  const res = await fetch(path, Object.assign({ credentials: "same-origin", headers: { "content-type": "application/json" } }, opts || {}));
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new ApiError(res.status, body.error && body.error.code, (body.error && body.error.message) || ("HTTP " + res.status));
  return body;
}
const post = (path, body) => api(path, { method: "POST", body: JSON.stringify(body || {}) });
const enc = encodeURIComponent;

/** el("td", {class: "x", on: {click: fn}}, "text", child): strings become Text nodes (no markup). */
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v == null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "on") for (const [ev, fn] of Object.entries(v)) e.addEventListener(ev, fn);
    else if (k === "value" || k === "checked") e[k] = v;
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children) if (c != null && c !== false) e.append(typeof c === "object" ? c : String(c));
  return e;
}
function setText(node, text, cls) { node.textContent = text == null ? "" : String(text); if (cls !== undefined) node.className = cls; }
/** The cell of a keyed row marked data-f=NAME. */
const field = (tr, name) => tr.querySelector("[data-f=" + name + "]");
function options(sel, items, keep) {
  const cur = sel.value; sel.replaceChildren(...items.map(([v, t]) => el("option", { value: v }, t)));
  if (keep && items.some(([v]) => v === cur)) sel.value = cur;
}
/** A click handler that disables its button until the action settles: no double submits. */
const guarded = (fn) => async (ev) => { const btn = ev.currentTarget; btn.disabled = true; try { await fn(); } finally { btn.disabled = false; } };
/** Only http(s) links from the API become hrefs or navigations. */
const safeUrl = (u) => typeof u === "string" && /^https?:\/\//i.test(u);

/**
 * Rows keyed by id, refreshed every second: a row is rebuilt only when its shape (which controls it
 * holds) changes, and rows already in place are not moved, so a select the user has open survives.
 */
function keyedRows(tbody, items, keyOf, shapeOf, build, update) {
  const old = new Map(Array.from(tbody.children, (tr) => [tr.dataset.key, tr]));
  items.forEach((it, i) => {
    const key = keyOf(it), shape = shapeOf(it);
    let tr = old.get(key);
    if (!tr || tr.dataset.shape !== shape) {
      const fresh = build(it); fresh.dataset.key = key; fresh.dataset.shape = shape;
      if (tr) tr.replaceWith(fresh);
      tr = fresh;
    }
    old.delete(key);
    update(tr, it);
    if (tbody.children[i] !== tr) tbody.insertBefore(tr, tbody.children[i] || null);
  });
  for (const tr of old.values()) tr.remove();
}

function fmtSize(n) { if (n == null) return ""; const u = ["B","KiB","MiB","GiB","TiB"]; let i = 0; while (n >= 1024 && i < u.length - 1) { n /= 1024; i++; } return n.toFixed(i ? 1 : 0) + " " + u[i]; }
function fmtTime(s) { return s ? new Date(s).toLocaleString() : ""; }
function fmtRate(bps) { return bps == null ? "" : (bps / 1e6).toFixed(1) + " MB/s"; }
function fmtEta(s) { if (s == null || !isFinite(s)) return ""; s = Math.round(s); const m = Math.floor(s / 60); return (m ? m + "m " : "") + String(s % 60).padStart(m ? 2 : 1, "0") + "s"; }
function errText(e) { return e instanceof ApiError && e.status === 429 ? "Limit reached (429 " + (e.code || "RATE_LIMITED") + "): " + e.message : e.message; }
function flash(id, text, isErr) { setText($(id), text, isErr ? "err" : "msg"); }

/**
 * Backups whose copies may have moved since the last look get their detail (copies) fetched again;
 * the jobs behind active copies are read too, since GET /jobs/:id answers from the runner's live session.
 */
async function loadDetails() {
  const all = state.tick % 5 === 0;
  const want = state.backups.filter((b) => {
    const d = state.details.get(b.id);
    return all || !d || state.stale.has(b.id) || d.status !== b.status || b.status === "queued" || b.status === "running" ||
      d.copies.some((c) => c.status === "pending" || c.status === "running");
  });
  state.stale.clear();
  const got = await Promise.all(want.map((b) => api("/api/v1/backups/" + enc(b.id)).catch(() => null)));
  for (const d of got) if (d) state.details.set(d.id, d);
  const active = new Set();
  for (const b of state.backups) for (const c of copiesOf(b)) if (c.jobId && (c.status === "pending" || c.status === "running")) active.add(c.jobId);
  const jobs = await Promise.all(Array.from(active, (id) => api("/api/v1/jobs/" + enc(id)).catch(() => null)));
  state.jobs = new Map(jobs.filter(Boolean).map((j) => [j.id, j]));
  const now = Date.now();
  for (const b of state.backups) for (const c of copiesOf(b)) {
    // Copies written during a backup report no rate of their own: it comes from successive samples.
    const k = b.id + ":" + c.destinationId, prev = state.samples.get(k), bytes = liveCopy(b, c).bytes;
    const rate = prev && now > prev.t && bytes > prev.bytes ? (bytes - prev.bytes) * 1000 / (now - prev.t) : prev && bytes === prev.bytes ? prev.rate : undefined;
    state.samples.set(k, { t: now, bytes, rate });
  }
}

async function refresh() {
  if (state.busy) return;
  state.busy = true;
  try {
    const [runners, backups] = await Promise.all([api("/api/v1/runners"), api("/api/v1/backups?limit=20")]);
    state.runners = runners; state.backups = backups;
    // Destinations change rarely (and may change from another session): re-read them every 5 s.
    if (state.tick % 5 === 4 && !state.destsDenied) await loadDestinations();
    await loadDetails();
    renderRunners(); renderDestinations(); renderBackups(); renderMonitor();
    if (state.watchedJob) {
      const j = await api("/api/v1/jobs/" + enc(state.watchedJob));
      const p = j.progress || {};
      $("create-status").textContent = j.state + (p.phase ? " · " + p.phase : "") + (p.percent != null ? " · " + p.percent.toFixed(0) + "%" : "") + " · " + fmtSize(p.bytes) + " · " + p.files + " files";
      if (TERMINAL.includes(j.state)) state.watchedJob = null;
    }
    $("app-error").textContent = "";
  } catch (e) { $("app-error").textContent = e.message; if (e.status === 401) showLogin(); }
  finally { state.busy = false; state.tick++; }
}

function renderRunners() {
  const rt = $("runners"); rt.replaceChildren();
  for (const r of state.runners)
    rt.appendChild(el("tr", null, el("td", null, r.name), el("td", null, r.hostname), el("td", { class: "s-" + r.status }, r.status), el("td", null, fmtTime(r.lastSeenAt))));
  const live = state.runners.filter((r) => !r.revokedAt);
  options($("runner-select"), live.map((r) => [r.id, r.name + " (" + r.status + ")"]), true);
  options($("test-runner"), live.map((r) => [r.id, r.name + " (" + r.status + ")"]), true);
}

async function showApp(user) {
  state.user = user;
  $("login-view").classList.add("hidden"); $("app-view").classList.remove("hidden");
  $("who").textContent = user.email + " · " + user.role;
  // Only ROOT manages destinations; other roles never see the view (the API answers them 403 anyway).
  $("destinations").classList.toggle("hidden", user.role !== "ROOT");
  // The list (auto-sync choices, copy names) only for users who may read it: a probe answered 403
  // would write a failed-read activity row at every sign-in.
  state.destsDenied = !(user.permissions || []).includes("destinations.read");
  if (state.destsDenied) { state.dests = null; renderAutosync(); }
  else await loadDestinations();
  refresh();
  if (!state.polling) state.polling = setInterval(refresh, 1000);
}
function showLogin() {
  if (state.polling) { clearInterval(state.polling); state.polling = null; }
  state.user = null; state.dests = null; state.destsDenied = false; state.details.clear();
  $("app-view").classList.add("hidden"); $("login-view").classList.remove("hidden"); $("who").textContent = "";
}
`;

/** Runs last: wires the static forms and decides between sign-in and the app. */
export const bootScript = String.raw`
$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault(); $("login-error").textContent = "";
  try { const r = await post("/api/v1/auth/login", { email: $("email").value, password: $("password").value }); $("password").value = ""; showApp(r.user); }
  catch (e) { $("login-error").textContent = e.message; }
});
$("logout").addEventListener("click", async () => { await post("/api/v1/auth/logout").catch(() => {}); showLogin(); });
wireDestinations(); wireBackups();
api("/api/v1/auth/me").then((r) => showApp(r.user), () => showLogin());
`;
