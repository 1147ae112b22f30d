import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { eq } from "drizzle-orm";
import { db } from "../db/client";
import { activityLog, backups, tenantKeys } from "../db/schema";
import { unwrapDataKey } from "../lib/panel-keys";
import { call, createTenantUser, enrollRunner } from "../../test/helpers";

describe("backups API", () => {
  it("creates (202), lists newest first and gets backups, scoped by tenant", async () => {
    const a = await createTenantUser();
    const b = await createTenantUser();
    const ra = await enrollRunner(a);
    const rb = await enrollRunner(b);
    const first = await call("/api/v1/backups", {
      body: { runnerId: ra.runnerId, name: "site-one", type: "full" },
      token: a.token,
    });
    expect(first.status).toBe(202);
    expect(first.body.backup).toMatchObject({
      status: "queued",
      kind: "full",
      runnerId: ra.runnerId,
      encryption: "none",
      fileName: null,
    });
    expect(first.body.job.id).toMatch(/^job_/);
    const second = await call("/api/v1/backups", {
      body: { runnerId: ra.runnerId, name: "site-two" },
      token: a.token,
    });
    expect(second.status).toBe(202);
    const other = await call("/api/v1/backups", {
      body: { runnerId: rb.runnerId, name: "theirs" },
      token: b.token,
    });

    const list = await call("/api/v1/backups?limit=10", { token: a.token });
    expect(list.status).toBe(200);
    expect(list.body.map((x: { name: string }) => x.name)).toEqual(["site-two", "site-one"]);
    const limited = await call("/api/v1/backups?limit=1", { token: a.token });
    expect(limited.body).toHaveLength(1);

    const got = await call(`/api/v1/backups/${first.body.backup.id}`, { token: a.token });
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({
      id: first.body.backup.id,
      status: "queued",
      jobId: first.body.job.id,
      kind: "full",
    });
    // Another tenant's backup, job and runner ids are 404.
    expect((await call(`/api/v1/backups/${other.body.backup.id}`, { token: a.token })).status).toBe(404);
    const readFailures = await db(env.DB)
      .select()
      .from(activityLog)
      .where(eq(activityLog.operation, "api.get"))
      .all();
    expect(
      readFailures.filter((f) => f.actorId === a.userId && f.details!.includes(other.body.backup.id)),
    ).toHaveLength(1);
    expect((await call(`/api/v1/jobs/${other.body.job.id}`, { token: a.token })).status).toBe(404);
    expect(
      (await call(`/api/v1/jobs/${other.body.job.id}/cancel`, { method: "POST", token: a.token })).status,
    ).toBe(404);
    expect(
      (await call(`/api/v1/backups/${other.body.backup.id}/verify`, { body: {}, token: a.token })).status,
    ).toBe(404);
    const cross = await call("/api/v1/backups", {
      body: { runnerId: rb.runnerId, name: "sneaky" },
      token: a.token,
    });
    expect(cross.status).toBe(404);

    const job = await call(`/api/v1/jobs/${first.body.job.id}`, { token: a.token });
    expect(job.body).toMatchObject({
      id: first.body.job.id,
      type: "backup",
      state: "PENDING",
      progress: { bytes: 0, files: 0, rate: 0 },
    });
  });

  it("panel mode stores a wrapped per-backup data key; password mode stores and logs no password", async () => {
    const u = await createTenantUser();
    const r = await enrollRunner(u);
    const p1 = await call("/api/v1/backups", {
      body: { runnerId: r.runnerId, name: "p1", encryption: { mode: "panel" } },
      token: u.token,
    });
    const p2 = await call("/api/v1/backups", {
      body: { runnerId: r.runnerId, name: "p2", encryption: { mode: "panel" } },
      token: u.token,
    });
    expect(p1.status).toBe(202);
    const rows = await db(env.DB).select().from(backups).where(eq(backups.tenantId, u.tenantId)).all();
    const b1 = rows.find((x) => x.id === p1.body.backup.id)!;
    const b2 = rows.find((x) => x.id === p2.body.backup.id)!;
    // One panel key per tenant, a fresh data key per backup.
    expect(
      await db(env.DB).select().from(tenantKeys).where(eq(tenantKeys.tenantId, u.tenantId)).all(),
    ).toHaveLength(1);
    expect(b1.panelKeyId).toBe(b2.panelKeyId);
    const k1 = await unwrapDataKey(env, {
      tenantId: u.tenantId,
      backupId: b1.id,
      keyId: b1.panelKeyId!,
      wrappedKey: b1.wrappedDataKey!,
    });
    const k2 = await unwrapDataKey(env, {
      tenantId: u.tenantId,
      backupId: b2.id,
      keyId: b2.panelKeyId!,
      wrappedKey: b2.wrappedDataKey!,
    });
    expect(k1.byteLength).toBe(32);
    expect(k1).not.toEqual(k2);
    // Bound to its backup: the wrapped key of one backup does not unwrap as another's.
    await expect(
      unwrapDataKey(env, {
        tenantId: u.tenantId,
        backupId: b2.id,
        keyId: b1.panelKeyId!,
        wrappedKey: b1.wrappedDataKey!,
      }),
    ).rejects.toThrow();

    const secret = "correct horse battery staple 42";
    const pw = await call("/api/v1/backups", {
      body: { runnerId: r.runnerId, name: "pw", encryption: { mode: "password", password: secret } },
      token: u.token,
    });
    expect(pw.status).toBe(202);
    const dump = JSON.stringify([
      await db(env.DB).select().from(backups).all(),
      await env.DB.prepare("SELECT * FROM jobs").all(),
      await db(env.DB).select().from(activityLog).all(),
    ]);
    expect(dump).not.toContain(secret);
    const weak = await call("/api/v1/backups", {
      body: { runnerId: r.runnerId, name: "pw", encryption: { mode: "password", password: "short" } },
      token: u.token,
    });
    expect(weak.status).toBe(400);
    expect(weak.body.error.message).toMatch(/12 characters/);
  });

  it("incremental needs a completed full backup of the same name (409 otherwise)", async () => {
    const u = await createTenantUser();
    const r = await enrollRunner(u);
    const res = await call("/api/v1/backups", {
      body: { runnerId: r.runnerId, name: "site", type: "incremental" },
      token: u.token,
    });
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe("CONFLICT");
  });

  it("restore and verify refuse a backup that has not completed", async () => {
    const u = await createTenantUser();
    const r = await enrollRunner(u);
    const b = await call("/api/v1/backups", { body: { runnerId: r.runnerId, name: "site" }, token: u.token });
    const res = await call(`/api/v1/backups/${b.body.backup.id}/restore`, {
      body: { target: "/srv/restore" },
      token: u.token,
    });
    expect(res.status).toBe(409);
    const rel = await call(`/api/v1/backups/${b.body.backup.id}/restore`, {
      body: { target: "relative/path" },
      token: u.token,
    });
    expect(rel.status).toBe(400);
  });

  it("bad input is a 400 with a clear message, never a 500, and failed operations are logged", async () => {
    const u = await createTenantUser();
    const r = await enrollRunner(u);
    const cases: unknown[] = [
      {},
      { runnerId: r.runnerId },
      { runnerId: r.runnerId, name: "../etc" },
      { runnerId: r.runnerId, name: "ok", type: "differential" },
      { runnerId: r.runnerId, name: "ok", compressionLevel: 0 },
      { runnerId: r.runnerId, name: "ok", compressionLevel: 10 },
      { runnerId: r.runnerId, name: "ok", sources: ["relative"] },
      { runnerId: r.runnerId, name: "ok", encryption: { mode: "rot13" } },
      [],
      "string",
      null,
    ];
    for (const body of cases) {
      const res = await call("/api/v1/backups", { body, token: u.token });
      expect(res.status, JSON.stringify(body)).toBe(400);
      expect(res.body.error.code).toBe("VALIDATION_FAILED");
      expect(res.body.error.message.length).toBeGreaterThan(0);
    }
    const malformed = await call("/api/v1/backups", {
      method: "POST",
      rawBody: '{"runnerId":',
      token: u.token,
      headers: { "content-type": "application/json" },
    });
    expect(malformed.status).toBe(400);
    expect((await call("/api/v1/backups?limit=abc", { token: u.token })).status).toBe(400);
    const failures = await db(env.DB)
      .select()
      .from(activityLog)
      .where(eq(activityLog.operation, "backup.create"))
      .all();
    expect(failures.filter((f) => f.status === "failure" && f.tenantId === u.tenantId)).toHaveLength(
      cases.length + 1,
    );
  });

  it("activity is tenant-scoped and paginated", async () => {
    const a = await createTenantUser();
    const b = await createTenantUser();
    await enrollRunner(a);
    await enrollRunner(b);
    const page = await call("/api/v1/activity?limit=1", { token: a.token });
    expect(page.status).toBe(200);
    expect(page.body.items).toHaveLength(1);
    expect(page.body.nextCursor).not.toBeNull();
    const all = await call("/api/v1/activity?limit=500", { token: a.token });
    expect(all.body.items.every((i: { tenantId: string }) => i.tenantId === a.tenantId)).toBe(true);
    expect(all.body.items.map((i: { operation: string }) => i.operation)).toEqual(
      expect.arrayContaining(["auth.login", "runner.enroll"]),
    );
  });
});
