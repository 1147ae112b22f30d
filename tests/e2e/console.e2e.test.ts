/**
 * The console in a real browser (Debian chromium driven by playwright-core): sign in, see the runner
 * online, create a backup with the button and watch its status go live to completed.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN, type Cluster, type RunnerHandle, startCluster, startOnlineRunner } from "../support/cluster";
import { haveChromium, launchChromium, warnIfNoChromium } from "../support/chromium";

warnIfNoChromium("console.e2e");

let cluster: Cluster;
let runner: RunnerHandle;
let browser: Browser;

describe.skipIf(!haveChromium)("web console", () => {
  beforeAll(async () => {
    cluster = await startCluster();
    const site = join(cluster.dir, "console-site");
    mkdirSync(site, { recursive: true });
    writeFileSync(join(site, "index.html"), "<h1>console test</h1>\n");
    ({ runner } = await startOnlineRunner(cluster, "browser-runner", [site]));
    browser = await launchChromium();
  }, 120_000);

  afterAll(async () => {
    await browser?.close();
    await runner?.stop();
    await cluster?.close();
  });

  it("rejects a wrong password, then signs in and runs a backup from the Create button", async () => {
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(cluster.url + "/");

    await page.fill("#email", ADMIN.email);
    await page.fill("#password", "Not-The-Password-1!");
    await page.click("#login-form button[type=submit]");
    await expect.poll(() => page.textContent("#login-error"), { timeout: 10_000 }).not.toBe("");
    expect(await page.isVisible("#app-view")).toBe(false);

    await page.fill("#password", ADMIN.password);
    await page.click("#login-form button[type=submit]");
    await page.waitForSelector("#app-view:not(.hidden)");
    await expect.poll(() => page.textContent("#runners"), { timeout: 10_000 }).toContain("browser-runner");
    expect(await page.textContent("#runners")).toContain("online");

    await page.fill("#backup-name", "from-console");
    await page.click("#create-btn");
    await expect.poll(() => page.textContent("#create-status"), { timeout: 30_000 }).toContain("SUCCEEDED");
    await expect
      .poll(() => page.textContent("#backups"), { timeout: 10_000 })
      .toMatch(/from-console\s*full\s*completed\s*from-console_full_\d{8}_\d{6}\.tar\.zst/);
    expect(errors).toEqual([]);
  });
});
