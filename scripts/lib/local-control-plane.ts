/**
 * Starts the real Worker locally (workerd through wrangler's `unstable_startWorker`) with a
 * persisted local D1. Used by `npm start`, the end-to-end tests and the fleet benchmark, so all
 * three run the very same code path.
 */
import { spawn } from "node:child_process";
import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { unstable_startWorker } from "wrangler";
import type { DevSecrets } from "./dev-secrets";

export const REPO_ROOT = resolve(import.meta.dirname, "../..");

/** Keeps wrangler quiet, offline and its state inside the repo. */
export function wranglerEnv(): NodeJS.ProcessEnv {
  const xdg = resolve(REPO_ROOT, ".tmp/xdg");
  mkdirSync(xdg, { recursive: true });
  return {
    ...process.env,
    WRANGLER_SEND_METRICS: "false",
    CLOUDFLARE_CF_FETCH_ENABLED: "false",
    WRANGLER_HIDE_BANNER: "true",
    XDG_CONFIG_HOME: xdg,
  };
}

function applyWranglerEnv(): void {
  for (const [k, v] of Object.entries(wranglerEnv())) if (v !== undefined) process.env[k] = v;
}

/** `wrangler d1 migrations apply DB --local --persist-to DIR`, the documented way. */
export async function applyMigrations(persistDir: string): Promise<void> {
  mkdirSync(persistDir, { recursive: true });
  const wrangler = resolve(REPO_ROOT, "node_modules/wrangler/bin/wrangler.js");
  await new Promise<void>((ok, fail) => {
    const child = spawn(
      process.execPath,
      [wrangler, "d1", "migrations", "apply", "DB", "--local", "--persist-to", persistDir],
      { cwd: REPO_ROOT, env: { ...wranglerEnv(), CI: "1" }, stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    child.on("error", fail);
    child.on("exit", (code) =>
      code === 0 ? ok() : fail(new Error(`wrangler d1 migrations apply failed (exit ${code}):\n${out}`)),
    );
  });
}

export interface LocalControlPlane {
  url: string;
  dispose(): Promise<void>;
}

export async function startControlPlane(opts: {
  persistDir: string;
  port?: number;
  secrets: DevSecrets;
  logLevel?: "none" | "error" | "warn" | "info" | "log" | "debug";
}): Promise<LocalControlPlane> {
  applyWranglerEnv();
  const secretBindings = Object.fromEntries(
    Object.entries(opts.secrets).map(([k, v]) => [k, { type: "secret_text" as const, value: v }]),
  );
  const worker = await unstable_startWorker({
    config: resolve(REPO_ROOT, "wrangler.toml"),
    // Secrets are passed explicitly so a test never picks up a developer's `.dev.vars`.
    envFiles: [],
    bindings: secretBindings,
    build: { nodejsCompatMode: "v2" },
    dev: {
      server: { hostname: "127.0.0.1", port: opts.port ?? 0 },
      inspector: false,
      persist: opts.persistDir,
      watch: false,
      logLevel: opts.logLevel ?? "error",
    },
  });
  await worker.ready;
  const url = (await worker.url).toString().replace(/\/$/, "");
  return { url, dispose: () => worker.dispose() };
}
