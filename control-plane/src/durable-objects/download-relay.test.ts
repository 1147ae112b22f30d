import { env, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { sha256Hex } from "../crypto/random";
import { relayStub, type RelayFailure } from "./download-relay";

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
    const res = await stub.fetch("https://relay/download?key=x");
    expect(res.status).toBe(404);
    await res.body?.cancel();
  });
});
