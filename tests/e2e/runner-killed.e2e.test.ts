/**
 * A runner killed in the middle of a backup: no completed backup, no file under its final name,
 * and the job becomes INTERRUPTED once its lease (shortened here to 3 s) runs out.
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, readdirSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, expect, it } from "vitest";
import { ARCHIVE_FILE_PATTERN } from "../../shared/naming";
import {
  type Cluster,
  type RunnerHandle,
  startCluster,
  startOnlineRunner,
  waitFor,
} from "../support/cluster";

let cluster: Cluster;
let runner: RunnerHandle;
let runnerId: string;
let source: string;

beforeAll(async () => {
  cluster = await startCluster({ JOB_LEASE_MS: "3000", HEARTBEAT_INTERVAL_MS: "1000" });
  source = join(cluster.dir, "big-site");
  mkdirSync(source, { recursive: true });
  // Incompressible data at the highest level keeps the backup busy long enough to kill it.
  for (let i = 0; i < 12; i++) writeFileSync(join(source, `blob-${i}.bin`), randomBytes(24 * 1024 * 1024));
  ({ runner, runnerId } = await startOnlineRunner(cluster, "doomed", [source]));
}, 120_000);

afterAll(async () => {
  await runner?.stop("SIGKILL");
  await cluster?.close();
});

it("marks the job INTERRUPTED after the lease and leaves no archive under a final name", async () => {
  const { backup, job } = await cluster.api.createBackup({
    runnerId,
    name: "doomed",
    type: "full",
    compressionLevel: 9,
  });
  await waitFor(
    "backup to be under way",
    async () => {
      const j = (await cluster.api.getJob(job.id)) as { state: string; progress?: { bytes?: number } };
      if (["SUCCEEDED", "FAILED"].includes(j.state)) throw new Error(`finished too early: ${j.state}`);
      return j.state === "RUNNING" && (j.progress?.bytes ?? 0) > 0;
    },
    60_000,
    20,
  );
  await runner.stop("SIGKILL");

  const final = await waitFor(
    "lease to run out",
    async () => {
      const j = await cluster.api.getJob(job.id);
      return j.state !== "RUNNING" && j.state !== "DELIVERED" ? j : undefined;
    },
    30_000,
    200,
  );
  expect(final.state).toBe("INTERRUPTED");
  const b = await cluster.api.getBackup(backup.id);
  expect(b.status).toBe("failed");

  const names = existsSync(runner.backupDir) ? readdirSync(runner.backupDir) : [];
  expect(names.filter((n) => ARCHIVE_FILE_PATTERN.test(n))).toEqual([]);
});
