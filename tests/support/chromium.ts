/** The browser the console e2e tests drive: Debian's chromium through playwright-core, headless. */
import { existsSync } from "node:fs";
import { chromium, type Browser } from "playwright-core";

export const CHROMIUM = "/usr/bin/chromium";
export const haveChromium = existsSync(CHROMIUM);

/** Prints why the tests of `suite` are skipped when there is no browser. */
export function warnIfNoChromium(suite: string): void {
  if (!haveChromium) console.warn(`[${suite}] skipped: ${CHROMIUM} not found (Debian package chromium)`);
}

/** Headless, without sandbox or GPU, and with the background traffic of its own (updates, sync) off. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
    ],
  });
}
