import { describe, expect, it } from "vitest";
import { formatLine, memoryLogger } from "./log";

describe("log", () => {
  it("writes one line per event and redacts secret-looking fields", () => {
    expect(formatLine("info", "job accepted", { jobId: "job_1", type: "backup" })).toBe(
      "[cairn-runner] info job accepted jobId=job_1 type=backup",
    );
    const line = formatLine("warn", "x", {
      token: "eyJ...",
      password: "p",
      dataKey: "k",
      reason: "two words",
    });
    expect(line).toBe(
      '[cairn-runner] warn x token=[redacted] password=[redacted] dataKey=[redacted] reason="two words"',
    );
    const log = memoryLogger();
    log.error("a\nb", { n: 1 });
    expect(log.lines).toEqual(["[cairn-runner] error a b n=1"]);
  });
});
