import { backupsScript } from "./script-backups";
import { bootScript, coreScript } from "./script-core";
import { destinationsScript } from "./script-destinations";
import { consoleStyles } from "./styles";

/**
 * The web console: one self-contained page (no external assets). Everything dynamic is rendered with
 * textContent / DOM APIs, never innerHTML, so API data cannot inject markup. The script and the
 * stylesheet run under a per-response CSP nonce (routes/console.ts).
 */
export function consolePage(nonce: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>Cairn</title>
<style nonce="${nonce}">${consoleStyles}</style></head><body>
<header><strong>Cairn</strong><span id="who"></span></header>
<main>
<section id="login-view"><h2>Sign in</h2>
<form id="login-form"><input id="email" type="email" placeholder="email" autocomplete="username" required>
<input id="password" type="password" placeholder="password" autocomplete="current-password" required>
<button type="submit">Sign in</button></form><p id="login-error" class="err"></p></section>
<div id="app-view" class="hidden">
<p id="app-error" class="err"></p>
<section><h2>Runners</h2><table><thead><tr><th>Name</th><th>Hostname</th><th>Status</th><th>Last seen</th></tr></thead><tbody id="runners"></tbody></table></section>
<section id="destinations" class="hidden"><h2>Destinations</h2>
<label>Test from runner <select id="test-runner"></select></label> <span id="dest-msg"></span>
<table><thead><tr><th>Name</th><th>Type</th><th>Where</th><th>Credentials</th><th>Last test</th><th></th></tr></thead><tbody id="dest-rows"></tbody></table>
<h3>Add a destination</h3>
<form id="dest-form" autocomplete="off"><label>Type <select id="dest-type"></select></label>
<label>Name * <input id="dest-name" required maxlength="64" pattern="[A-Za-z0-9][A-Za-z0-9 ._\\-]*"></label>
<div id="dest-fields" class="fields"></div><button type="submit" id="dest-save">Save destination</button></form></section>
<section><h2>Backups</h2>
<form id="create-form"><select id="runner-select" required></select><input id="backup-name" placeholder="name" pattern="[A-Za-z0-9][A-Za-z0-9._\\-]{0,63}" required>
<span id="autosync"></span> <button type="submit" id="create-btn">Create backup</button> <span id="create-status"></span></form>
<p id="backup-msg"></p><p id="download-status"></p>
<table><thead><tr><th>Name</th><th>Kind</th><th>Status</th><th>File</th><th>Size</th><th>Created</th><th>Copies</th><th></th></tr></thead><tbody id="backups"></tbody></table></section>
<section><h2>Sync monitor</h2><p id="monitor-msg"></p><p id="monitor-empty" class="muted">No copies in progress.</p>
<table><thead><tr><th>Backup</th><th>Destination</th><th>Status</th><th>Progress</th><th>Speed</th><th>ETA</th><th>Current file</th><th></th></tr></thead><tbody id="monitor"></tbody></table></section>
<button id="logout">Sign out</button></div>
</main>
<script nonce="${nonce}">${coreScript}${destinationsScript}${backupsScript}${bootScript}</script></body></html>`;
}
