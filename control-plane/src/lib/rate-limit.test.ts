import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { sweep } from "../index";
import { db } from "../db/client";
import { rateLimitBuckets } from "../db/schema";
import { ApiError } from "../errors";
import { takeRateLimit } from "./rate-limit";

const HOUR = 3600_000;
const W0 = 1_700_000_000_000 - (1_700_000_000_000 % HOUR);

function take(scopeId: string, now: number) {
  return takeRateLimit(env, {
    operation: "test.op",
    scopeId,
    limit: 20,
    windowMs: HOUR,
    now,
    what: "test op",
  });
}

async function allowedCount(scopeId: string, now: number, tries: number): Promise<number> {
  let ok = 0;
  for (let i = 0; i < tries; i++) {
    try {
      await take(scopeId, now);
      ok++;
    } catch (e) {
      expect(e).toBeInstanceOf(ApiError);
      expect((e as ApiError).status).toBe(429);
    }
  }
  return ok;
}

describe("takeRateLimit (sliding window)", () => {
  it("allows the limit, refuses the next with 429 and a retry hint", async () => {
    expect(await allowedCount("a", W0 + 1000, 20)).toBe(20);
    await expect(take("a", W0 + 2000)).rejects.toMatchObject({ status: 429, code: "RATE_LIMITED" });
  });

  it("does not hand out the whole limit again just after a window boundary", async () => {
    expect(await allowedCount("b", W0 + HOUR - 1000, 20)).toBe(20);
    // 1 s into the next window the previous window still weighs almost fully.
    expect(await allowedCount("b", W0 + HOUR + 1000, 5)).toBe(0);
    // Half way through, half of the previous window's 20 still counts (the refused tries above counted too).
    const half = await allowedCount("b", W0 + HOUR + HOUR / 2, 20);
    expect(half).toBe(5);
    // Two windows later the slate is clean.
    expect(await allowedCount("b", W0 + 3 * HOUR + 1000, 20)).toBe(20);
  });

  it("keeps each scope separate, and the cron sweeps expired windows", async () => {
    expect(await allowedCount("c", W0 + 10, 20)).toBe(20);
    expect(await allowedCount("d", W0 + 10, 1)).toBe(1);
    await sweep(env, W0 + 10 * HOUR);
    const left = await db(env.DB).select().from(rateLimitBuckets).all();
    expect(left.filter((r) => r.key.startsWith("test.op:"))).toEqual([]);
  });
});
