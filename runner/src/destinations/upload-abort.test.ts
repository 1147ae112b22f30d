import { describe, expect, it } from "vitest";
import { UploadAbort } from "./upload-abort";

describe("UploadAbort", () => {
  it("is requested from the first call on, before its cleanup has run", () => {
    const a = new UploadAbort();
    expect(a.requested).toBe(false);
    void a.run(async () => {});
    expect(a.requested).toBe(true);
  });

  it("runs a succeeded cleanup once, however often and however concurrently it is called", async () => {
    const a = new UploadAbort();
    let runs = 0;
    const cleanup = async () => {
      runs++;
      await new Promise((r) => setTimeout(r, 5));
    };
    await Promise.all([a.run(cleanup), a.run(cleanup), a.run(cleanup)]);
    await a.run(cleanup);
    expect(runs).toBe(1);
  });

  it("runs calls one after another: a second call starts only once the first cleanup has ended", async () => {
    const a = new UploadAbort();
    const events: string[] = [];
    let release!: () => void;
    const first = a.run(async () => {
      events.push("first start");
      await new Promise<void>((r) => (release = r));
      events.push("first end");
      throw new Error("unreachable server");
    });
    const second = a.run(async () => {
      events.push("second");
    });
    await new Promise((r) => setTimeout(r, 5));
    expect(events).toEqual(["first start"]);
    release();
    await expect(first).rejects.toThrow("unreachable server");
    await second;
    expect(events).toEqual(["first start", "first end", "second"]);
  });

  it("a failed cleanup is not taken as done: the next call tries again and the abort stays requested", async () => {
    const a = new UploadAbort();
    let attempts = 0;
    const cleanup = async () => {
      attempts++;
      if (attempts === 1) throw new Error("cancel got no answer");
    };
    await expect(a.run(cleanup)).rejects.toThrow("cancel got no answer");
    expect(a.requested).toBe(true);
    await a.run(cleanup);
    await a.run(cleanup);
    expect(attempts).toBe(2);
  });
});
