/**
 * Console script, part 2: the Destinations view (ROOT only). Credential fields are write-only: the
 * form never fills them, clears them after a save, and the API never returns them (`hasCredentials`).
 */
export const destinationsScript = String.raw`
const F = (name, label, extra) => Object.assign({ name, label, type: "text" }, extra || {});
const S3_KEYS = [F("accessKeyId", "Access key ID", { required: true }), F("secretAccessKey", "Secret access key", { type: "password", required: true }),
  F("sessionToken", "Session token (optional)", { type: "password" })];
const HOST = [F("host", "Host", { required: true }), F("port", "Port", { type: "number" }), F("user", "User"), F("path", "Remote path", { required: true, placeholder: "/backups" })];
/** One add form per destination type; several may map to one API kind (S3-compatible is s3 + endpoint). */
const DEST_FORMS = {
  s3: { kind: "s3", label: "Amazon S3", config: [F("bucket", "Bucket", { required: true }), F("prefix", "Prefix"), F("region", "Region", { placeholder: "us-east-1" }),
    F("storageClass", "Storage class", { type: "select", options: ["", "STANDARD", "STANDARD_IA", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"] })], creds: S3_KEYS },
  "s3-compatible": { kind: "s3", label: "S3-compatible", config: [F("endpoint", "Endpoint URL", { required: true, placeholder: "https URL of the S3 API" }),
    F("bucket", "Bucket", { required: true }), F("prefix", "Prefix"), F("region", "Region"), F("pathStyle", "Path-style URLs", { type: "checkbox", checked: true })], creds: S3_KEYS },
  gcs: { kind: "gcs", label: "Google Cloud Storage (HMAC key)", config: [F("bucket", "Bucket", { required: true }), F("prefix", "Prefix")], creds: S3_KEYS.slice(0, 2) },
  sftp: { kind: "sftp", label: "SFTP", config: HOST.concat([F("knownHosts", "known_hosts lines (empty: trust on first use)", { type: "textarea" })]),
    creds: [F("password", "Password", { type: "password" }), F("privateKey", "Private key (PEM)", { type: "textarea" }), F("passphrase", "Key passphrase", { type: "password" })] },
  ftp: { kind: "ftp", label: "FTP", config: HOST, creds: [F("password", "Password", { type: "password" })] },
  ftps: { kind: "ftps", label: "FTPS", config: HOST.concat([F("ca", "Extra CA certificate (PEM)", { type: "textarea" })]), creds: [F("password", "Password", { type: "password" })] },
  gdrive: { kind: "gdrive", label: "Google Drive", config: [F("folderId", "Folder ID", { required: true })],
    creds: [F("clientId", "OAuth client ID", { required: true }), F("clientSecret", "OAuth client secret", { type: "password", required: true })] },
};

function fieldInput(section, f) {
  const id = "dest-" + section + "-" + f.name, common = { id, "data-section": section, "data-name": f.name, "data-type": f.type, required: !!f.required };
  let input;
  if (f.type === "select") input = el("select", common, ...f.options.map((o) => el("option", { value: o }, o || "(default)")));
  else if (f.type === "textarea") input = el("textarea", Object.assign({ autocomplete: "off", spellcheck: "false" }, common));
  else input = el("input", Object.assign({ type: f.type, placeholder: f.placeholder, checked: !!f.checked,
    // Secrets are typed in, never offered by the browser's password manager, never pre-filled.
    autocomplete: section === "creds" ? "new-password" : "off" }, common));
  return el("label", null, f.label + (f.required ? " *" : "") + " ", input);
}
function renderDestForm() {
  const form = DEST_FORMS[$("dest-type").value];
  $("dest-fields").replaceChildren(
    el("div", { class: "sec" }, "Settings"), ...form.config.map((f) => fieldInput("config", f)),
    el("div", { class: "sec" }, "Credentials (write-only: stored encrypted, never shown again)"), ...form.creds.map((f) => fieldInput("creds", f)));
}
function readDestForm() {
  const out = { config: {}, creds: {} };
  for (const i of $("dest-fields").querySelectorAll("[data-name]")) {
    const t = i.dataset.type, v = t === "checkbox" ? i.checked : i.value.trim() === "" ? undefined : t === "number" ? Number(i.value) : t === "textarea" || t === "password" ? i.value : i.value.trim();
    if (v !== undefined) out[i.dataset.section][i.dataset.name] = v;
  }
  return out;
}

async function loadDestinations() {
  try { state.dests = await api("/api/v1/destinations"); state.destsDenied = false; }
  catch (e) { if (e.status === 403) { state.dests = null; state.destsDenied = true; } else flash("dest-msg", e.message, true); }
  renderDestinations();
  // Rebuilt only when the list changed, so ticked boxes stay ticked.
  const ids = (state.dests || []).map((d) => d.id + (d.disabled ? "-" : "")).join(",");
  if ($("autosync").dataset.ids !== ids) { $("autosync").dataset.ids = ids; renderAutosync(); }
}
const destName = (id) => { const d = state.dests && state.dests.find((x) => x.id === id); return d ? d.name : id; };
function destWhere(d) {
  const c = d.config || {};
  if (d.kind === "s3" || d.kind === "gcs") return c.bucket + (c.prefix ? "/" + c.prefix : "") + (c.endpoint ? " @ " + c.endpoint : c.region ? " (" + c.region + ")" : "");
  if (d.kind === "gdrive") return "folder " + c.folderId + (d.hasCredentials ? "" : " (no client)");
  return (c.user ? c.user + "@" : "") + c.host + (c.port ? ":" + c.port : "") + " " + c.path;
}
function lastTestText(d) {
  const t = state.testResults.get(d.id);
  if (t) return t;
  if (!d.lastTest) return ["never tested", "muted"];
  return [(d.lastTest.status === "ok" ? "OK" : "FAILED" + (d.lastTest.error ? ": " + d.lastTest.error : "")) + " · " + fmtTime(d.lastTest.at), "s-" + d.lastTest.status];
}

function renderDestinations() {
  if (!state.user || state.user.role !== "ROOT" || !state.dests) return;
  keyedRows($("dest-rows"), state.dests, (d) => d.id, (d) => d.kind, (d) => el("tr", null,
    el("td", { "data-f": "name" }), el("td", null, d.kind), el("td", { "data-f": "where" }), el("td", { "data-f": "creds" }), el("td", { "data-f": "test" }),
    el("td", null,
      el("button", { type: "button", class: "dest-test", on: { click: guarded(() => testDestination(d)) } }, "Test connection"),
      d.kind === "gdrive" && el("button", { type: "button", class: "dest-auth", on: { click: guarded(() => authorizeDrive(d)) } }, "Authorize with Google"),
      el("button", { type: "button", class: "dest-delete", on: { click: guarded(() => deleteDestination(d)) } }, "Delete"))),
  (tr, d) => {
    setText(field(tr, "name"), d.name + (d.disabled ? " (disabled)" : "")); setText(field(tr, "where"), destWhere(d));
    setText(field(tr, "creds"), d.hasCredentials ? "set (write-only)" : "none");
    const [t, cls] = lastTestText(d); setText(field(tr, "test"), t, cls);
  });
}

async function testDestination(d) {
  const runnerId = $("test-runner").value;
  if (!runnerId) { flash("dest-msg", "No runner to test from", true); return; }
  state.testResults.set(d.id, ["testing…", "muted"]); renderDestinations();
  try {
    const { job } = await post("/api/v1/destinations/" + enc(d.id) + "/test", { runnerId });
    let j = job;
    // A job for an offline runner waits in the queue; stop watching after a minute and say so.
    const until = Date.now() + 60000;
    while (!TERMINAL.includes(j.state) && Date.now() < until) {
      state.testResults.set(d.id, ["testing… (" + j.state + ")", "muted"]); renderDestinations();
      await new Promise((r) => setTimeout(r, 500));
      j = await api("/api/v1/jobs/" + enc(job.id));
    }
    const when = " · " + fmtTime(j.finishedAt);
    state.testResults.set(d.id, j.state === "SUCCEEDED" ? ["OK" + when, "s-ok"]
      : TERMINAL.includes(j.state) ? ["FAILED: " + (j.error ? j.error.code + ": " + j.error.message : j.state) + when, "s-failed"]
      : ["no answer yet (job " + j.state + "); is the runner online?", "s-failed"]);
  } catch (e) { state.testResults.set(d.id, ["FAILED: " + e.message, "s-failed"]); }
  renderDestinations();
  state.dests = await api("/api/v1/destinations").catch(() => state.dests);
}

async function authorizeDrive(d) {
  try {
    const r = await post("/api/v1/destinations/" + enc(d.id) + "/gdrive/authorize");
    if (!safeUrl(r.authorizationUrl)) throw new Error("the API returned no usable authorization URL");
    location.assign(r.authorizationUrl);
  } catch (e) { flash("dest-msg", e.message, true); }
}

async function deleteDestination(d) {
  if (!confirm("Delete destination " + d.name + "? Copies already stored there are not removed.")) return;
  try { await api("/api/v1/destinations/" + enc(d.id), { method: "DELETE" }); flash("dest-msg", "Deleted " + d.name); state.testResults.delete(d.id); await loadDestinations(); }
  catch (e) { flash("dest-msg", e.message, true); }
}

function wireDestinations() {
  options($("dest-type"), Object.entries(DEST_FORMS).map(([k, f]) => [k, f.label]));
  renderDestForm();
  $("dest-type").addEventListener("change", renderDestForm);
  $("dest-form").addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const type = DEST_FORMS[$("dest-type").value], f = readDestForm();
    try {
      const d = await post("/api/v1/destinations", { name: $("dest-name").value.trim(), kind: type.kind, config: f.config, credentials: f.creds });
      // Success: the secrets leave the page. On failure everything typed stays for a correction.
      $("dest-name").value = ""; renderDestForm();
      flash("dest-msg", "Saved " + d.name + " (" + d.kind + ")");
      await loadDestinations();
    } catch (e) { flash("dest-msg", e.message, true); }
  });
  const q = new URLSearchParams(location.search);
  if (q.get("gdrive") === "authorized") {
    flash("dest-msg", "Google Drive access granted for destination " + (q.get("destination") || "") + "; run Test connection to check it.");
    history.replaceState(null, "", "/");
  }
}
`;
