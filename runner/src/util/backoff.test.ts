import { describe, expect, it } from "vitest";
import { Backoff } from "./backoff";

describe("backoff", () => {
  it("doubles from 1 s to a 60 s ceiling with full jitter, and resets", () => {
    let r = 0.999999;
    const b = new Backoff({ baseMs: 1000, maxMs: 60_000, random: () => r });
    const top = Array.from({ length: 9 }, () => b.next());
    expect(top).toEqual([999, 1999, 3999, 7999, 15999, 31999, 59999, 59999, 59999]);
    r = 0;
    expect(b.next()).toBe(0);
    b.reset();
    r = 0.5;
    expect(b.next()).toBe(500);
  });
});
