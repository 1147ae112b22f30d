import { mkdtemp, readdir, stat, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { jobFingerprint, Journal, JournalError } from "./journal";

const tmp = () => mkdtemp(path.join(os.tmpdir(), "cairn-journal-"));
const result = (jobId: string) => ({
  type: "job.result" as const,
  jobId,
  status: "SUCCEEDED" as const,
  result: { ok: 1 },
});

describe("journal", () => {
  it("survives a restart: known jobs stay known, results stay in the outbox until acked", async () => {
    const dir = await tmp();
    const { journal: j1 } = await Journal.open(dir);
    await j1.accept("job_1", "fp1", "backup", 100);
    await j1.markRunning("job_1");
    await j1.finish("job_1", result("job_1"));
    const { journal: j2, interrupted } = await Journal.open(dir);
    expect(interrupted).toEqual([]);
    expect(j2.lookup("job_1", "fp1").kind).toBe("same");
    expect(j2.lookup("job_1", "fp2").kind).toBe("different");
    expect(j2.lookup("job_2", "fp1").kind).toBe("new");
    expect(j2.outbox()).toEqual([result("job_1")]);
    expect(await j2.ack("job_1")).toBe(true);
    expect(await j2.ack("job_1")).toBe(false);
    const { journal: j3 } = await Journal.open(dir);
    expect(j3.outbox()).toEqual([]);
    const files = await readdir(path.join(dir, "journal"));
    expect(files).toEqual(["job_1.json"]);
    expect((await stat(path.join(dir, "journal", "job_1.json"))).mode & 0o777).toBe(0o600);
  });

  it("finishes jobs interrupted by a crash as FAILED instead of re-running them", async () => {
    const dir = await tmp();
    const { journal: j1 } = await Journal.open(dir);
    await j1.accept("job_a", "fp", "backup", 100);
    await j1.accept("job_b", "fp", "backup", 100);
    await j1.markRunning("job_b");
    const { journal: j2, interrupted } = await Journal.open(dir);
    expect(interrupted.sort()).toEqual(["job_a", "job_b"]);
    expect(j2.activeJobIds()).toEqual([]);
    expect(
      j2
        .outbox()
        .map((r) => [r.jobId, r.status, r.error?.code])
        .sort(),
    ).toEqual([
      ["job_a", "FAILED", "INTERRUPTED"],
      ["job_b", "FAILED", "INTERRUPTED"],
    ]);
  });

  it("keeps the first result of a job", async () => {
    const { journal } = await Journal.open(await tmp());
    await journal.accept("job_1", "fp", "backup", 100);
    await journal.finish("job_1", result("job_1"));
    await journal.finish("job_1", { type: "job.result", jobId: "job_1", status: "FAILED" });
    expect(journal.get("job_1")?.result?.status).toBe("SUCCEEDED");
    await expect(journal.accept("job_1", "fp", "backup", 100)).rejects.toBeInstanceOf(JournalError);
  });

  it("prunes only acked entries whose tokens can no longer verify", async () => {
    const dir = await tmp();
    let now = 1_000_000_000_000;
    const { journal } = await Journal.open(dir, { now: () => now });
    const exp = now / 1000 + 300;
    for (const id of ["job_acked", "job_unacked"]) {
      await journal.accept(id, "fp", "backup", exp);
      await journal.finish(id, result(id));
    }
    await journal.ack("job_acked");
    now += 300_000; // token still valid (tolerance)
    expect(await journal.prune()).toBe(0);
    now += 3_600_000;
    expect(await journal.prune()).toBe(1);
    expect(journal.get("job_acked")).toBeUndefined();
    expect(journal.get("job_unacked")).toBeDefined();
    expect(await readdir(path.join(dir, "journal"))).toEqual(["job_unacked.json"]);
  });

  it("refuses to start on an unreadable entry rather than forgetting a job id", async () => {
    const dir = await tmp();
    await Journal.open(dir);
    await writeFile(path.join(dir, "journal", "job_x.json"), "{not json");
    await expect(Journal.open(dir)).rejects.toThrow(/unreadable journal entry/);
  });

  it("fingerprints ignore key order, iat, exp and secrets", () => {
    const a = jobFingerprint({
      iss: "i",
      aud: "a",
      sub: "s",
      jti: "j",
      job: { type: "backup", params: { a: 1, b: 2 } },
    });
    const b = jobFingerprint({
      job: { params: { b: 2, a: 1 }, type: "backup" },
      jti: "j",
      sub: "s",
      aud: "a",
      iss: "i",
    });
    const c = jobFingerprint({
      iss: "i",
      aud: "a",
      sub: "s",
      jti: "j",
      job: { type: "backup", params: { a: 1, b: 3 } },
    });
    expect(a).toBe(b);
    expect(a).not.toBe(c);
  });
});
