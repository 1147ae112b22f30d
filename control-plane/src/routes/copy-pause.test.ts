import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { eq } from "drizzle-orm";
import { db } from "../db/client";
import { backupCopies, jobs } from "../db/schema";
import { finishJob } from "../durable-objects/job-records";
import { call, createTenantUser, enrollRunner, type TestRunner, type TestUser } from "../../test/helpers";
import {
  COMPLETED_BACKUP_FILE,
  COMPLETED_BACKUP_SHA256,
  COMPLETED_BACKUP_SIZE,
  createDestination,
  insertCompletedBackup,
  s3DestinationBody,
} from "../../test/backup-fixtures";

/** Pause / resume / retry of a sync copy: state transitions, tenant scoping, never completed by a pause. */

/** A ROOT user with a runner, an S3 destination and a completed backup that has no copy there yet. */
async function backupNotYetCopied() {
  const root = await createTenantUser("ROOT");
  const runner = await enrollRunner(root);
  const dst = await createDestination(root, s3DestinationBody("dst"));
  const backupId = await insertCompletedBackup(root.tenantId, runner.runnerId);
  return { root, runner, dst, backupId };
}

const startSync = (user: TestUser, backupId: string, destinationId: string) =>
  call(`/api/v1/backups/${backupId}/sync`, { body: { destinationId }, token: user.token });

const copyAction = (user: TestUser, backupId: string, destinationId: string, action: "pause" | "resume") =>
  call(`/api/v1/backups/${backupId}/copies/${destinationId}/${action}`, { body: {}, token: user.token });

const deleteCopy = (user: TestUser, backupId: string, destinationId: string) =>
  call(`/api/v1/backups/${backupId}/copies/${destinationId}`, { method: "DELETE", token: user.token });

const copyOf = async (user: TestUser, backupId: string, destinationId: string) => {
  const b = await call(`/api/v1/backups/${backupId}`, { token: user.token });
  expect(b.status).toBe(200);
  return b.body.copies.find((c: { destinationId: string }) => c.destinationId === destinationId);
};

const jobRow = (id: string) => db(env.DB).select().from(jobs).where(eq(jobs.id, id)).get();

type SyncOutcome = Pick<Parameters<typeof finishJob>[1], "state" | "error" | "result">;

/** The runner's report that ends a sync job. */
function finishSyncJob(
  root: TestUser,
  runner: TestRunner,
  backupId: string,
  jobId: string,
  outcome: SyncOutcome,
) {
  return finishJob(env, {
    jobId,
    type: "sync",
    tenantId: root.tenantId,
    runnerId: runner.runnerId,
    actor: "runner",
    backupId,
    ...outcome,
  });
}

describe("sync pause / resume", () => {
  it("pause → paused (job CANCELLED/PAUSED), resume → new job from where it was, retry from zero", async () => {
    const { root, runner, dst, backupId } = await backupNotYetCopied();
    const sync = await startSync(root, backupId, dst);
    expect(sync.status).toBe(202);
    const firstJob = sync.body.job.id as string;

    const paused = await copyAction(root, backupId, dst, "pause");
    expect(paused.status).toBe(202);
    expect(paused.body.copy).toMatchObject({ status: "paused", jobId: firstJob });
    expect(await jobRow(firstJob)).toMatchObject({ state: "CANCELLED", errorCode: "PAUSED" });
    expect(await copyOf(root, backupId, dst)).toMatchObject({ status: "paused", jobId: firstJob });
    expect((await copyOf(root, backupId, dst)).error).toBeUndefined();

    // Not running any more: a second pause is a conflict; a second sync while paused is the resume.
    expect((await copyAction(root, backupId, dst, "pause")).status).toBe(409);

    const resumed = await copyAction(root, backupId, dst, "resume");
    expect(resumed.status).toBe(202);
    const secondJob = resumed.body.job.id as string;
    expect(secondJob).not.toBe(firstJob);
    const sj = await jobRow(secondJob);
    expect(sj!.type).toBe("sync");
    expect(JSON.parse(sj!.params).restart).toBeUndefined();
    expect(await copyOf(root, backupId, dst)).toMatchObject({ status: "pending", jobId: secondJob });
    expect((await copyAction(root, backupId, dst, "resume")).status).toBe(409);

    // The attempt fails (connection reset): the copy is failed, and a sync with restart=true retries from zero.
    await finishSyncJob(root, runner, backupId, secondJob, {
      state: "FAILED",
      error: { code: "CONNECTION_FAILED", message: "s3://cairn-backups/web: upload part 3 failed" },
    });
    expect(await copyOf(root, backupId, dst)).toMatchObject({
      status: "failed",
      error: { code: "CONNECTION_FAILED" },
    });
    const restart = await call(`/api/v1/backups/${backupId}/sync`, {
      body: { destinationId: dst, restart: true },
      token: root.token,
    });
    expect(restart.status).toBe(202);
    const rj = await jobRow(restart.body.job.id);
    expect(JSON.parse(rj!.params).restart).toBe(true);
  });

  it("a paused copy is never shown completed unless the runner reports it completed", async () => {
    const { root, runner, dst, backupId } = await backupNotYetCopied();
    const jobId = (await startSync(root, backupId, dst)).body.job.id as string;
    // The pause lands while the job is delivered to the runner: the row turns paused first.
    await db(env.DB).update(backupCopies).set({ status: "paused" }).where(eq(backupCopies.jobId, jobId));
    await finishSyncJob(root, runner, backupId, jobId, {
      state: "SUCCEEDED",
      result: { destinationId: dst, status: "failed", error: { code: "CANCELLED", message: "x" } },
    });
    expect(await copyOf(root, backupId, dst)).toMatchObject({ status: "paused" });
    // A paused copy whose job is still live cannot be resumed (two attempts on one upload).
    const sync2 = await copyAction(root, backupId, dst, "resume");
    expect(sync2.status).toBe(202);
    const j2 = sync2.body.job.id as string;
    await db(env.DB).update(backupCopies).set({ status: "paused" }).where(eq(backupCopies.jobId, j2));
    expect((await copyAction(root, backupId, dst, "resume")).status).toBe(409);
    // The runner had finished the upload before the pause arrived: then it is completed.
    await finishSyncJob(root, runner, backupId, j2, {
      state: "SUCCEEDED",
      result: {
        destinationId: dst,
        status: "completed",
        objectName: COMPLETED_BACKUP_FILE,
        size: COMPLETED_BACKUP_SIZE,
        sha256: COMPLETED_BACKUP_SHA256,
      },
    });
    expect(await copyOf(root, backupId, dst)).toMatchObject({
      status: "completed",
      bytesDone: COMPLETED_BACKUP_SIZE,
    });
  });

  it("a running sync copy shows the live monitor: percent, bytes/s, ETA, current file", async () => {
    const { root, dst, backupId } = await backupNotYetCopied();
    const sync = await startSync(root, backupId, dst);
    await db(env.DB)
      .update(jobs)
      .set({
        state: "RUNNING",
        progress: JSON.stringify({
          bytes: 4,
          files: 0,
          rate: 2,
          percent: 40,
          etaSeconds: 3,
          totalBytes: 10,
          message: COMPLETED_BACKUP_FILE,
        }),
      })
      .where(eq(jobs.id, sync.body.job.id));
    expect(await copyOf(root, backupId, dst)).toMatchObject({
      status: "running",
      bytesDone: 4,
      monitor: {
        percent: 40,
        bytesPerSecond: 2,
        etaSeconds: 3,
        currentFile: COMPLETED_BACKUP_FILE,
      },
    });
    const job = await call(`/api/v1/jobs/${sync.body.job.id}`, { token: root.token });
    expect(job.body.progress).toMatchObject({ percent: 40, rate: 2, etaSeconds: 3, totalBytes: 10 });
  });

  it("another tenant gets 404; auto-sync copies of a backup job cannot be paused alone", async () => {
    const { root, runner, dst, backupId } = await backupNotYetCopied();
    // ROOT sees every tenant; a user of another tenant must not even see the copy.
    const other = await createTenantUser("ADMIN");
    await startSync(root, backupId, dst);
    for (const action of ["pause", "resume"] as const) {
      expect((await copyAction(other, backupId, dst, action)).status).toBe(404);
    }
    expect(await copyOf(root, backupId, dst)).toMatchObject({ status: "pending" });
    expect((await copyAction(root, backupId, "dst_nope", "pause")).status).toBe(404);

    const created = await call("/api/v1/backups", {
      body: { runnerId: runner.runnerId, name: "site", destinations: [dst] },
      token: root.token,
    });
    expect(created.status).toBe(202);
    expect((await copyAction(root, created.body.backup.id, dst, "pause")).status).toBe(409);
  });

  it("deleting a paused copy removes it and sends a discard job so the runner aborts the kept upload", async () => {
    const { root, dst, backupId } = await backupNotYetCopied();
    const other = await createTenantUser("ADMIN");
    await startSync(root, backupId, dst);
    expect((await deleteCopy(root, backupId, dst)).status).toBe(409);
    expect((await copyAction(root, backupId, dst, "pause")).status).toBe(202);
    expect((await deleteCopy(other, backupId, dst)).status).toBe(404);
    const del = await deleteCopy(root, backupId, dst);
    expect(del.status).toBe(202);
    const job = await jobRow(del.body.job.id);
    expect(job!.type).toBe("sync");
    expect(JSON.parse(job!.params)).toMatchObject({ discard: true, target: { destinationId: dst } });
    expect(await copyOf(root, backupId, dst)).toBeUndefined();
  });
});
