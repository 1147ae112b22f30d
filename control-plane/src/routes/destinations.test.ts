import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { eq } from "drizzle-orm";
import { db } from "../db/client";
import { activityLog, destinations, jobs } from "../db/schema";
import { finishJob } from "../durable-objects/job-records";
import { presignGetUrl } from "../lib/s3-presign";
import { call, createTenantUser, enrollRunner } from "../../test/helpers";
import {
  COMPLETED_BACKUP_FILE,
  S3_TEST_SECRET,
  createDestination,
  insertCompletedCopy,
  s3DestinationBody,
} from "../../test/backup-fixtures";

describe("destinations API", () => {
  it("is ROOT only to manage: ADMIN and USER get 403, ADMIN may read", async () => {
    const root = await createTenantUser("ROOT");
    const admin = await createTenantUser("ADMIN");
    const user = await createTenantUser("USER");
    expect(
      (await call("/api/v1/destinations", { body: s3DestinationBody(), token: admin.token })).status,
    ).toBe(403);
    expect(
      (await call("/api/v1/destinations", { body: s3DestinationBody(), token: user.token })).status,
    ).toBe(403);
    const dst = await createDestination(root);
    expect(
      (
        await call(`/api/v1/destinations/${dst}`, {
          method: "PATCH",
          body: { name: "x" },
          token: admin.token,
        })
      ).status,
    ).toBe(403);
    expect((await call(`/api/v1/destinations/${dst}`, { method: "DELETE", token: admin.token })).status).toBe(
      403,
    );
    expect((await call("/api/v1/destinations", { token: admin.token })).status).toBe(200);
    expect((await call("/api/v1/destinations", { token: user.token })).status).toBe(403);
  });

  it("credentials are sealed at rest and never appear in any response or activity row", async () => {
    const root = await createTenantUser("ROOT");
    const created = await call("/api/v1/destinations", { body: s3DestinationBody(), token: root.token });
    expect(created.status).toBe(201);
    expect(created.body).toMatchObject({ kind: "s3", hasCredentials: true, lastTest: null });
    expect(created.body.config).toMatchObject({ bucket: "cairn-backups", prefix: "web", pathStyle: true });
    const id = created.body.id as string;
    const newSecret = "second-secret-value-0123456789";
    const patched = await call(`/api/v1/destinations/${id}`, {
      method: "PATCH",
      body: { credentials: { accessKeyId: "AKID2", secretAccessKey: newSecret } },
      token: root.token,
    });
    expect(patched.status).toBe(200);
    const texts = [
      JSON.stringify(created.body),
      JSON.stringify(patched.body),
      JSON.stringify((await call("/api/v1/destinations", { token: root.token })).body),
      JSON.stringify((await call(`/api/v1/destinations/${id}`, { token: root.token })).body),
      JSON.stringify((await call("/api/v1/activity?limit=100", { token: root.token })).body),
    ];
    for (const t of texts) {
      expect(t).not.toContain(S3_TEST_SECRET);
      expect(t).not.toContain(newSecret);
      expect(t).not.toContain("secretAccessKey");
    }
    const row = await db(env.DB).select().from(destinations).where(eq(destinations.id, id)).get();
    expect(row!.encryptedCredentials).toBeTruthy();
    expect(row!.encryptedCredentials).not.toContain(newSecret);
    expect(row!.config).not.toContain(newSecret);
    const acts = await db(env.DB).select().from(activityLog).where(eq(activityLog.targetId, id)).all();
    expect(acts.map((a) => a.operation).sort()).toEqual(["destination.create", "destination.update"]);
    for (const a of acts) expect(a.details ?? "").not.toContain(S3_TEST_SECRET);
  });

  it("validates config and credentials per kind without echoing secret values", async () => {
    const root = await createTenantUser("ROOT");
    const bad = await call("/api/v1/destinations", {
      body: { ...s3DestinationBody(), config: { bucket: "Bad_Bucket!" } },
      token: root.token,
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toContain("config.bucket");
    const noKey = await call("/api/v1/destinations", {
      body: {
        name: "box",
        kind: "sftp",
        config: { host: "backup.example", user: "u", path: "/srv" },
        credentials: {},
      },
      token: root.token,
    });
    expect(noKey.status).toBe(400);
    expect(noKey.body.error.message).toContain("sftp needs a password or a privateKey");
    const unknownField = await call("/api/v1/destinations", {
      body: {
        ...s3DestinationBody(),
        credentials: { accessKeyId: "A", secretAccessKey: S3_TEST_SECRET, extra: "leak-me" },
      },
      token: root.token,
    });
    expect(unknownField.status).toBe(400);
    expect(JSON.stringify(unknownField.body)).not.toContain(S3_TEST_SECRET);
    expect(JSON.stringify(unknownField.body)).not.toContain("leak-me");
    const kind = await call("/api/v1/destinations", {
      body: { ...s3DestinationBody(), kind: "dropbox" },
      token: root.token,
    });
    expect(kind.status).toBe(400);
    const relative = await call("/api/v1/destinations", {
      body: { name: "f", kind: "ftps", config: { host: "h", path: "rel" }, credentials: { password: "p" } },
      token: root.token,
    });
    expect(relative.status).toBe(400);
    expect(relative.body.error.message).toContain("config.path");
  });

  it("test connection is a job carrying no secrets in its params; its result sets the last status", async () => {
    const root = await createTenantUser("ROOT");
    const runner = await enrollRunner(root);
    const dst = await createDestination(root);
    const r = await call(`/api/v1/destinations/${dst}/test`, {
      body: { runnerId: runner.runnerId },
      token: root.token,
    });
    expect(r.status).toBe(202);
    const job = await db(env.DB).select().from(jobs).where(eq(jobs.id, r.body.job.id)).get();
    expect(job!.type).toBe("test-destination");
    expect(job!.params).toContain(dst);
    expect(job!.params).not.toContain(S3_TEST_SECRET);

    await finishJob(env, {
      jobId: job!.id,
      type: "test-destination",
      tenantId: root.tenantId,
      runnerId: runner.runnerId,
      actor: "runner",
      backupId: null,
      state: "FAILED",
      error: { code: "AUTH_FAILED", message: "s3://cairn-backups/web: access denied" },
    });
    const after = await call(`/api/v1/destinations/${dst}`, { token: root.token });
    expect(after.body.lastTest).toMatchObject({ status: "failed" });
    expect(after.body.lastTest.error).toContain("AUTH_FAILED");
    const acts = await db(env.DB)
      .select()
      .from(activityLog)
      .where(eq(activityLog.operation, "destination.test.finish"))
      .all();
    expect(acts.find((a) => a.targetId === dst)?.details).toContain("AUTH_FAILED");
  });

  it("backups with destinations get one pending copy row each; a failed job never leaves a copy completed", async () => {
    const root = await createTenantUser("ROOT");
    const other = await createTenantUser("ROOT");
    const runner = await enrollRunner(root);
    const a = await createDestination(root, s3DestinationBody("a"));
    const b = await createDestination(root, s3DestinationBody("b"));
    const foreign = await createDestination(other, s3DestinationBody("theirs"));
    const refused = await call("/api/v1/backups", {
      body: { runnerId: runner.runnerId, name: "site", destinations: [foreign] },
      token: root.token,
    });
    expect(refused.status).toBe(400);
    const created = await call("/api/v1/backups", {
      body: { runnerId: runner.runnerId, name: "site", destinations: [a, b] },
      token: root.token,
    });
    expect(created.status).toBe(202);
    const backupId = created.body.backup.id as string;
    const job = await db(env.DB).select().from(jobs).where(eq(jobs.id, created.body.job.id)).get();
    const params = JSON.parse(job!.params);
    expect(params.copies.map((c: { destinationId: string }) => c.destinationId)).toEqual([a, b]);
    expect(job!.params).not.toContain(S3_TEST_SECRET);
    const got = await call(`/api/v1/backups/${backupId}`, { token: root.token });
    expect(got.body.copies.map((c: { status: string }) => c.status)).toEqual(["pending", "pending"]);

    // Live: the backup job's progress carries per-copy bytes.
    await db(env.DB)
      .update(jobs)
      .set({
        state: "RUNNING",
        progress: JSON.stringify({ bytes: 999, files: 1, rate: 0, copies: { [a]: 4, [b]: 7 } }),
      })
      .where(eq(jobs.id, job!.id));
    const live = await call(`/api/v1/backups/${backupId}`, { token: root.token });
    const liveBy = Object.fromEntries(
      live.body.copies.map((c: { destinationId: string; bytesDone: number; status: string }) => [
        c.destinationId,
        [c.status, c.bytesDone],
      ]),
    );
    expect(liveBy).toEqual({ [a]: ["running", 4], [b]: ["running", 7] });

    // The runner reports a's copy done and b's failed: each copy settles on its own.
    await finishJob(env, {
      jobId: job!.id,
      type: "backup",
      tenantId: root.tenantId,
      runnerId: runner.runnerId,
      actor: "runner",
      backupId,
      state: "SUCCEEDED",
      result: {
        fileName: "site-full-20260101T000000Z.tar.zst",
        size: 10,
        sha256: "b".repeat(64),
        fileCount: 1,
        durationMs: 1,
        copies: [
          {
            destinationId: a,
            status: "completed",
            objectName: "site-full-20260101T000000Z.tar.zst",
            size: 10,
            sha256: "b".repeat(64),
          },
          { destinationId: b, status: "failed", error: { code: "NO_SPACE", message: "bucket full" } },
        ],
      },
    });
    const settled = await call(`/api/v1/backups/${backupId}`, { token: root.token });
    expect(settled.body.status).toBe("completed");
    const byDest = Object.fromEntries(
      settled.body.copies.map((c: { destinationId: string }) => [c.destinationId, c]),
    );
    expect(byDest[a]).toMatchObject({
      status: "completed",
      size: 10,
      sha256: "b".repeat(64),
      bytesDone: 10,
    });
    expect(byDest[b]).toMatchObject({ status: "failed", error: { code: "NO_SPACE" } });

    // Retry of the failed copy = POST sync again; a completed copy is not synced twice.
    const retry = await call(`/api/v1/backups/${backupId}/sync`, {
      body: { destinationId: b },
      token: root.token,
    });
    expect(retry.status).toBe(202);
    const again = await call(`/api/v1/backups/${backupId}/sync`, {
      body: { destinationId: a },
      token: root.token,
    });
    expect(again.status).toBe(409);
    const syncJob = await db(env.DB).select().from(jobs).where(eq(jobs.id, retry.body.job.id)).get();
    expect(syncJob!.type).toBe("sync");
    expect(JSON.parse(syncJob!.params)).toMatchObject({
      size: 10,
      sha256: "b".repeat(64),
      source: { kind: "local" },
    });
    await finishJob(env, {
      jobId: syncJob!.id,
      type: "sync",
      tenantId: root.tenantId,
      runnerId: runner.runnerId,
      actor: "runner",
      backupId,
      state: "INTERRUPTED",
    });
    const end = await call(`/api/v1/backups/${backupId}`, { token: root.token });
    const bCopy = end.body.copies.find((c: { destinationId: string }) => c.destinationId === b);
    expect(bCopy).toMatchObject({ status: "failed", error: { code: "INTERRUPTED" } });
  });

  it("download: presigned URL for s3, relayed sftp refused while the runner is offline, 429 on the 21st within an hour", async () => {
    const root = await createTenantUser("ROOT");
    const runner = await enrollRunner(root);
    const dst = await createDestination(root);
    const backupId = await insertCompletedCopy(root.tenantId, runner.runnerId, dst);
    for (let i = 0; i < 20; i++) {
      const r = await call(`/api/v1/backups/${backupId}/download`, {
        body: { destinationId: dst },
        token: root.token,
      });
      expect(r.status).toBe(200);
      if (i === 0) {
        const u = new URL(r.body.url);
        expect(u.origin).toBe("http://127.0.0.1:4569");
        expect(u.pathname).toBe(`/cairn-backups/web/${COMPLETED_BACKUP_FILE}`);
        expect(u.searchParams.get("X-Amz-Algorithm")).toBe("AWS4-HMAC-SHA256");
        expect(u.searchParams.get("X-Amz-Expires")).toBe("300");
        expect(u.searchParams.get("X-Amz-Credential")).toMatch(
          /^AKIDEXAMPLE\/\d{8}\/us-east-1\/s3\/aws4_request$/,
        );
        expect(u.searchParams.get("X-Amz-Signature")).toMatch(/^[0-9a-f]{64}$/);
        expect(r.body.url).not.toContain(S3_TEST_SECRET);
      }
    }
    const limited = await call(`/api/v1/backups/${backupId}/download`, {
      body: { destinationId: dst },
      token: root.token,
    });
    expect(limited.status).toBe(429);
    expect(limited.body.error.code).toBe("RATE_LIMITED");
    expect(limited.body.error.message).toContain("limit of 20");

    const sftp = await createDestination(root, {
      name: "box",
      kind: "sftp",
      config: { host: "backup.example", user: "u", path: "/srv" },
      credentials: { password: "pw" },
    });
    const root2 = await createTenantUser("ROOT");
    const runner2 = await enrollRunner(root2);
    const sftp2 = await createDestination(root2, {
      name: "box",
      kind: "sftp",
      config: { host: "backup.example", user: "u", path: "/srv" },
      credentials: { password: "pw" },
    });
    expect(sftp).toBeTruthy();
    const b2 = await insertCompletedCopy(root2.tenantId, runner2.runnerId, sftp2);
    const ni = await call(`/api/v1/backups/${b2}/download`, {
      body: { destinationId: sftp2 },
      token: root2.token,
    });
    // sftp is relayed through the runner, which is not connected here: refused at once, not left hanging.
    expect(ni.status).toBe(409);
    expect(ni.body.error.code).toBe("RUNNER_OFFLINE");
  });

  it("cancelling a queued sync job fails its copy (CANCELLED), never completes it", async () => {
    const root = await createTenantUser("ROOT");
    const runner = await enrollRunner(root);
    const src = await createDestination(root, s3DestinationBody("src"));
    const dst = await createDestination(root, s3DestinationBody("dst"));
    const backupId = await insertCompletedCopy(root.tenantId, runner.runnerId, src);
    const sync = await call(`/api/v1/backups/${backupId}/sync`, {
      body: { destinationId: dst, sourceDestinationId: src },
      token: root.token,
    });
    expect(sync.status).toBe(202);
    const job = await db(env.DB).select().from(jobs).where(eq(jobs.id, sync.body.job.id)).get();
    expect(JSON.parse(job!.params).source).toMatchObject({ kind: "remote", destinationId: src });
    const cancel = await call(`/api/v1/jobs/${sync.body.job.id}/cancel`, { body: {}, token: root.token });
    expect(cancel.status).toBe(202);
    expect(cancel.body.job.state).toBe("CANCELLED");
    const b = await call(`/api/v1/backups/${backupId}`, { token: root.token });
    const copy = b.body.copies.find((c: { destinationId: string }) => c.destinationId === dst);
    expect(copy).toMatchObject({ status: "failed", error: { code: "CANCELLED" } });
  });

  it("the download limit is the tenant setting download.perHour", async () => {
    const root = await createTenantUser("ROOT");
    const runner = await enrollRunner(root);
    const dst = await createDestination(root);
    const backupId = await insertCompletedCopy(root.tenantId, runner.runnerId, dst);
    const put = await call("/api/v1/settings", {
      method: "PUT",
      body: { "download.perHour": 2 },
      token: root.token,
    });
    expect(put.status).toBe(200);
    const dl = () =>
      call(`/api/v1/backups/${backupId}/download`, { body: { destinationId: dst }, token: root.token });
    expect((await dl()).status).toBe(200);
    expect((await dl()).status).toBe(200);
    const third = await dl();
    expect(third.status).toBe(429);
    expect(third.body.error.message).toContain("limit of 2");
  });

  it("presigns the AWS documented example exactly", async () => {
    // AWS SigV4 docs, "Example: Presigned URL" (examplebucket/test.txt, 2013-05-24, 86400 s).
    const url = await presignGetUrl({
      endpoint: "https://s3.amazonaws.com",
      bucket: "examplebucket",
      key: "test.txt",
      region: "us-east-1",
      pathStyle: false,
      accessKeyId: "AKIAIOSFODNN7EXAMPLE",
      secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
      expiresSeconds: 86400,
      now: new Date("2013-05-24T00:00:00Z"),
    });
    expect(new URL(url).searchParams.get("X-Amz-Signature")).toBe(
      "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404",
    );
    expect(url.startsWith("https://examplebucket.s3.amazonaws.com/test.txt?")).toBe(true);
  });
});
