/**
 * Console script, part 3: the Backups view (create with auto-sync, copy status per destination,
 * "Sync to…", Download) and the sync monitor (live percent, speed, ETA, current file, Pause / Resume / Retry).
 */
export const backupsScript = String.raw`
const READABLE = ["completed", "partial"];
const copiesOf = (b) => { const d = state.details.get(b.id); return d ? d.copies : []; };

function renderAutosync() {
  const box = $("autosync");
  const dests = (state.dests || []).filter((d) => !d.disabled);
  box.replaceChildren(...(dests.length ? [el("span", { class: "muted" }, "also copy to: ")] : []),
    ...dests.map((d) => el("label", null, el("input", { type: "checkbox", value: d.id, "data-autosync": d.id }), " " + d.name)));
}

function copyLabel(b, c) {
  const n = liveCopy(b, c);
  const pct = c.status === "running" && n.pct != null ? " " + n.pct.toFixed(0) + "%" : "";
  return destName(c.destinationId) + ": " + c.status + pct;
}

function renderBackups() {
  keyedRows($("backups"), state.backups, (b) => b.id, (b) => {
    // Which controls a row holds: its status, the copy states and the known destinations.
    return b.status + "|" + copiesOf(b).map((c) => c.destinationId + "=" + c.status).join(",") + "|" + (state.dests || []).map((d) => d.id).join(",");
  }, (b) => {
    const copies = copiesOf(b), actions = el("td", null);
    if (READABLE.includes(b.status)) {
      const taken = new Set(copies.filter((c) => c.status !== "failed" && c.status !== "paused").map((c) => c.destinationId));
      const free = (state.dests || []).filter((d) => !taken.has(d.id) && !d.disabled);
      if (free.length) {
        const sel = el("select", { class: "sync-target", "aria-label": "Sync to" }, el("option", { value: "" }, "Sync to…"), ...free.map((d) => el("option", { value: d.id }, d.name)));
        actions.append(sel, el("button", { type: "button", class: "sync-btn", on: { click: guarded(() => sel.value && syncTo(b, sel.value)) } }, "Sync"), " ");
      }
      const from = el("select", { class: "download-from", "aria-label": "Download from" }, el("option", { value: "" }, "this server"),
        ...copies.filter((c) => c.status === "completed").map((c) => el("option", { value: c.destinationId }, destName(c.destinationId))));
      actions.append(from, el("button", { type: "button", class: "download-btn", on: { click: guarded(() => download(b, from.value)) } }, "Download"));
    }
    return el("tr", null, el("td", null, b.name), el("td", null, b.kind), el("td", { "data-f": "status" }), el("td", { "data-f": "file" }),
      el("td", { "data-f": "size" }), el("td", null, fmtTime(b.createdAt)), el("td", { "data-f": "copies" }), actions);
  }, (tr, b) => {
    setText(field(tr, "status"), b.status + (b.error ? " (" + b.error.code + ")" : ""), "s-" + b.status);
    setText(field(tr, "file"), b.fileName); setText(field(tr, "size"), fmtSize(b.size));
    field(tr, "copies").replaceChildren(...copiesOf(b).map((c) => el("span", { class: "copy s-" + c.status, "data-dest": c.destinationId }, copyLabel(b, c))));
  });
}

async function syncTo(b, destinationId) {
  try { await post("/api/v1/backups/" + enc(b.id) + "/sync", { destinationId }); flash("backup-msg", "Sync of " + b.name + " to " + destName(destinationId) + " started"); }
  catch (e) { flash("backup-msg", errText(e), true); }
  state.stale.add(b.id); refresh();
}

async function download(b, destinationId) {
  try {
    const r = await post("/api/v1/backups/" + enc(b.id) + "/download", destinationId ? { destinationId } : {});
    if (!safeUrl(r.url)) throw new Error("the API returned no usable download URL");
    const a = el("a", { href: r.url, download: r.fileName, id: "download-link", rel: "noreferrer" }, r.fileName);
    $("download-status").replaceChildren((r.relayed ? "Relayed from the runner (one-time link): " : "Presigned link, valid until " + fmtTime(r.expiresAt) + ": "), a, " · " + fmtSize(r.size));
    $("download-status").className = "msg";
    // A relay link waits for this request: start it at once.
    a.click();
  } catch (e) { setText($("download-status"), errText(e), "err"); }
}

function monitorRows() {
  const rows = [], recent = Date.now() - 10 * 60 * 1000;
  for (const b of state.backups)
    for (const c of copiesOf(b))
      if (c.status !== "completed" || Date.parse(c.updatedAt) > recent) rows.push({ b, c });
  return rows;
}
/** One copy as the monitor shows it: a sync job's live progress when it runs, else the copy row. */
function liveCopy(b, c) {
  const active = c.status === "running" || c.status === "pending", j = c.jobId ? state.jobs.get(c.jobId) : undefined;
  const sync = (j ? j.type === "sync" : false) || !!c.monitor, p = active && j && j.type === "sync" ? j.progress : null;
  const m = c.monitor || {}, size = c.size || b.size, bytes = p ? p.bytes : c.bytesDone;
  const pct = c.status === "completed" ? 100 : p && p.percent != null ? p.percent : m.percent != null ? m.percent : size ? Math.min(100, (bytes * 100) / size) : null;
  const sample = state.samples.get(b.id + ":" + c.destinationId);
  const rate = !active ? null : p && p.rate > 0 ? p.rate : m.bytesPerSecond != null ? m.bytesPerSecond : sample ? sample.rate : null;
  const eta = !active ? null : p && p.etaSeconds != null ? p.etaSeconds : m.etaSeconds != null ? m.etaSeconds : rate && size ? (size - bytes) / rate : null;
  return { sync, bytes, pct, rate, eta, file: !active ? "" : (p && p.message) || m.currentFile || "" };
}
function renderMonitor() {
  const rows = monitorRows();
  $("monitor-empty").classList.toggle("hidden", rows.length > 0);
  keyedRows($("monitor"), rows, (r) => r.b.id + ":" + r.c.destinationId, (r) => r.c.status + "|" + liveCopy(r.b, r.c).sync, ({ b, c }) => {
    const act = (label, cls, fn) => el("button", { type: "button", class: cls, on: { click: guarded(() => copyAction(b, c, label, fn)) } }, label);
    const path = "/api/v1/backups/" + enc(b.id) + "/copies/" + enc(c.destinationId);
    return el("tr", { "data-backup": b.id, "data-dest": c.destinationId }, el("td", null, b.name), el("td", null, destName(c.destinationId)),
      el("td", { "data-f": "status" }), el("td", null, el("progress", { max: "100", "data-f": "bar" }), " ", el("span", { "data-f": "pct" })),
      el("td", { "data-f": "rate" }), el("td", { "data-f": "eta" }), el("td", { "data-f": "file" }),
      el("td", null,
        // Only a sync job can pause; a copy written during its backup is retried after it ends.
        (c.status === "running" || c.status === "pending") && liveCopy(b, c).sync && act("Pause", "pause-btn", () => post(path + "/pause")),
        c.status === "paused" && act("Resume", "resume-btn", () => post(path + "/resume")),
        c.status === "failed" && act("Retry", "retry-btn", () => post(path + "/resume"))));
  }, (tr, { b, c }) => {
    const n = liveCopy(b, c);
    setText(field(tr, "status"), c.status + (c.error ? " (" + c.error.code + ": " + c.error.message + ")" : ""), "s-" + c.status);
    const bar = field(tr, "bar");
    if (n.pct == null) bar.removeAttribute("value"); else bar.value = n.pct;
    setText(field(tr, "pct"), n.pct == null ? fmtSize(n.bytes) : n.pct.toFixed(n.pct === 100 ? 0 : 1) + "%");
    setText(field(tr, "rate"), fmtRate(n.rate)); setText(field(tr, "eta"), fmtEta(n.eta)); setText(field(tr, "file"), n.file);
  });
}
async function copyAction(b, c, label, fn) {
  try { await fn(); flash("monitor-msg", label + ": " + b.name + " → " + destName(c.destinationId)); }
  catch (e) { flash("monitor-msg", label + " failed: " + errText(e), true); }
  state.stale.add(b.id); refresh();
}

function wireBackups() {
  $("create-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const destinations = Array.from(document.querySelectorAll("[data-autosync]:checked"), (i) => i.value);
    try {
      const r = await post("/api/v1/backups", Object.assign({ runnerId: $("runner-select").value, name: $("backup-name").value, type: "full" }, destinations.length ? { destinations } : {}));
      state.watchedJob = r.job.id; $("create-status").textContent = "queued"; refresh();
    } catch (e) { $("create-status").textContent = e.message; }
  });
}
`;
