/**
 * The console's destinations, copies and sync monitor in real Chromium against the real Worker, a real
 * `cairn-runner` process and s3rver: ROOT adds an S3-compatible destination through the form (secrets
 * never come back), tests it, backs up with auto-sync, syncs to a second destination, pauses and resumes
 * that sync, downloads and hits the download limit; a USER sees no Destinations view and gets 403.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeDrive, type FakeDrive } from "../destinations/fake-gdrive-server";
import { S3RVER_CREDENTIALS, startS3Server, type TestS3Server } from "../destinations/s3-server";
import {
  ADMIN,
  type Cluster,
  type RunnerHandle,
  startCluster,
  startOnlineRunner,
  waitFor,
} from "../support/cluster";
import { haveChromium, launchChromium, warnIfNoChromium } from "../support/chromium";
import { driveDestinationBody } from "../support/drive-destination";

warnIfNoChromium("console-destinations.e2e");

const MiB = 1024 * 1024;
const USER = { email: "plain-user@example.test", password: "Plain-User-Pass-7!" };
// s3rver only accepts its own key pair, so that pair is what must never reappear.
const SECRET = S3RVER_CREDENTIALS.secretAccessKey;

let cluster: Cluster;
let runner: RunnerHandle;
let s3: TestS3Server;
let drive: FakeDrive;
let browser: Browser;
let page: Page;
const pageErrors: string[] = [];

interface Destination {
  id: string;
  name: string;
  hasCredentials: boolean;
  lastTest: { status: string } | null;
}
interface Backup {
  id: string;
  name: string;
  fileName: string;
  size: number;
  sha256: string;
  copies: { destinationId: string; status: string; jobId: string }[];
}

const api = <T>(method: string, path: string, body?: unknown) => cluster.api.request<T>(method, path, body);
const monitorRow = (backupId: string, destId: string) =>
  `#monitor tr[data-backup="${backupId}"][data-dest="${destId}"]`;
const backupRow = (backupId: string) => `#backups tr[data-key="${backupId}"]`;

async function signIn(p: Page, who: { email: string; password: string }) {
  await p.goto(cluster.url + "/");
  await p.fill("#email", who.email);
  await p.fill("#password", who.password);
  await p.click("#login-form button[type=submit]");
  await p.waitForSelector("#app-view:not(.hidden)", { timeout: 15_000 });
}

async function addS3Destination(name: string, prefix: string): Promise<Destination> {
  await page.selectOption("#dest-type", "s3-compatible");
  await page.fill("#dest-name", name);
  await page.fill("#dest-config-endpoint", s3.endpoint);
  await page.fill("#dest-config-bucket", "e2e");
  await page.fill("#dest-config-prefix", prefix);
  await page.fill("#dest-creds-accessKeyId", S3RVER_CREDENTIALS.accessKeyId);
  await page.fill("#dest-creds-secretAccessKey", SECRET);
  const [res] = await Promise.all([
    page.waitForResponse((r) => r.url().endsWith("/api/v1/destinations") && r.request().method() === "POST"),
    page.click("#dest-save"),
  ]);
  expect(res.status()).toBe(201);
  const body = await res.text();
  expect(body).not.toContain(SECRET);
  await expect.poll(() => page.textContent("#dest-rows")).toContain(name);
  const d = JSON.parse(body) as Destination;
  expect(d.hasCredentials).toBe(true);
  return d;
}

beforeAll(async () => {
  [cluster, s3, drive] = await Promise.all([startCluster(), startS3Server(["e2e"]), startFakeDrive()]);
  const site = join(cluster.dir, "console-site");
  mkdirSync(site, { recursive: true });
  writeFileSync(join(site, "index.html"), "<h1>copies</h1>\n");
  // Incompressible and > 3 parts of 8 MiB, so a sync can be held after two parts and paused.
  writeFileSync(join(site, "media.bin"), randomBytes(3 * 8 * MiB + 4097));
  ({ runner } = await startOnlineRunner(cluster, "copies-runner", [site]));
  await api("POST", "/api/v1/users", { ...USER, role: "USER" });
  if (!haveChromium) return;
  browser = await launchChromium();
  page = await (await browser.newContext({ acceptDownloads: true })).newPage();
  page.on("pageerror", (e) => pageErrors.push(e.message));
  page.on("dialog", (d) => void d.accept());
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await runner?.stop();
  await Promise.all([cluster?.close(), s3?.close(), drive?.close()]);
});

describe.skipIf(!haveChromium)("console: destinations, copies, sync monitor", () => {
  let dest: Destination;
  let second: Destination;
  let backup: Backup;

  it("ROOT adds an S3-compatible destination; bad input keeps the form; secrets never come back; Test connection shows OK", async () => {
    await signIn(page, ADMIN);
    expect(await page.isVisible("#destinations")).toBe(true);

    // A refused save loses nothing typed, the secret included.
    await page.selectOption("#dest-type", "s3-compatible");
    await page.fill("#dest-name", "s3rver-bad");
    await page.fill("#dest-config-endpoint", s3.endpoint);
    await page.fill("#dest-config-bucket", "Not_A_Bucket!");
    await page.fill("#dest-creds-accessKeyId", S3RVER_CREDENTIALS.accessKeyId);
    await page.fill("#dest-creds-secretAccessKey", SECRET);
    await page.click("#dest-save");
    await expect.poll(() => page.textContent("#dest-msg")).toContain("config.bucket: invalid bucket name");
    expect(await page.getAttribute("#dest-msg", "class")).toBe("err");
    expect(await page.inputValue("#dest-creds-secretAccessKey")).toBe(SECRET);

    dest = await addS3Destination("s3rver-main", "console");
    // After the save the secret is nowhere: not in any field, not in the page, not in the API's answer.
    for (const v of await page.$$eval("#dest-fields input, #dest-fields textarea", (els) =>
      els.map((e) => (e as unknown as { value: string }).value),
    ))
      expect(v).not.toBe(SECRET);
    expect(await page.inputValue("#dest-creds-secretAccessKey")).toBe("");
    expect(await page.inputValue("#dest-creds-accessKeyId")).toBe("");
    expect(await page.content()).not.toContain(SECRET);
    expect(await page.textContent("body")).not.toContain(SECRET);
    const listed = await page.evaluate(async () => (await fetch("/api/v1/destinations")).text());
    expect(listed).toContain("s3rver-main");
    expect(listed).not.toContain(SECRET);

    const row = `#dest-rows tr[data-key="${dest.id}"]`;
    expect(await page.textContent(`${row} [data-f=creds]`)).toBe("set (write-only)");
    expect(await page.textContent(`${row} [data-f=test]`)).toBe("never tested");
    await page.click(`${row} .dest-test`);
    await expect
      .poll(() => page.textContent(`${row} [data-f=test]`), { timeout: 30_000 })
      .toMatch(/^OK · \d/);
    expect((await api<Destination>("GET", `/api/v1/destinations/${dest.id}`)).lastTest?.status).toBe("ok");
    expect(pageErrors).toEqual([]);
  }, 60_000);

  it("renders API strings as text, and deletes a destination", async () => {
    const hostile = await api<Destination>("POST", "/api/v1/destinations", {
      name: "hostile",
      kind: "s3",
      config: {
        bucket: "e2e",
        prefix: `<img src=x onerror="window.__xss=1">`,
        endpoint: s3.endpoint,
        pathStyle: true,
      },
      credentials: S3RVER_CREDENTIALS,
    });
    await page.reload();
    await page.waitForSelector("#app-view:not(.hidden)");
    const row = `#dest-rows tr[data-key="${hostile.id}"]`;
    await page.waitForSelector(row);
    expect(await page.textContent(`${row} [data-f=where]`)).toContain(`<img src=x onerror="window.__xss=1">`);
    expect(await page.$$("#dest-rows img")).toHaveLength(0);
    expect(await page.evaluate(() => (globalThis as unknown as { __xss?: number }).__xss)).toBeUndefined();

    await page.click(`${row} .dest-delete`);
    await page.waitForSelector(row, { state: "detached" });
    await expect.poll(() => page.textContent("#dest-msg")).toBe("Deleted hostile");
    const left = await api<Destination[]>("GET", "/api/v1/destinations");
    expect(left.map((d) => d.id)).toEqual([dest.id]);
  }, 30_000);

  it("a backup with auto-sync shows its copy completed at 100% in the monitor", async () => {
    await page.check(`[data-autosync="${dest.id}"]`);
    await page.fill("#backup-name", "auto-synced");
    await page.click("#create-btn");
    await expect.poll(() => page.textContent("#create-status"), { timeout: 60_000 }).toContain("SUCCEEDED");
    backup = (await api<Backup[]>("GET", "/api/v1/backups")).find((b) => b.name === "auto-synced")!;
    const row = monitorRow(backup.id, dest.id);
    await expect
      .poll(() => page.textContent(`${row} [data-f=status]`), { timeout: 15_000 })
      .toBe("completed");
    expect(await page.textContent(`${row} [data-f=pct]`)).toBe("100%");
    expect(await page.getAttribute(`${row} progress`, "value")).toBe("100");
    await expect
      .poll(() => page.textContent(`${backupRow(backup.id)} [data-f=copies]`))
      .toBe("s3rver-main: completed");
    backup = await api<Backup>("GET", `/api/v1/backups/${backup.id}`);
    expect(backup.copies).toMatchObject([{ destinationId: dest.id, status: "completed" }]);
  }, 90_000);

  it("Sync to… a second destination shows live progress; Pause and Resume finish the copy", async () => {
    second = await addS3Destination("s3rver-second", "console-second");
    // Hold the upload after two 8 MiB parts, so the copy is live long enough to pause.
    await s3.setPartFaults({ holdAbove: 2 });
    const brow = backupRow(backup.id);
    await expect.poll(() => page.$$eval(`${brow} .sync-target option`, (o) => o.length)).toBe(2);
    await page.selectOption(`${brow} .sync-target`, second.id);
    await page.click(`${brow} .sync-btn`);
    await expect
      .poll(() => page.textContent("#backup-msg"))
      .toBe(`Sync of auto-synced to s3rver-second started`);

    const row = monitorRow(backup.id, second.id);
    await page.waitForSelector(`${row} .pause-btn`, { timeout: 30_000 });
    await expect.poll(() => page.textContent(`${row} [data-f=status]`)).toBe("running");
    await expect.poll(() => page.textContent(`${row} [data-f=file]`)).toBe(backup.fileName);
    await expect
      .poll(async () => Number.parseFloat((await page.textContent(`${row} [data-f=pct]`)) ?? ""), {
        timeout: 30_000,
      })
      .toBeGreaterThan(0);
    await expect.poll(() => page.textContent(`${row} [data-f=rate]`)).toMatch(/^\d+\.\d MB\/s$/);
    await waitFor("a part held by s3rver", async () => (await s3.partStats()).held > 0, 30_000);

    await page.click(`${row} .pause-btn`);
    await page.waitForSelector(`${row} .resume-btn`, { timeout: 30_000 });
    expect(await page.textContent(`${row} [data-f=status]`)).toBe("paused");
    expect(await page.textContent("#monitor-msg")).toBe("Pause: auto-synced → s3rver-second");
    const paused = await api<Backup>("GET", `/api/v1/backups/${backup.id}`);
    const pausedCopy = paused.copies.find((c) => c.destinationId === second.id)!;
    expect(pausedCopy.status).toBe("paused");
    // A resume is accepted once the paused job has ended.
    await waitFor("paused job ended", async () =>
      ["CANCELLED", "FAILED", "SUCCEEDED"].includes(
        (await api<{ state: string }>("GET", `/api/v1/jobs/${pausedCopy.jobId}`)).state,
      ),
    );

    await s3.setPartFaults({});
    await page.click(`${row} .resume-btn`);
    await expect.poll(() => page.textContent("#monitor-msg")).toBe("Resume: auto-synced → s3rver-second");
    await expect
      .poll(() => page.textContent(`${row} [data-f=status]`), { timeout: 30_000 })
      .toBe("completed");
    expect(await page.textContent(`${row} [data-f=pct]`)).toBe("100%");
    const done = await api<Backup>("GET", `/api/v1/backups/${backup.id}`);
    expect(done.copies.map((c) => [c.destinationId, c.status]).sort()).toEqual(
      [
        [dest.id, "completed"],
        [second.id, "completed"],
      ].sort(),
    );
    expect(pageErrors).toEqual([]);
  }, 120_000);

  it("a failing Test connection and a failed copy show their errors; Retry after fixing the credentials completes it", async () => {
    const wrong = await api<Destination>("POST", "/api/v1/destinations", {
      name: "s3rver-wrong-key",
      kind: "s3",
      config: { bucket: "e2e", prefix: "console-retry", endpoint: s3.endpoint, pathStyle: true },
      // s3rver refuses an unknown access key id (it does not check the secret).
      credentials: { accessKeyId: "NOT-A-KEY", secretAccessKey: "not-the-secret" },
    });
    const brow = backupRow(backup.id);
    await expect
      .poll(
        () =>
          page.$$eval(`${brow} .sync-target option`, (o) =>
            o.map((x) => (x as unknown as { value: string }).value),
          ),
        { timeout: 10_000 },
      )
      .toContain(wrong.id);
    const drow = `#dest-rows tr[data-key="${wrong.id}"]`;
    await page.click(`${drow} .dest-test`);
    await expect
      .poll(() => page.textContent(`${drow} [data-f=test]`), { timeout: 30_000 })
      .toMatch(/^FAILED: AUTH_FAILED: .+ · \d/);
    expect(await page.getAttribute(`${drow} [data-f=test]`, "class")).toBe("s-failed");
    await page.selectOption(`${brow} .sync-target`, wrong.id);
    await page.click(`${brow} .sync-btn`);
    const row = monitorRow(backup.id, wrong.id);
    await page.waitForSelector(`${row} .retry-btn`, { timeout: 30_000 });
    expect(await page.textContent(`${row} [data-f=status]`)).toMatch(/^failed \(\w+: .+\)$/);
    expect(await page.textContent(`${brow} [data-f=copies]`)).toContain("s3rver-wrong-key: failed");

    await api("PATCH", `/api/v1/destinations/${wrong.id}`, { credentials: S3RVER_CREDENTIALS });
    await page.click(`${row} .retry-btn`);
    await expect
      .poll(() => page.textContent(`${row} [data-f=status]`), { timeout: 30_000 })
      .toBe("completed");
    expect(await page.textContent("#monitor-msg")).toBe("Retry: auto-synced → s3rver-wrong-key");
    const after = await api<Backup>("GET", `/api/v1/backups/${backup.id}`);
    expect(after.copies.find((c) => c.destinationId === wrong.id)?.status).toBe("completed");
    expect(pageErrors).toEqual([]);
  }, 60_000);

  it("Authorize with Google runs the consent round trip; the destination then tests OK", async () => {
    const gd = await api<Destination>("POST", "/api/v1/destinations", driveDestinationBody(drive, "drive"));
    await page.reload();
    const row = `#dest-rows tr[data-key="${gd.id}"]`;
    await page.waitForSelector(`${row} .dest-auth`);
    // Consent screen (fake, pre-approved) → the Worker's callback → back on the console.
    await Promise.all([
      page.waitForURL((u) => u.pathname === "/" && u.hash === "#destinations", { timeout: 15_000 }),
      page.click(`${row} .dest-auth`),
    ]);
    await expect
      .poll(() => page.textContent("#dest-msg"))
      .toBe(`Google Drive access granted for destination ${gd.id}; run Test connection to check it.`);
    expect(new URL(page.url()).search).toBe("");
    await page.waitForSelector("#test-runner option", { state: "attached" });
    await page.click(`${row} .dest-test`);
    await expect
      .poll(() => page.textContent(`${row} [data-f=test]`), { timeout: 30_000 })
      .toMatch(/^OK · \d/);
    expect(await page.content()).not.toContain(drive.clientSecret);
    expect(pageErrors).toEqual([]);
  }, 60_000);

  it("Download: relayed from the runner and presigned from S3 (bytes match); the 429 past the limit is shown", async () => {
    await api("PUT", "/api/v1/settings", { "download.perHour": 2 });
    const brow = backupRow(backup.id);
    const fetchFile = async (from: string, name: string) => {
      await page.selectOption(`${brow} .download-from`, from);
      const [dl] = await Promise.all([page.waitForEvent("download"), page.click(`${brow} .download-btn`)]);
      const file = join(cluster.dir, name);
      await dl.saveAs(file);
      return createHash("sha256").update(readFileSync(file)).digest("hex");
    };

    // "this server": the runner streams its local archive through the one-time relay link.
    expect(await fetchFile("", "relayed.tar.zst")).toBe(backup.sha256);
    expect(await page.textContent("#download-status")).toContain("Relayed from the runner");
    expect(await fetchFile(dest.id, "presigned.tar.zst")).toBe(backup.sha256);
    expect(await page.textContent("#download-status")).toContain("Presigned link");
    expect(await page.textContent("#download-link")).toBe(backup.fileName);

    await page.click(`${brow} .download-btn`);
    await expect
      .poll(() => page.textContent("#download-status"))
      .toMatch(/^Limit reached \(429 RATE_LIMITED\): /);
    expect(await page.getAttribute("#download-status", "class")).toBe("err");
    expect(pageErrors).toEqual([]);
  }, 60_000);

  it("a USER sees no Destinations view and the API answers 403", async () => {
    const ctx = await browser.newContext();
    try {
      const p = await ctx.newPage();
      const errors: string[] = [];
      p.on("pageerror", (e) => errors.push(e.message));
      // The console decides from the user's permissions, never by probing (a 403 is a failed-read activity row).
      const destReads: string[] = [];
      p.on("request", (r) => {
        if (new URL(r.url()).pathname.startsWith("/api/v1/destinations")) destReads.push(r.url());
      });
      await signIn(p, USER);
      await expect.poll(() => p.textContent("#backups")).toContain("auto-synced");
      expect(destReads).toEqual([]);
      expect(await p.isVisible("#destinations")).toBe(false);
      expect(await p.textContent("#dest-rows")).toBe("");
      const status = await p.evaluate(async () => {
        const list = await fetch("/api/v1/destinations");
        const create = await fetch("/api/v1/destinations", {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({
            name: "nope",
            kind: "ftp",
            config: { host: "h", path: "/x" },
            credentials: {},
          }),
        });
        return [list.status, create.status];
      });
      expect(status).toEqual([403, 403]);
      expect(errors).toEqual([]);
    } finally {
      await ctx.close();
    }
  }, 30_000);
});
