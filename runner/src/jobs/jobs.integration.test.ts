import { mkdir, mkdtemp, readFile, readdir, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BackupJobResult } from "../../../shared/protocol/runner-messages";
import { parseConfig } from "../config";
import { RunnerDaemon } from "../daemon/daemon";
import {
  backupParams,
  encryptSecrets,
  FakeControlPlane,
  makeRunnerConfig,
  makeSigningKey,
  signJob,
  type FakeConnection,
  type SigningKey,
} from "../daemon/test-fixtures";
import { memoryLogger } from "../util/log";
import { productionHandlers } from "./handlers";

/** The production executors with the real archive engine: backup → verify → restore, password mode. */
let cp: SigningKey;
let server: FakeControlPlane;
let daemon: RunnerDaemon;
let conn: FakeConnection;
let root: string;
let encPub: Parameters<typeof encryptSecrets>[0];

beforeAll(async () => {
  cp = await makeSigningKey();
  const r = await makeRunnerConfig(cp);
  encPub = r.encryptionPublicJwk;
  root = await mkdtemp(path.join(os.tmpdir(), "cairn-jobs-"));
  await mkdir(path.join(root, "srv", "site", "htdocs"), { recursive: true });
  await writeFile(path.join(root, "srv", "site", "htdocs", "index.php"), "<?php echo 'hello';\n");
  await writeFile(path.join(root, "srv", "site", "wp-config.php"), "define('DB_PASSWORD', 'x');\n");
  server = await FakeControlPlane.start();
  const config = parseConfig({
    ...r.input,
    controlPlaneUrl: server.url,
    defaultSources: [path.join(root, "srv", "site")],
    allowedRoots: [path.join(root, "srv")],
    backupDir: path.join(root, "backups"),
  });
  await mkdir(config.backupDir, { recursive: true });
  daemon = new RunnerDaemon({ config, handlers: productionHandlers(), log: memoryLogger() });
  await daemon.start();
  conn = await server.connection(0);
  await server.message(conn, (m) => m.type === "hello");
  server.welcome(conn);
});

afterAll(async () => {
  await daemon.stop();
  await server.close();
});

async function run(jobId: string, job: unknown, secrets?: object) {
  const token = await signJob(cp, {
    jti: jobId,
    job,
    secrets: secrets ? await encryptSecrets(encPub, secrets) : undefined,
  });
  server.send(conn, { type: "job", jobId, token });
  return server.message(
    conn,
    (m) => (m.type === "job.result" || m.type === "job.rejected") && m.jobId === jobId,
    jobId,
  );
}

/** Verify and restore params that read `fileName` from the runner's backup directory. */
const localArchive = (fileName: string, encryption: { mode: "none" | "password" }) => ({
  binding: backupParams().binding,
  fileName,
  destination: { kind: "local" },
  encryption,
});

describe("production job executors", () => {
  it("backs up, verifies and restores a password-encrypted archive", async () => {
    const encryption = { mode: "password" as const };
    const backup = await run(
      "job_b",
      { type: "backup", params: backupParams({ encryption }) },
      { password: "pw-123456" },
    );
    expect(backup).toMatchObject({ type: "job.result", status: "SUCCEEDED" });
    const res = BackupJobResult.parse(backup.result);
    expect(res.fileName).toMatch(/^site_full_\d{8}_\d{6}\.tar\.zst\.enc$/);
    expect(await readdir(path.join(root, "backups"))).toContain(res.fileName);

    const archive = localArchive(res.fileName, encryption);
    const verify = await run("job_v", { type: "verify", params: archive }, { password: "pw-123456" });
    expect(verify).toMatchObject({
      status: "SUCCEEDED",
      result: { fileName: res.fileName, mode: "password" },
    });

    const wrongPw = await run("job_v2", { type: "verify", params: archive }, { password: "nope" });
    expect(wrongPw).toMatchObject({ status: "FAILED", error: { code: "WRONG_KEY" } });

    const target = path.join(root, "srv", "restored");
    const restore = await run(
      "job_r",
      { type: "restore", params: { ...archive, target } },
      { password: "pw-123456" },
    );
    expect(restore).toMatchObject({ status: "SUCCEEDED" });
    const files = await readdir(target, { recursive: true });
    const index = files.find((f) => f.endsWith("index.php"));
    expect(index).toBeDefined();
    expect(await readFile(path.join(target, index!), "utf8")).toBe("<?php echo 'hello';\n");
  });

  it("refuses restore targets outside the allowed roots and archive names with paths", async () => {
    const params = localArchive("site_full_20260101_000000.tar.zst", { mode: "none" });
    expect(
      await run("job_x1", { type: "restore", params: { ...params, target: "/etc/cron.d" } }),
    ).toMatchObject({ type: "job.rejected", code: "SOURCE_NOT_ALLOWED" });
    expect(
      await run("job_x2", { type: "verify", params: { ...params, fileName: "../../etc/shadow" } }),
    ).toMatchObject({ type: "job.rejected", code: "INVALID_PARAMS" });
  });
});
