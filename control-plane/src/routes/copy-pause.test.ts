import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { eq } from "drizzle-orm";
import { db } from "../db/client";
import { backupCopies, backups, jobs } from "../db/schema";
import { finishJob } from "../durable-objects/job-records";
import { newId } from "../lib/ids";
import { call, createTenantUser, enrollRunner, type TestUser } from "../../test/helpers";

/** Pause / resume / retry of a sync copy: state transitions, tenant scoping, never completed by a pause. */

const s3Body = (name: string) => ({
  name,
  kind: "s3",
  config: { bucket: "cairn-backups", prefix: "web", endpoint: "http://127.0.0.1:4569", pathStyle: true },
  credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: "secret-secret-secret" },
});

async function createDest(root: TestUser, name: string): Promise<string> {
  const r = await call("/api/v1/destinations", { body: s3Body(name), token: root.token });
  expect(r.status).toBe(201);
  return r.body.id as string;
}

async function completedBackup(tenantId: string, runnerId: string): Promise<string> {
  const backupId = newId("bkp");
  const now = Date.now();
  await db(env.DB)
    .insert(backups)
    .values({
      id: backupId,
      tenantId,
      runnerId,
      jobId: newId("job"),
      name: "site",
      kind: "full",
      status: "completed",
      fileName: "site_full_20260101_000000.tar.zst",
      size: 10,
      sha256: "a".repeat(64),
      fileCount: 1,
      encryptionMode: "none",
      chainRootId: backupId,
      createdAt: now,
      completedAt: now,
    });
  return backupId;
}

const copyOf = async (root: TestUser, backupId: string, destinationId: string) => {
  const b = await call(`/api/v1/backups/${backupId}`, { token: root.token });
  expect(b.status).toBe(200);
  return b.body.copies.find((c: { destinationId: string }) => c.destinationId === destinationId);
};

describe("sync pause / resume", () => {
  it("pause → paused (job CANCELLED/PAUSED), resume → new job from where it was, retry from zero", async () => {
    const root = await createTenantUser("ROOT");
    const runner = await enrollRunner(root);
    const dst = await createDest(root, "dst");
    const backupId = await completedBackup(root.tenantId, runner.runnerId);
    const sync = await call(`/api/v1/backups/${backupId}/sync`, {
      body: { destinationId: dst },
      token: root.token,
    });
    expect(sync.status).toBe(202);
    const firstJob = sync.body.job.id as string;

    const paused = await call(`/api/v1/backups/${backupId}/copies/${dst}/pause`, {
      body: {},
      token: root.token,
    });
    expect(paused.status).toBe(202);
    expect(paused.body.copy).toMatchObject({ status: "paused", jobId: firstJob });
    const j = await db(env.DB).select().from(jobs).where(eq(jobs.id, firstJob)).get();
    expect(j).toMatchObject({ state: "CANCELLED", errorCode: "PAUSED" });
    expect(await copyOf(root, backupId, dst)).toMatchObject({ status: "paused", jobId: firstJob });
    expect((await copyOf(root, backupId, dst)).error).toBeUndefined();

    // Not running any more: a second pause is a conflict; a second sync while paused is the resume.
    const again = await call(`/api/v1/backups/${backupId}/copies/${dst}/pause`, {
      body: {},
      token: root.token,
    });
    expect(again.status).toBe(409);

    const resumed = await call(`/api/v1/backups/${backupId}/copies/${dst}/resume`, {
      body: {},
      token: root.token,
    });
    expect(resumed.status).toBe(202);
    const secondJob = resumed.body.job.id as string;
    expect(secondJob).not.toBe(firstJob);
    const sj = await db(env.DB).select().from(jobs).where(eq(jobs.id, secondJob)).get();
    expect(sj!.type).toBe("sync");
    expect(JSON.parse(sj!.params).restart).toBeUndefined();
    expect(await copyOf(root, backupId, dst)).toMatchObject({ status: "pending", jobId: secondJob });
    const resumeWhilePending = await call(`/api/v1/backups/${backupId}/copies/${dst}/resume`, {
      body: {},
      token: root.token,
    });
    expect(resumeWhilePending.status).toBe(409);

    // The attempt fails (connection reset): the copy is failed, and a sync with restart=true retries from zero.
    await finishJob(env, {
      jobId: secondJob,
      type: "sync",
      tenantId: root.tenantId,
      runnerId: runner.runnerId,
      actor: "runner",
      backupId,
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
    const rj = await db(env.DB).select().from(jobs).where(eq(jobs.id, restart.body.job.id)).get();
    expect(JSON.parse(rj!.params).restart).toBe(true);
  });

  it("a paused copy is never shown completed unless the runner reports it completed", async () => {
    const root = await createTenantUser("ROOT");
    const runner = await enrollRunner(root);
    const dst = await createDest(root, "dst");
    const backupId = await completedBackup(root.tenantId, runner.runnerId);
    const sync = await call(`/api/v1/backups/${backupId}/sync`, {
      body: { destinationId: dst },
      token: root.token,
    });
    const jobId = sync.body.job.id as string;
    // The pause lands while the job is delivered to the runner: the row turns paused first.
    await db(env.DB).update(backupCopies).set({ status: "paused" }).where(eq(backupCopies.jobId, jobId));
    await finishJob(env, {
      jobId,
      type: "sync",
      tenantId: root.tenantId,
      runnerId: runner.runnerId,
      actor: "runner",
      backupId,
      state: "SUCCEEDED",
      result: { destinationId: dst, status: "failed", error: { code: "CANCELLED", message: "x" } },
    });
    expect(await copyOf(root, backupId, dst)).toMatchObject({ status: "paused" });
    // A paused copy whose job is still live cannot be resumed (two attempts on one upload).
    const sync2 = await call(`/api/v1/backups/${backupId}/copies/${dst}/resume`, {
      body: {},
      token: root.token,
    });
    expect(sync2.status).toBe(202);
    const j2 = sync2.body.job.id as string;
    await db(env.DB).update(backupCopies).set({ status: "paused" }).where(eq(backupCopies.jobId, j2));
    const early = await call(`/api/v1/backups/${backupId}/copies/${dst}/resume`, {
      body: {},
      token: root.token,
    });
    expect(early.status).toBe(409);
    // The runner had finished the upload before the pause arrived: then it is completed.
    await finishJob(env, {
      jobId: j2,
      type: "sync",
      tenantId: root.tenantId,
      runnerId: runner.runnerId,
      actor: "runner",
      backupId,
      state: "SUCCEEDED",
      result: {
        destinationId: dst,
        status: "completed",
        objectName: "site_full_20260101_000000.tar.zst",
        size: 10,
        sha256: "a".repeat(64),
      },
    });
    expect(await copyOf(root, backupId, dst)).toMatchObject({ status: "completed", bytesDone: 10 });
  });

  it("a running sync copy shows the live monitor: percent, bytes/s, ETA, current file", async () => {
    const root = await createTenantUser("ROOT");
    const runner = await enrollRunner(root);
    const dst = await createDest(root, "dst");
    const backupId = await completedBackup(root.tenantId, runner.runnerId);
    const sync = await call(`/api/v1/backups/${backupId}/sync`, {
      body: { destinationId: dst },
      token: root.token,
    });
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
          message: "site_full_20260101_000000.tar.zst",
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
        currentFile: "site_full_20260101_000000.tar.zst",
      },
    });
    const job = await call(`/api/v1/jobs/${sync.body.job.id}`, { token: root.token });
    expect(job.body.progress).toMatchObject({ percent: 40, rate: 2, etaSeconds: 3, totalBytes: 10 });
  });

  it("another tenant gets 404; auto-sync copies of a backup job cannot be paused alone", async () => {
    const root = await createTenantUser("ROOT");
    // ROOT sees every tenant; a user of another tenant must not even see the copy.
    const other = await createTenantUser("ADMIN");
    const runner = await enrollRunner(root);
    const dst = await createDest(root, "dst");
    const backupId = await completedBackup(root.tenantId, runner.runnerId);
    await call(`/api/v1/backups/${backupId}/sync`, { body: { destinationId: dst }, token: root.token });
    for (const action of ["pause", "resume"]) {
      const r = await call(`/api/v1/backups/${backupId}/copies/${dst}/${action}`, {
        body: {},
        token: other.token,
      });
      expect(r.status).toBe(404);
    }
    expect(await copyOf(root, backupId, dst)).toMatchObject({ status: "pending" });
    const missing = await call(`/api/v1/backups/${backupId}/copies/dst_nope/pause`, {
      body: {},
      token: root.token,
    });
    expect(missing.status).toBe(404);

    const created = await call("/api/v1/backups", {
      body: { runnerId: runner.runnerId, name: "site", destinations: [dst] },
      token: root.token,
    });
    expect(created.status).toBe(202);
    const auto = await call(`/api/v1/backups/${created.body.backup.id}/copies/${dst}/pause`, {
      body: {},
      token: root.token,
    });
    expect(auto.status).toBe(409);
  });

  it("deleting a paused copy removes it and sends a discard job so the runner aborts the kept upload", async () => {
    const root = await createTenantUser("ROOT");
    const other = await createTenantUser("ADMIN");
    const runner = await enrollRunner(root);
    const dst = await createDest(root, "dst");
    const backupId = await completedBackup(root.tenantId, runner.runnerId);
    await call(`/api/v1/backups/${backupId}/sync`, { body: { destinationId: dst }, token: root.token });
    const running = await call(`/api/v1/backups/${backupId}/copies/${dst}`, {
      method: "DELETE",
      token: root.token,
    });
    expect(running.status).toBe(409);
    const paused = await call(`/api/v1/backups/${backupId}/copies/${dst}/pause`, {
      body: {},
      token: root.token,
    });
    expect(paused.status).toBe(202);
    const foreign = await call(`/api/v1/backups/${backupId}/copies/${dst}`, {
      method: "DELETE",
      token: other.token,
    });
    expect(foreign.status).toBe(404);
    const del = await call(`/api/v1/backups/${backupId}/copies/${dst}`, {
      method: "DELETE",
      token: root.token,
    });
    expect(del.status).toBe(202);
    const job = await db(env.DB).select().from(jobs).where(eq(jobs.id, del.body.job.id)).get();
    expect(job!.type).toBe("sync");
    expect(JSON.parse(job!.params)).toMatchObject({ discard: true, target: { destinationId: dst } });
    expect(await copyOf(root, backupId, dst)).toBeUndefined();
  });
});
