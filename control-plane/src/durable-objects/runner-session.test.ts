import { env, runDurableObjectAlarm, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { eq } from "drizzle-orm";
import { compactDecrypt, createLocalJWKSet, jwtVerify } from "jose";
import {
  CONTROL_PLANE_ISSUER,
  HEARTBEAT_PING,
  JOB_TOKEN_TYP,
  MAX_MESSAGE_BYTES,
} from "../../../shared/protocol/version";
import { JobClaims, JobSecrets } from "../../../shared/protocol/job-claims";
import { db } from "../db/client";
import { activityLog, backups, jobs, runners } from "../db/schema";
import {
  call,
  connectToken,
  createTenantUser,
  enrollRunner,
  eventually,
  hello,
  openSocket,
  type TestRunner,
  type TestUser,
} from "../../test/helpers";
import type { RunnerSession } from "./runner-session";

const d = () => db(env.DB);
const jobRow = (id: string) => d().select().from(jobs).where(eq(jobs.id, id)).get();
const backupRow = (id: string) => d().select().from(backups).where(eq(backups.id, id)).get();
const stubFor = (r: TestRunner) => env.RUNNER_SESSION.get(env.RUNNER_SESSION.idFromName(r.runnerId));

async function createBackup(u: TestUser, r: TestRunner, encryption: unknown = { mode: "none" }) {
  const res = await call("/api/v1/backups", {
    body: { runnerId: r.runnerId, name: "site", type: "full", encryption },
    token: u.token,
  });
  expect(res.status).toBe(202);
  return { backupId: res.body.backup.id as string, jobId: res.body.job.id as string };
}

async function connected(r: TestRunner) {
  const { status, socket } = await openSocket(r);
  expect(status).toBe(101);
  socket!.send(hello());
  const welcome = await socket!.next("welcome");
  return { socket: socket!, welcome };
}

describe("RunnerSession over a real WebSocket upgrade", () => {
  it("hello → welcome, marks the runner online in D1, and offline after close", async () => {
    const u = await createTenantUser();
    const r = await enrollRunner(u);
    const { socket, welcome } = await connected(r);
    expect(welcome).toMatchObject({ type: "welcome", protocol: 1, runnerId: r.runnerId, leaseMs: 60000 });
    const list = await call("/api/v1/runners", { token: u.token });
    expect(list.body).toEqual([expect.objectContaining({ id: r.runnerId, status: "online" })]);
    socket.close();
    await eventually(
      async () =>
        (await d().select().from(runners).where(eq(runners.id, r.runnerId)).get())?.status === "offline",
      "offline",
    );
  });

  it("delivers a pending job on connect with a token that verifies against the JWKS, and runs the accepted/progress/result flow", async () => {
    const u = await createTenantUser();
    const r = await enrollRunner(u);
    // Created while the runner is offline: stays PENDING until it connects.
    const { backupId, jobId } = await createBackup(u, r, { mode: "panel" });
    expect((await jobRow(jobId))!.state).toBe("PENDING");

    const { socket } = await connected(r);
    const delivery = await socket.next("job");
    expect(delivery.jobId).toBe(jobId);
    const jwks = (await call("/.well-known/jwks.json")).body;
    const { payload, protectedHeader } = await jwtVerify(delivery.token, createLocalJWKSet(jwks), {
      algorithms: ["EdDSA"],
      issuer: CONTROL_PLANE_ISSUER,
      audience: r.runnerId,
      typ: JOB_TOKEN_TYP,
    });
    expect(protectedHeader.kid).toBe("test-1");
    const claims = JobClaims.parse(payload);
    expect(claims.jti).toBe(jobId);
    expect(claims.sub).toBe(u.tenantId);
    expect(claims.exp - claims.iat).toBe(300);
    expect(claims.job.type).toBe("backup");
    if (claims.job.type !== "backup") throw new Error("unreachable");
    expect(claims.job.params.binding).toEqual({
      backupId,
      tenantId: u.tenantId,
      chainRootId: backupId,
      parentId: null,
    });
    expect(claims.job.params.encryption.mode).toBe("panel");
    // The data key travels only inside the JWE, readable with the runner's X25519 key.
    const { plaintext } = await compactDecrypt(claims.secrets!, r.encryptionKey);
    const secrets = JobSecrets.parse(JSON.parse(new TextDecoder().decode(plaintext)));
    expect(atob(secrets.dataKey!).length).toBe(32);
    expect((await jobRow(jobId))!.params).not.toContain(secrets.dataKey!);
    await eventually(async () => (await jobRow(jobId))!.state === "DELIVERED", "DELIVERED");

    socket.send({ type: "job.accepted", jobId });
    await eventually(async () => (await jobRow(jobId))!.state === "RUNNING", "RUNNING");
    expect((await backupRow(backupId))!.status).toBe("running");

    socket.send({
      type: "job.progress",
      jobId,
      bytes: 1000,
      files: 3,
      rate: 500,
      percent: 40,
      phase: "archive",
    });
    await eventually(
      async () => (await call(`/api/v1/jobs/${jobId}`, { token: u.token })).body.progress?.bytes === 1000,
      "progress",
    );
    const job = await call(`/api/v1/jobs/${jobId}`, { token: u.token });
    expect(job.body).toMatchObject({
      id: jobId,
      type: "backup",
      state: "RUNNING",
      progress: { bytes: 1000, files: 3, rate: 500, percent: 40, phase: "archive" },
    });

    socket.send({
      type: "job.progress",
      jobId,
      bytes: 2000,
      files: 3,
      rate: 500,
      percent: 90,
      phase: "upload",
    });
    const sha = "a".repeat(64);
    socket.send({
      type: "job.result",
      jobId,
      status: "SUCCEEDED",
      result: {
        fileName: "site_full_20260101_000000.tar.zst.enc",
        size: 4096,
        sha256: sha,
        fileCount: 3,
        durationMs: 12,
      },
    });
    expect(await socket.next("result.ack")).toEqual({ type: "result.ack", jobId });
    // Acked only after D1 holds the result.
    expect((await jobRow(jobId))!.state).toBe("SUCCEEDED");
    // The final progress (throttled away from D1 while running) is kept with the finished job.
    expect(JSON.parse((await jobRow(jobId))!.progress!)).toMatchObject({ bytes: 2000, files: 3 });
    const trail = await d().select().from(activityLog).where(eq(activityLog.targetId, jobId)).all();
    expect(trail).toEqual([
      expect.objectContaining({
        operation: "job.backup.finish",
        status: "success",
        actorType: "runner",
        actorId: r.runnerId,
        tenantId: u.tenantId,
      }),
    ]);
    // Written after the upgrade (waitUntil), so it may land a moment later.
    await eventually(async () => {
      const rows = await d()
        .select()
        .from(activityLog)
        .where(eq(activityLog.operation, "runner.connect"))
        .all();
      return rows.some((row) => row.actorId === r.runnerId && row.status === "success");
    }, "connect activity row");
    const b = await call(`/api/v1/backups/${backupId}`, { token: u.token });
    expect(b.body).toMatchObject({
      id: backupId,
      status: "completed",
      fileName: "site_full_20260101_000000.tar.zst.enc",
      size: 4096,
      sha256: sha,
      fileCount: 3,
      encryption: "panel",
      jobId,
      runnerId: r.runnerId,
      kind: "full",
    });
    expect(b.body.completedAt).not.toBeNull();
    // A re-sent result (outbox replay) is acked again and changes nothing.
    socket.send({ type: "job.result", jobId, status: "FAILED", error: { code: "X", message: "late" } });
    expect(await socket.next("result.ack")).toEqual({ type: "result.ack", jobId });
    expect((await jobRow(jobId))!.state).toBe("SUCCEEDED");

    // Restore of the completed panel-mode backup: same binding, the same data key in the JWE.
    const rs = await call(`/api/v1/backups/${backupId}/restore`, {
      body: { target: "/srv/restore", only: ["www/"], conflict: "overwrite" },
      token: u.token,
    });
    expect(rs.status).toBe(202);
    const rd = await socket.next("job");
    expect(rd.jobId).toBe(rs.body.job.id);
    const restoreClaims = JobClaims.parse(
      (await jwtVerify(rd.token, createLocalJWKSet(jwks), { audience: r.runnerId })).payload,
    );
    expect(restoreClaims.job).toMatchObject({
      type: "restore",
      params: {
        fileName: "site_full_20260101_000000.tar.zst.enc",
        target: "/srv/restore",
        only: ["www/"],
        conflict: "overwrite",
        binding: claims.job.params.binding,
      },
    });
    const restoreSecrets = JSON.parse(
      new TextDecoder().decode((await compactDecrypt(restoreClaims.secrets!, r.encryptionKey)).plaintext),
    );
    expect(restoreSecrets.dataKey).toBe(secrets.dataKey);
    socket.close();
  });

  it("delivers a job created while connected, and a rejected job becomes FAILED with the reject code", async () => {
    const u = await createTenantUser();
    const r = await enrollRunner(u);
    const { socket } = await connected(r);
    const { backupId, jobId } = await createBackup(u, r);
    expect((await socket.next("job")).jobId).toBe(jobId);
    socket.send({ type: "job.rejected", jobId, code: "BAD_SIGNATURE", reason: "signature did not verify" });
    await eventually(async () => (await jobRow(jobId))!.state === "FAILED", "FAILED");
    expect((await jobRow(jobId))!.errorCode).toBe("BAD_SIGNATURE");
    expect((await backupRow(backupId))!.status).toBe("failed");
    socket.close();
  });

  it("a newer socket replaces the older one with 4002", async () => {
    const u = await createTenantUser();
    const r = await enrollRunner(u);
    const first = await connected(r);
    const second = await connected(r);
    expect((await first.socket.waitClose()).code).toBe(4002);
    // The newer socket still works, and the runner stays online.
    const { jobId } = await createBackup(u, r);
    expect((await second.socket.next("job")).jobId).toBe(jobId);
    expect((await d().select().from(runners).where(eq(runners.id, r.runnerId)).get())!.status).toBe("online");
    second.socket.close();
  });

  it("a malformed message closes with 1008 and the session keeps serving a new connection", async () => {
    const u = await createTenantUser();
    const r = await enrollRunner(u);
    const a = await connected(r);
    a.socket.send("this is not json");
    expect((await a.socket.waitClose()).code).toBe(1008);
    const b = await connected(r);
    b.socket.send({ type: "job.accepted" }); // valid JSON, wrong shape
    expect((await b.socket.waitClose()).code).toBe(1008);
    const c = await connected(r);
    expect(c.welcome.type).toBe("welcome");
    c.socket.close();
  });

  it("an oversized message closes with 1009 and the session keeps serving", async () => {
    const u = await createTenantUser();
    const r = await enrollRunner(u);
    const a = await connected(r);
    a.socket.send(JSON.stringify({ type: "hello", pad: "x".repeat(MAX_MESSAGE_BYTES) }));
    expect((await a.socket.waitClose()).code).toBe(1009);
    const b = await connected(r);
    expect(b.welcome.runnerId).toBe(r.runnerId);
    b.socket.close();
  });

  it("refuses bad connect tokens with 401 before the upgrade", async () => {
    const u = await createTenantUser();
    const r = await enrollRunner(u);
    const other = await enrollRunner(u, "web-02");
    expect((await openSocket(r, "not-a-jwt")).status).toBe(401);
    expect((await openSocket(r, await connectToken(r, { ttl: 600 }))).status).toBe(401); // lifetime > 120 s
    expect((await openSocket(r, await connectToken(r, { aud: "someone-else" }))).status).toBe(401);
    expect((await openSocket(r, await connectToken(r, { typ: "JWT" }))).status).toBe(401);
    // Signed by another runner's key while claiming to be r.
    const forged = await connectToken({ ...other, runnerId: r.runnerId });
    expect((await openSocket(r, forged)).status).toBe(401);
    // Replayed jti.
    const once = await connectToken(r);
    const first = await openSocket(r, once);
    expect(first.status).toBe(101);
    expect((await openSocket(r, once)).status).toBe(401);
    first.socket!.close();
    const plain = await call("/api/v1/runners/connect");
    expect(plain.status).toBe(426);
  });

  it("revoke closes the socket with 4001 and refuses reconnects", async () => {
    const u = await createTenantUser();
    const r = await enrollRunner(u);
    const { socket } = await connected(r);
    const { backupId, jobId } = await createBackup(u, r);
    expect((await socket.next("job")).jobId).toBe(jobId);
    const rv = await call(`/api/v1/runners/${r.runnerId}/revoke`, { method: "POST", token: u.token });
    expect(rv.status).toBe(200);
    expect(rv.body.revokedAt).not.toBeNull();
    expect((await socket.waitClose()).code).toBe(4001);
    expect((await openSocket(r)).status).toBe(401);
    // Its unfinished job can never run now: failed at once, not at lease expiry.
    expect((await jobRow(jobId))!).toMatchObject({ state: "FAILED", errorCode: "RUNNER_REVOKED" });
    expect((await backupRow(backupId))!.status).toBe("failed");
    const b = await call("/api/v1/backups", { body: { runnerId: r.runnerId, name: "site" }, token: u.token });
    expect(b.status).toBe(409);
  });

  it("a running job whose lease expires becomes INTERRUPTED and its backup failed", async () => {
    const u = await createTenantUser();
    const r = await enrollRunner(u);
    const { socket } = await connected(r);
    const { backupId, jobId } = await createBackup(u, r);
    expect((await socket.next("job")).jobId).toBe(jobId);
    socket.send({ type: "job.accepted", jobId });
    await eventually(async () => (await jobRow(jobId))!.state === "RUNNING", "RUNNING");
    socket.close();
    await eventually(
      async () =>
        (await d().select().from(runners).where(eq(runners.id, r.runnerId)).get())!.status === "offline",
      "offline",
    );
    const stub = stubFor(r);
    // Not yet expired: the alarm leaves the job alone.
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect((await jobRow(jobId))!.state).toBe("RUNNING");
    await runInDurableObject(stub, async (_obj: RunnerSession, state) => {
      state.storage.sql.exec("UPDATE jobs SET lease_until = ? WHERE id = ?", Date.now() - 1, jobId);
      await state.storage.setAlarm(Date.now() + 60_000);
    });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    const j = (await jobRow(jobId))!;
    expect(j.state).toBe("INTERRUPTED");
    expect(j.errorCode).toBe("INTERRUPTED");
    expect((await backupRow(backupId))!.status).toBe("failed");
  });

  it("heartbeats are answered with pong and keep a running job's lease alive", async () => {
    const u = await createTenantUser();
    const r = await enrollRunner(u);
    const { socket } = await connected(r);
    const { jobId } = await createBackup(u, r);
    expect((await socket.next("job")).jobId).toBe(jobId);
    socket.send({ type: "job.accepted", jobId });
    await eventually(async () => (await jobRow(jobId))!.state === "RUNNING", "RUNNING");
    const stub = stubFor(r);
    // The lease has run out by the ledger, but a heartbeat arrives just before the alarm.
    await runInDurableObject(stub, (_obj: RunnerSession, state) => {
      state.storage.sql.exec("UPDATE jobs SET lease_until = ? WHERE id = ?", Date.now() - 1, jobId);
    });
    socket.send(HEARTBEAT_PING);
    expect(await socket.next("pong")).toEqual({ type: "pong" });
    expect(await runDurableObjectAlarm(stub)).toBe(true);
    expect((await jobRow(jobId))!.state).toBe("RUNNING");
    const leaseUntil = await runInDurableObject(stub, (_obj: RunnerSession, state) => {
      return state.storage.sql
        .exec<{ l: number }>("SELECT lease_until AS l FROM jobs WHERE id = ?", jobId)
        .one().l;
    });
    expect(leaseUntil).toBeGreaterThan(Date.now());
    socket.close();
  });

  it("a delivered but unaccepted job goes back to PENDING when the runner disconnects and is redelivered", async () => {
    const u = await createTenantUser();
    const r = await enrollRunner(u);
    const a = await connected(r);
    const { jobId } = await createBackup(u, r);
    expect((await a.socket.next("job")).jobId).toBe(jobId);
    a.socket.close();
    await eventually(async () => (await jobRow(jobId))!.state === "PENDING", "PENDING again");
    const b = await connected(r);
    expect((await b.socket.next("job")).jobId).toBe(jobId);
    b.socket.close();
  });

  it("cancelling a pending job marks it CANCELLED without delivery", async () => {
    const u = await createTenantUser();
    const r = await enrollRunner(u);
    const { backupId, jobId } = await createBackup(u, r);
    const c = await call(`/api/v1/jobs/${jobId}/cancel`, { method: "POST", token: u.token });
    expect(c.status).toBe(202);
    expect(c.body.job.state).toBe("CANCELLED");
    expect((await backupRow(backupId))!.status).toBe("failed");
    const { socket } = await connected(r);
    const { jobId: second } = await createBackup(u, r);
    // The first delivery on this socket is the new job, never the cancelled one.
    expect((await socket.next("job")).jobId).toBe(second);
    socket.close();
  });
});
