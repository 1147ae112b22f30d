/**
 * A real local Cairn for cross-part tests: the Worker in workerd with a fresh D1, a ROOT user,
 * and helpers to enroll and start real `cairn-runner` processes.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdtempSync, rmSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { ApiClient } from "../../scripts/lib/api-client";
import { isTerminalJobState } from "../../shared/jobs";
import type { JobView } from "./api-views";
import { generateDevSecrets, type DevSecrets } from "../../scripts/lib/dev-secrets";
import {
  REPO_ROOT,
  applyMigrations,
  startControlPlane,
  type LocalControlPlane,
} from "../../scripts/lib/local-control-plane";

export const RUNNER_BIN = resolve(REPO_ROOT, "runner/bin/cairn-runner.mjs");

export interface Cluster {
  dir: string;
  url: string;
  api: ApiClient;
  secrets: DevSecrets;
  cp: LocalControlPlane;
  close(): Promise<void>;
}

export const ADMIN = { email: "root@example.test", password: "Correct-Horse-9!" };

export async function startCluster(extraVars: Record<string, string> = {}): Promise<Cluster> {
  const dir = mkdtempSync(join(tmpdir(), "cairn-e2e-"));
  const persistDir = join(dir, "wrangler");
  await applyMigrations(persistDir);
  const secrets = await generateDevSecrets();
  const cp = await startControlPlane({ persistDir, secrets: { ...secrets, ...extraVars } as DevSecrets });
  const api = new ApiClient(cp.url);
  await api.setup(secrets.SETUP_TOKEN, { tenantName: "E2E", ...ADMIN });
  await api.login(ADMIN.email, ADMIN.password);
  return {
    dir,
    url: cp.url,
    api,
    secrets,
    cp,
    async close() {
      await cp.dispose().catch(() => undefined);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export function runCli(args: string[], opts: { env?: NodeJS.ProcessEnv } = {}) {
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((ok, fail) => {
    const child = spawn(process.execPath, [RUNNER_BIN, ...args], {
      env: { ...process.env, ...opts.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d) => (stdout += d));
    child.stderr.on("data", (d) => (stderr += d));
    child.on("error", fail);
    child.on("exit", (code) => ok({ code, stdout, stderr }));
  });
}

export interface RunnerHandle {
  configPath: string;
  backupDir: string;
  process: ChildProcess;
  output: () => string;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Enrolls a runner with a fresh token and starts `cairn-runner start` as a real child process. */
export async function enrollAndStartRunner(
  cluster: Cluster,
  name: string,
  sources: string[],
  /** More `cairn-runner enroll` flags, e.g. `--hosting-root DIR`, `--allowed-root DIR`. */
  extraEnrollArgs: string[] = [],
): Promise<RunnerHandle> {
  const home = join(cluster.dir, `runner-${name}`);
  mkdirSync(home, { recursive: true });
  const configPath = join(home, "config.json");
  const backupDir = join(home, "backups");
  const { token } = await cluster.api.createEnrollmentToken();
  const enroll = await runCli([
    "enroll",
    "--url",
    cluster.url,
    "--token",
    token,
    "--config",
    configPath,
    "--name",
    name,
    "--backup-dir",
    backupDir,
    "--state-dir",
    join(home, "state"),
    ...sources.flatMap((s) => ["--source", s]),
    ...extraEnrollArgs,
  ]);
  if (enroll.code !== 0) throw new Error(`enroll failed (${enroll.code}): ${enroll.stderr}`);
  return startRunner(configPath, backupDir);
}

/** Like enrollAndStartRunner, and waits until the control plane reports the runner online. */
export async function startOnlineRunner(
  cluster: Cluster,
  name: string,
  sources: string[],
  extraEnrollArgs: string[] = [],
): Promise<{ runner: RunnerHandle; runnerId: string }> {
  const runner = await enrollAndStartRunner(cluster, name, sources, extraEnrollArgs);
  try {
    const runnerId = await waitFor(`runner ${name} online`, async () => {
      const list = await cluster.api.listRunners();
      return list.find((r) => r.name === name && r.status === "online")?.id;
    });
    return { runner, runnerId };
  } catch (e) {
    // The caller never gets the handle, so its afterAll could not stop the process.
    await runner.stop();
    throw e;
  }
}

/** Polls a job until it has ended (any terminal state) and returns it as last read. */
export function waitForJobEnd(cluster: Cluster, jobId: string, timeoutMs = 90_000): Promise<JobView> {
  return waitFor(
    `job ${jobId} to end`,
    async () => {
      const j = await cluster.api.request<JobView>("GET", `/api/v1/jobs/${jobId}`);
      return isTerminalJobState(j.state) ? j : undefined;
    },
    timeoutMs,
    200,
  );
}

export function startRunner(configPath: string, backupDir: string): RunnerHandle {
  const child = spawn(process.execPath, [RUNNER_BIN, "start", "--config", configPath], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout!.on("data", (d) => (out += d));
  child.stderr!.on("data", (d) => (out += d));
  return {
    configPath,
    backupDir,
    process: child,
    output: () => out,
    async stop(signal = "SIGTERM") {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once("exit", r));
      child.kill(signal);
      await exited;
    },
  };
}

export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined | false>,
  timeoutMs = 30_000,
  intervalMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await probe();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out waiting for ${what}${last ? `: ${String(last)}` : ""}`);
}
