import { describe, expect, it } from "vitest";
import { formatRestoreProgress, restoreSelectionFromFlags } from "./flags";

describe("restore flags", () => {
  it("parses domains, components and conflict", () => {
    expect(
      restoreSelectionFromFlags({
        domains: "a.example.com,b.example.com",
        components: "web,db",
        conflict: "rename",
      }),
    ).toEqual({
      domains: ["a.example.com", "b.example.com"],
      components: ["web", "db"],
      conflict: "rename",
    });
    expect(restoreSelectionFromFlags({})).toMatchObject({ domains: "all", conflict: "skip" });
  });

  it("refuses unknown components and conflict actions", () => {
    expect(() => restoreSelectionFromFlags({ components: "web,files" })).toThrow(/unknown component "files"/);
    expect(() => restoreSelectionFromFlags({ conflict: "merge" })).toThrow(/unknown conflict action/);
  });

  it("formats a progress line", () => {
    const line = formatRestoreProgress({
      phase: "restoring databases",
      percent: 45,
      bytesDone: 1,
      bytesTotal: 2,
      domainsDone: 2,
      domainsTotal: 5,
      domainsText: "2 of 5 domains",
      etaSeconds: 12,
      warning: "x skipped",
    });
    expect(line).toBe("restoring databases 45% 2 of 5 domains ETA 12s WARNING x skipped");
  });
});
