import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { sha256Hex } from "../crypto/random";
import { eq } from "drizzle-orm";
import { db } from "../db/client";
import { activityLog, jobs } from "../db/schema";
import { newId } from "../lib/ids";
import { relayStub, type RelayFailure } from "./download-relay";
import { relayOutcome } from "./download-relay-outcome";

async function openRelay(relayId: string, key: string) {
  const stub = relayStub(env, relayId);
  await stub.open({
    keyHash: await sha256Hex(key),
    runnerId: "run_1",
    fileName: "site.tar.zst",
    size: 10,
    expiresAt: Date.now() + 300_000,
    // Far longer than the test: a 502 here can only come from fail(), never from the wait running out.
    waitMs: 600_000,
  });
  return stub;
}

const failure: RelayFailure = {
  jobId: "job_1",
  code: "NOT_FOUND",
  message: "archive site.tar.zst not found at the source",
};

async function errorOf(res: Response) {
  return ((await res.json()) as { error: { code: string; message: string; job?: unknown } }).error;
}

describe("DownloadRelay failure", () => {
  it("a download already waiting gets 502 RELAY_FAILED with the job's error when the job fails", async () => {
    const stub = await openRelay("rly_wait", "k1");
    const waiting = stub.fetch("https://relay/download?key=k1");
    // The failure must land while the GET waits: wait until it has claimed the link.
    while (!(await runInDurableObject(stub, (_o, state) => state.storage.get("downloadClaimed"))))
      await new Promise((r) => setTimeout(r, 5));
    await stub.fail(failure);
    const res = await waiting;
    expect(res.status).toBe(502);
    const err = await errorOf(res);
    expect(err.code).toBe("RELAY_FAILED");
    expect(err.job).toEqual({ id: "job_1", code: "NOT_FOUND" });
    expect(err.message).toContain("archive site.tar.zst not found");
  });

  it("a download arriving after the failure gets the same 502; the wrong key still gets 401; uploads are refused", async () => {
    const stub = await openRelay("rly_late", "k2");
    await stub.fail(failure);
    const wrong = await stub.fetch("https://relay/download?key=nope");
    expect(wrong.status).toBe(401);
    expect((await errorOf(wrong)).code).toBe("UNAUTHORIZED");
    const res = await stub.fetch("https://relay/download?key=k2");
    expect(res.status).toBe(502);
    expect((await errorOf(res)).code).toBe("RELAY_FAILED");
    expect(await stub.uploadRefusal("run_1")).toMatchObject({ status: 409, code: "CONFLICT" });
  });

  it("fail on an unknown relay id stores nothing", async () => {
    const stub = relayStub(env, "rly_unknown");
    await stub.fail(failure);
    expect(await runInDurableObject(stub, (_o, state) => state.storage.get("failure"))).toBeUndefined();
    const res = await stub.fetch("https://relay/download?key=x");
    expect(res.status).toBe(404);
    await res.body?.cancel();
  });
});

describe("relayOutcome (a finished relay-upload job)", () => {
  async function relayJob(tenantId: string, relayId: string) {
    const jobId = newId("job");
    const now = Date.now();
    await db(env.DB)
      .insert(jobs)
      .values({
        id: jobId,
        tenantId,
        runnerId: "run_1",
        type: "relay-upload",
        state: "RUNNING",
        params: JSON.stringify({ relayId, fileName: "site.tar.zst" }),
        createdAt: now,
        updatedAt: now,
      });
    return jobId;
  }
  const storedFailure = (relayId: string) =>
    runInDurableObject(relayStub(env, relayId), (_o, state) => state.storage.get<RelayFailure>("failure"));
  const activityFor = (relayId: string) =>
    db(env.DB).select().from(activityLog).where(eq(activityLog.targetId, relayId)).all();

  it("a failed job ends its relay and writes one activity row in the job's tenant", async () => {
    await openRelay("rly_outcome", "k3");
    const jobId = await relayJob("ten_a", "rly_outcome");
    await relayOutcome(env, {
      jobId,
      tenantId: "ten_a",
      runnerId: "run_1",
      state: "FAILED",
      error: { code: "NOT_FOUND", message: "archive site.tar.zst not found at the source" },
    });
    expect(await storedFailure("rly_outcome")).toMatchObject({ jobId, code: "NOT_FOUND" });
    const rows = await activityFor("rly_outcome");
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      tenantId: "ten_a",
      status: "failure",
      operation: "backup.download.relay",
    });
  });

  it("a job of another tenant, or a job that succeeded, leaves the relay alone", async () => {
    await openRelay("rly_other", "k4");
    const jobId = await relayJob("ten_a", "rly_other");
    const other = { jobId, tenantId: "ten_b", runnerId: "run_1", state: "FAILED" };
    await relayOutcome(env, other);
    await relayOutcome(env, { ...other, tenantId: "ten_a", state: "SUCCEEDED" });
    expect(await storedFailure("rly_other")).toBeUndefined();
    expect(await activityFor("rly_other")).toEqual([]);
  });
});
