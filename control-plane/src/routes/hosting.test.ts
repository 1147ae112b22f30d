import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { eq } from "drizzle-orm";
import { db } from "../db/client";
import { jobs, settings } from "../db/schema";
import {
  call,
  createTenantUser,
  enrollRunner,
  eventually,
  hello,
  openSocket,
  type TestRunner,
  type TestUser,
} from "../../test/helpers";
import { insertCompletedBackup } from "../../test/backup-fixtures";

/** Hosting wiring: inventory reports → domains API, hosting backup/restore params, restore concurrency limit. */

async function connected(r: TestRunner) {
  const { status, socket } = await openSocket(r);
  expect(status).toBe(101);
  socket!.send(hello());
  await socket!.next("welcome");
  return socket!;
}

const inventory = (domains: string[]) => ({
  type: "inventory",
  collectedAt: Date.now(),
  domains: domains.map((d) => ({
    domain: d,
    components: ["web", "db", "mail"],
    databases: [{ engine: "postgres", name: `${d.split(".")[0]}_db` }],
    details: { webBytes: 1234 },
  })),
});

async function reported(u: TestUser, r: TestRunner, domains: string[]) {
  const socket = await connected(r);
  socket.send(inventory(domains));
  await eventually(async () => {
    const res = await call(`/api/v1/runners/${r.runnerId}/domains`, { token: u.token });
    return res.status === 200 && res.body.length === domains.length;
  }, "domains stored");
  return socket;
}

describe("inventory → domains API", () => {
  it("stores the runner's report, replaces it on the next one, and asks for a fresh one on request", async () => {
    const u = await createTenantUser();
    const r = await enrollRunner(u);
    const socket = await reported(u, r, ["site1.example.com", "site2.example.com"]);
    const list = await call(`/api/v1/runners/${r.runnerId}/domains`, { token: u.token });
    expect(list.body[0]).toMatchObject({
      domain: "site1.example.com",
      runnerId: r.runnerId,
      components: ["web", "db", "mail"],
      databases: [{ engine: "postgres", name: "site1_db" }],
      details: { webBytes: 1234 },
    });
    // A later report is the whole truth: site2 is gone, site3 is new.
    socket.send(inventory(["site1.example.com", "site3.example.com"]));
    await eventually(async () => {
      const res = await call(`/api/v1/runners/${r.runnerId}/domains`, { token: u.token });
      return (
        JSON.stringify(res.body.map((x: { domain: string }) => x.domain)) ===
        '["site1.example.com","site3.example.com"]'
      );
    }, "replaced");
    const req = await call(`/api/v1/runners/${r.runnerId}/inventory`, { method: "POST", token: u.token });
    expect(req.status).toBe(202);
    expect(await socket.next("inventory.request")).toEqual({ type: "inventory.request" });
    socket.close();
  });

  it("a malformed inventory closes the socket (1008) and stores nothing", async () => {
    const u = await createTenantUser();
    const r = await enrollRunner(u);
    const socket = await connected(r);
    socket.send({
      type: "inventory",
      collectedAt: 1,
      domains: [{ domain: "x.example.com", components: ["nope"], databases: [] }],
    });
    expect((await socket.waitClose()).code).toBe(1008);
    const list = await call(`/api/v1/runners/${r.runnerId}/domains`, { token: u.token });
    expect(list.body).toEqual([]);
  });

  it("is tenant-scoped: another tenant's runner is a 404 on both routes", async () => {
    const a = await createTenantUser();
    const b = await createTenantUser();
    const r = await enrollRunner(a);
    (await reported(a, r, ["a.example.com"])).close();
    expect((await call(`/api/v1/runners/${r.runnerId}/domains`, { token: b.token })).status).toBe(404);
    expect(
      (await call(`/api/v1/runners/${r.runnerId}/inventory`, { method: "POST", token: b.token })).status,
    ).toBe(404);
  });

  it("asking an offline runner for its inventory is a 409 RUNNER_OFFLINE", async () => {
    const u = await createTenantUser();
    const r = await enrollRunner(u);
    const res = await call(`/api/v1/runners/${r.runnerId}/inventory`, { method: "POST", token: u.token });
    expect(res.status).toBe(409);
    expect(res.body.error.code).toBe("RUNNER_OFFLINE");
  });
});

describe("hosting backups", () => {
  it("puts the selection into the signed job, and refuses unknown domains, unknown components and sources+domains", async () => {
    const u = await createTenantUser();
    const r = await enrollRunner(u);
    (await reported(u, r, ["site1.example.com", "site2.example.com"])).close();
    const ok = await call("/api/v1/backups", {
      body: {
        runnerId: r.runnerId,
        name: "hosting",
        domains: ["site2.example.com"],
        components: ["web", "db"],
      },
      token: u.token,
    });
    expect(ok.status).toBe(202);
    const job = await db(env.DB).select().from(jobs).where(eq(jobs.id, ok.body.job.id)).get();
    expect(JSON.parse(job!.params).hosting).toEqual({
      domains: ["site2.example.com"],
      components: ["web", "db"],
    });

    const unknown = await call("/api/v1/backups", {
      body: { runnerId: r.runnerId, name: "hosting", domains: ["site2.example.com", "nope.example.com"] },
      token: u.token,
    });
    expect(unknown.status).toBe(400);
    expect(unknown.body.error.message).toContain("nope.example.com");
    const badComp = await call("/api/v1/backups", {
      body: { runnerId: r.runnerId, name: "hosting", domains: "all", components: ["web", "ftp"] },
      token: u.token,
    });
    expect(badComp.status).toBe(400);
    const both = await call("/api/v1/backups", {
      body: { runnerId: r.runnerId, name: "hosting", domains: "all", sources: ["/srv"] },
      token: u.token,
    });
    expect(both.status).toBe(400);
  });

  it("a backup whose result says partial is partial, with its warnings on GET /backups/:id", async () => {
    const u = await createTenantUser();
    const r = await enrollRunner(u);
    const socket = await reported(u, r, ["site1.example.com"]);
    const res = await call("/api/v1/backups", {
      body: { runnerId: r.runnerId, name: "hosting", domains: "all", components: ["web", "db"] },
      token: u.token,
    });
    const jobId = res.body.job.id as string;
    await socket.next("job");
    socket.send({ type: "job.accepted", jobId });
    const warning = "site1.example.com db postgres/site1_db failed (SOURCE_FAILED): connection refused";
    socket.send({
      type: "job.result",
      jobId,
      status: "SUCCEEDED",
      result: {
        fileName: "hosting_full_20260101_000000.tar.zst",
        size: 1,
        sha256: "a".repeat(64),
        fileCount: 1,
        durationMs: 1,
        status: "partial",
      },
      warnings: [warning],
    });
    await socket.next("result.ack");
    const b = await call(`/api/v1/backups/${res.body.backup.id}`, { token: u.token });
    expect(b.body.status).toBe("partial");
    expect(b.body.warnings).toEqual([warning]);
    socket.close();
  });
});

describe("hosting restores", () => {
  it("signs domains, components, conflict and safetyBackup into the job", async () => {
    const u = await createTenantUser();
    const r = await enrollRunner(u);
    const id = await insertCompletedBackup(u.tenantId, r.runnerId);
    const res = await call(`/api/v1/backups/${id}/restore`, {
      body: {
        target: "/srv/hosting",
        domains: ["site1.example.com"],
        components: ["web", "db"],
        conflict: "overwrite",
      },
      token: u.token,
    });
    expect(res.status).toBe(202);
    const job = await db(env.DB).select().from(jobs).where(eq(jobs.id, res.body.job.id)).get();
    const params = JSON.parse(job!.params);
    expect(params.conflict).toBe("overwrite");
    expect(params.hosting).toEqual({
      domains: ["site1.example.com"],
      components: ["web", "db"],
      safetyBackup: true,
    });
  });

  it("allows 2 concurrent restores per tenant by default; the third is 429 RATE_LIMITED; a tenant setting raises it", async () => {
    const u = await createTenantUser();
    const other = await createTenantUser();
    const r = await enrollRunner(u);
    const ro = await enrollRunner(other);
    const id = await insertCompletedBackup(u.tenantId, r.runnerId);
    const restore = (t: TestUser, bid: string) =>
      call(`/api/v1/backups/${bid}/restore`, {
        body: { target: "/srv/hosting", domains: "all" },
        token: t.token,
      });
    expect((await restore(u, id)).status).toBe(202);
    expect((await restore(u, id)).status).toBe(202);
    const third = await restore(u, id);
    expect(third.status).toBe(429);
    expect(third.body.error.code).toBe("RATE_LIMITED");
    expect(third.body.error.message).toContain("restore.maxConcurrent");
    // Another tenant has its own budget.
    expect((await restore(other, await insertCompletedBackup(other.tenantId, ro.runnerId))).status).toBe(202);
    // A finished restore frees its slot.
    const running = await db(env.DB).select().from(jobs).where(eq(jobs.tenantId, u.tenantId)).all();
    await db(env.DB).update(jobs).set({ state: "SUCCEEDED" }).where(eq(jobs.id, running[0]!.id));
    expect((await restore(u, id)).status).toBe(202);
    expect((await restore(u, id)).status).toBe(429);
    // The tenant row overrides the "*" default.
    const now = Date.now();
    await db(env.DB)
      .insert(settings)
      .values({ tenantId: "*", key: "restore.maxConcurrent", value: "1", updatedAt: now });
    await db(env.DB)
      .insert(settings)
      .values({ tenantId: u.tenantId, key: "restore.maxConcurrent", value: "3", updatedAt: now });
    expect((await restore(u, id)).status).toBe(202);
    expect((await restore(u, id)).status).toBe(429);
    await db(env.DB).delete(settings).where(eq(settings.tenantId, "*"));
  });

  it("refuses a restore onto another runner when the archive is only on the original runner's disk (409); other tenant's runner is 404", async () => {
    const u = await createTenantUser();
    const other = await createTenantUser();
    const r1 = await enrollRunner(u, "web-01");
    const r2 = await enrollRunner(u, "web-02");
    const foreign = await enrollRunner(other, "x");
    const id = await insertCompletedBackup(u.tenantId, r1.runnerId);
    const cross = await call(`/api/v1/backups/${id}/restore`, {
      body: { target: "/srv/hosting", domains: "all", runnerId: r2.runnerId },
      token: u.token,
    });
    expect(cross.status).toBe(409);
    expect(cross.body.error.message).toContain("only on the local disk");
    const alien = await call(`/api/v1/backups/${id}/restore`, {
      body: { target: "/srv/hosting", domains: "all", runnerId: foreign.runnerId },
      token: u.token,
    });
    expect(alien.status).toBe(404);
  });
});

describe("settings API", () => {
  it("ROOT reads effective settings and writes validated tenant values; a USER may not", async () => {
    const root = await createTenantUser("ROOT");
    const user = await createTenantUser("USER");
    const g = await call("/api/v1/settings", { token: root.token });
    expect(g.status).toBe(200);
    expect(g.body.settings["restore.maxConcurrent"]).toBe(2);
    const bad = await call("/api/v1/settings", {
      method: "PUT",
      body: { "restore.maxConcurrent": 0 },
      token: root.token,
    });
    expect(bad.status).toBe(400);
    const unknown = await call("/api/v1/settings", { method: "PUT", body: { nope: 1 }, token: root.token });
    expect(unknown.status).toBe(400);
    const put = await call("/api/v1/settings", {
      method: "PUT",
      body: { "restore.maxConcurrent": 5 },
      token: root.token,
    });
    expect(put.body.settings["restore.maxConcurrent"]).toBe(5);
    expect((await call("/api/v1/settings", { token: user.token })).status).toBe(403);
  });
});
