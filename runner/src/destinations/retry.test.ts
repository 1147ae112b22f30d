import { describe, expect, it } from "vitest";
import { isTransient, withRetry } from "./retry";
import { DestinationError } from "./types";

const FAST = { attempts: 3, baseDelayMs: 1, maxDelayMs: 2 };

describe("withRetry", () => {
  it("retries transient faults up to the bound, then throws the last error", async () => {
    let calls = 0;
    const err = Object.assign(new Error("read ECONNRESET"), { code: "ECONNRESET" });
    await expect(
      withRetry(FAST, async () => {
        calls++;
        throw err;
      }),
    ).rejects.toBe(err);
    expect(calls).toBe(3);
  });

  it("does not retry final errors", async () => {
    let calls = 0;
    const err = new DestinationError("AUTH_FAILED", "s3://b", "denied");
    await expect(
      withRetry(FAST, async () => {
        calls++;
        throw err;
      }),
    ).rejects.toBe(err);
    expect(calls).toBe(1);
  });

  it("returns the first success", async () => {
    let calls = 0;
    const v = await withRetry(FAST, async () => {
      if (++calls < 2) throw Object.assign(new Error("x"), { status: 503 });
      return "ok";
    });
    expect([v, calls]).toEqual(["ok", 2]);
  });

  it("classifies faults", () => {
    expect(
      isTransient(
        new TypeError("fetch failed", { cause: Object.assign(new Error("s"), { code: "UND_ERR_SOCKET" }) }),
      ),
    ).toBe(true);
    expect(isTransient(new DOMException("The operation was aborted due to timeout", "TimeoutError"))).toBe(
      true,
    );
    expect(isTransient(new DestinationError("CONNECTION_FAILED", "u", "m"))).toBe(true);
    expect(isTransient(new DestinationError("NOT_FOUND", "u", "m"))).toBe(false);
    expect(isTransient(Object.assign(new Error("bad request"), { status: 400 }))).toBe(false);
  });
});
