/**
 * `npm start`: one command to a working local Cairn.
 * Control plane (workerd, local D1 under .data/), migrations, first tenant + ROOT user,
 * a local runner enrolled against it, backing up a demo site into .data/backups/.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync } from "node:fs";
import { resolve } from "node:path";
import { ApiClient, ApiError } from "./lib/api-client";
import { ensureDemoSite } from "./lib/demo-site";
import { ensureDevVars } from "./lib/dev-secrets";
import { REPO_ROOT, applyMigrations, startControlPlane } from "./lib/local-control-plane";

const DATA = resolve(REPO_ROOT, ".data");
const PERSIST = resolve(DATA, "wrangler");
const RUNNER_DIR = resolve(DATA, "runner");
const RUNNER_CONFIG = resolve(RUNNER_DIR, "config.json");
/** The launcher users run (it sets the malloc arena limit), on the node that runs this script. */
const RUNNER_BIN = resolve(REPO_ROOT, "runner/bin/cairn-runner");
const RUNNER_ENV = { ...process.env, NODE: process.execPath };

const log = (msg: string) => console.log(`[cairn] ${msg}`);

function runCli(args: string[]): Promise<void> {
  return new Promise((ok, fail) => {
    const child = spawn(RUNNER_BIN, args, { stdio: ["ignore", "inherit", "inherit"], env: RUNNER_ENV });
    child.on("error", fail);
    child.on("exit", (code) =>
      code === 0 ? ok() : fail(new Error(`cairn-runner ${args[0]} exited with ${code}`)),
    );
  });
}

async function main(): Promise<void> {
  const port = Number(process.env.PORT ?? 8787);
  mkdirSync(DATA, { recursive: true });
  const secrets = await ensureDevVars(resolve(REPO_ROOT, ".dev.vars"));

  log("applying D1 migrations");
  await applyMigrations(PERSIST);
  const cp = await startControlPlane({ persistDir: PERSIST, port, secrets, logLevel: "warn" });
  log(`control plane listening on ${cp.url}`);

  let runner: ChildProcess | undefined;
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    log("stopping");
    if (runner && runner.exitCode === null) {
      const exited = new Promise((r) => runner!.once("exit", r));
      runner.kill("SIGTERM");
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (runner.exitCode === null) runner.kill("SIGKILL");
    }
    await cp.dispose().catch(() => undefined);
    process.exit(code);
  };
  process.on("SIGINT", () => void stop(0));
  process.on("SIGTERM", () => void stop(0));

  try {
    const api = new ApiClient(cp.url);
    const email = process.env.CAIRN_ADMIN_EMAIL ?? "admin@example.com";
    let password = process.env.CAIRN_ADMIN_PASSWORD;
    let generated = false;
    if (!password) {
      password = randomBytes(12).toString("base64url") + "!7aA";
      generated = true;
    }
    let created = false;
    try {
      await api.setup(secrets.SETUP_TOKEN, { tenantName: "Default", email, password });
      created = true;
    } catch (e) {
      if (!(e instanceof ApiError && e.status === 409)) throw e;
    }
    if (created) {
      log(`created tenant "Default" and ROOT user ${email}`);
      if (generated) log(`generated admin password (shown once): ${password}`);
    } else {
      log(`already set up; log in as ${email}`);
    }

    if (!existsSync(RUNNER_CONFIG)) {
      if (!created && !process.env.CAIRN_ADMIN_PASSWORD) {
        throw new Error(
          "no local runner is enrolled and the admin password is unknown: set CAIRN_ADMIN_PASSWORD, or remove .data/ to start over",
        );
      }
      await api.login(email, password);
      const { token } = await api.createEnrollmentToken();
      const demo = resolve(DATA, "demo-site");
      ensureDemoSite(demo);
      mkdirSync(RUNNER_DIR, { recursive: true });
      await runCli([
        "enroll",
        "--url",
        cp.url,
        "--token",
        token,
        "--config",
        RUNNER_CONFIG,
        "--name",
        "local",
        "--backup-dir",
        resolve(DATA, "backups"),
        "--source",
        demo,
        "--state-dir",
        resolve(RUNNER_DIR, "state"),
      ]);
      log("enrolled a local runner (config .data/runner/config.json)");
    }

    runner = spawn(RUNNER_BIN, ["start", "--config", RUNNER_CONFIG], {
      stdio: ["ignore", "inherit", "inherit"],
      env: RUNNER_ENV,
    });
    runner.on("exit", (code, signal) => {
      if (!stopping) {
        log(`runner exited (${signal ?? code}); stopping`);
        void stop(1);
      }
    });
    log(`console: http://127.0.0.1:${port}  (Ctrl-C stops everything)`);
  } catch (e) {
    console.error(`[cairn] ${(e as Error).message}`);
    await stop(1);
  }
}

void main();
