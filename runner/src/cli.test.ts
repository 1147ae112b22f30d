import { spawn } from "node:child_process";
import { createServer, type Server } from "node:http";
import { mkdtemp, readFile, stat, writeFile } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FakeControlPlane, makeSigningKey, signJob, type SigningKey } from "./daemon/test-fixtures";

const BIN = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../bin/cairn-runner.mjs");

function cli(args: string[], cwd: string) {
  const child = spawn(process.execPath, [BIN, ...args], {
    cwd,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, CAIRN_RUNNER_CONFIG: "" },
  });
  let out = "";
  child.stdout.on("data", (d) => (out += d));
  child.stderr.on("data", (d) => (out += d));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  return { child, exited, output: () => out };
}

let dir: string;
let cp: SigningKey;
let enrollServer: Server;
let control: FakeControlPlane;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "cairn-cli-"));
  cp = await makeSigningKey("cp-1");
  control = await FakeControlPlane.start();
  enrollServer = createServer((req, res) => {
    req.resume();
    req.on("end", () => {
      res.setHeader("content-type", "application/json");
      res
        .writeHead(201)
        .end(
          JSON.stringify({ runnerId: "run_test1", tenantId: "ten_test1", jwks: { keys: [cp.publicJwk] } }),
        );
    });
  });
  await new Promise<void>((r) => enrollServer.listen(0, "127.0.0.1", r));
});

afterAll(async () => {
  await new Promise<void>((r) => enrollServer.close(() => r()));
  await control.close();
});

describe("cairn-runner bin", () => {
  it("prints help and exits 2 on unknown commands, from any cwd", async () => {
    const help = cli(["--help"], os.tmpdir());
    expect(await help.exited).toBe(0);
    expect(help.output()).toContain("usage: cairn-runner <command>");
    const bad = cli(["frobnicate"], "/");
    expect(await bad.exited).toBe(2);
    expect(bad.output()).toContain('USAGE unknown command "frobnicate"');
  });

  it("enrolls, starts, runs nothing it cannot verify, and exits 0 on SIGTERM", async () => {
    const configPath = path.join(dir, "runner.json");
    const port = (enrollServer.address() as AddressInfo).port;
    const enroll = cli(
      [
        "enroll",
        "--url",
        `http://127.0.0.1:${port}`,
        "--token",
        "tok",
        "--config",
        configPath,
        "--state-dir",
        path.join(dir, "state"),
        "--backup-dir",
        path.join(dir, "backups"),
        "--sources",
        `${dir}/a,${dir}/b`,
      ],
      "/",
    );
    expect(await enroll.exited).toBe(0);
    expect(enroll.output()).not.toContain("tok ");
    expect((await stat(configPath)).mode & 0o777).toBe(0o600);

    // Point the config at the fake control plane (enrolment and connection are on different ports here).
    const cfg = JSON.parse(await readFile(configPath, "utf8")) as Record<string, unknown>;
    expect(cfg.defaultSources).toEqual([`${dir}/a`, `${dir}/b`]);
    await writeFile(configPath, JSON.stringify({ ...cfg, controlPlaneUrl: control.url }), { mode: 0o600 });

    const start = cli(["start", "--config", configPath], os.tmpdir());
    const conn = await control.connection(0);
    await control.message(conn, (m) => m.type === "hello", "hello");
    control.welcome(conn);
    control.send(conn, {
      type: "job",
      jobId: "job_x",
      token: await signJob(cp, { jti: "job_x", runnerId: "run_other" }),
    });
    const rej = await control.message(conn, (m) => m.type === "job.rejected", "rejection");
    expect(rej.code).toBe("WRONG_AUDIENCE");
    start.child.kill("SIGTERM");
    expect(await start.exited).toBe(0);
    await control.waitFor("close", () => conn.closed);
    expect(conn.closed?.code).toBe(1000);
    expect(start.output()).toContain("[cairn-runner] info runner stopped");
  });
});
