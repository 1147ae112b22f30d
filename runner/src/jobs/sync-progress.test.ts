/**
 * The sync monitor counts bytes the destination acknowledged, not bytes read from the archive: with a
 * real s3rver holding every UploadPart after the second, the whole archive has been read and sent,
 * yet percent, bytes and the auto-sync copy counter stay at the two answered parts until the server
 * answers; 100% only after commit.
 */
import { randomBytes, createHash } from "node:crypto";
import { mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import type { JobProgress } from "../../../shared/protocol/runner-messages";
import type { RunnerConfig } from "../config";
import { ProgressReporter, type ProgressUpdate } from "../daemon/progress";
import { makeRunnerConfig, makeSigningKey } from "../daemon/test-fixtures";
import { LocalDestination } from "../destinations/local";
import { memoryLogger } from "../util/log";
import {
  openUploads,
  partSizes,
  startS3Server,
  type TestS3Server,
} from "../../../tests/destinations/s3-server";
import { FanoutDestination } from "./fanout-destination";
import { syncHandler } from "./sync";
import { jobClaims, remoteTarget, s3rverDestination, s3rverKeys, syncCopyJob } from "./test-helpers";

const MiB = 1024 * 1024;
let s3: TestS3Server;
let config: RunnerConfig;
let dir: string;

beforeAll(async () => {
  s3 = await startS3Server(["held", "fan", "resume"]);
  const made = await makeRunnerConfig(await makeSigningKey());
  config = made.config;
  dir = made.dir;
});
// A failed assertion must not leave parts held for the next test.
afterEach(() => s3?.setPartFaults({}));
afterAll(async () => {
  await s3?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const s3dest = (bucket: string, prefix = "") =>
  s3rverDestination(s3, { bucket, prefix, partSize: 5 * MiB, queueSize: 4 });

/** Polls `check` until it holds (the server's state moves on its own); fails with `what` if it never does. */
async function until(what: string, check: () => Promise<boolean> | boolean): Promise<void> {
  for (let i = 0; i < 1500; i++) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`never happened: ${what}`);
}

/** The sizes of the parts the server stored for the one upload in progress in `bucket` (test buckets hold one). */
async function partsOf(bucket: string, key: string): Promise<number[]> {
  const d = s3dest(bucket);
  try {
    const [up] = await openUploads(d.spec);
    return up ? await partSizes(d.spec, key, up.uploadId) : [];
  } finally {
    await d.close();
  }
}

/** An archive of `size` random bytes in the backup directory (sync copies any bytes its record names). */
async function archiveOf(
  fileName: string,
  size: number,
): Promise<{ fileName: string; size: number; sha256: string }> {
  const body = randomBytes(size);
  await mkdir(config.backupDir, { recursive: true });
  await writeFile(path.join(config.backupDir, fileName), body);
  return { fileName, size, sha256: createHash("sha256").update(body).digest("hex") };
}

/**
 * A sync job of `archive` to `bucket`/sync/, its engine-level progress in `updates` and, through the
 * daemon's own reporter (unthrottled), the messages the control plane would receive in `sent`.
 */
function syncJob(
  bucket: string,
  archive: { fileName: string; size: number; sha256: string },
  signal = new AbortController().signal,
) {
  const { target, secrets } = remoteTarget(
    `dst_${bucket}`,
    { kind: "s3", config: { bucket, prefix: "sync/", endpoint: s3.endpoint, pathStyle: true } },
    s3rverKeys(),
  );
  const claims = jobClaims(config, syncCopyJob(`bk_${bucket}`, archive, target));
  const jobId = claims.jti;
  const updates: ProgressUpdate[] = [];
  const sent: JobProgress[] = [];
  const reporter = new ProgressReporter(jobId, (m) => sent.push(m), { minIntervalMs: 0 });
  const job = syncHandler().run({
    jobId,
    claims,
    secrets,
    config,
    signal,
    progress: (p) => {
      updates.push(p);
      reporter.update(p);
    },
    log: memoryLogger(),
  });
  job.catch(() => {});
  return { job, updates, sent, reporter };
}

describe("sync progress counts acknowledged bytes", () => {
  it("S3 holding parts after the second: monitor stays at the answered parts, below 100% until commit", async () => {
    // Whatever the default part size (5 or 8 MiB), every part after the second fits the queue of 4.
    const size = 25 * MiB + 12_345;
    const { fileName, sha256 } = await archiveOf("held_full_20260101_000000.tar.zst", size);
    await s3.setPartFaults({ holdAbove: 2 });
    const { job: run, updates, sent, reporter } = syncJob("held", { fileName, size, sha256 });

    // The server answered two parts and holds all the others: every byte was read and sent.
    let acked = 0;
    await until("two parts stored and the rest held", async () => {
      const parts = await partsOf("held", `sync/${fileName}`);
      if (parts.length !== 2) return false;
      acked = parts[0]! + parts[1]!;
      return (await s3.partStats()).held === Math.ceil(size / parts[0]!) - 2;
    });
    await until("the two answers reached the runner", () => updates.at(-1)?.bytes === acked);
    const partSize = acked / 2;
    expect(size - acked).toBeGreaterThan(partSize); // a count of bytes read would be far ahead
    for (const u of updates) expect(u.bytes).toBeLessThanOrEqual(acked);
    for (const m of sent) {
      expect(m.bytes).toBeLessThanOrEqual(acked);
      expect(m.percent ?? 0).toBeLessThan(100);
      expect(m.percent ?? 0).toBeLessThanOrEqual((acked / size) * 100);
    }
    expect(sent.at(-1)?.percent).toBeCloseTo((acked / size) * 100, 0);

    // Answer the held parts (503, which the SDK retries): the copy completes and reaches 100%.
    await s3.setPartFaults({});
    const out = await run;
    expect(out.result).toMatchObject({ status: "completed", size, sha256 });
    const committed = updates.findIndex((u) => u.phase === "verify");
    expect(committed).toBeGreaterThan(0);
    for (const u of updates.slice(0, committed)) expect(u.percent ?? 0).toBeLessThan(100);
    expect(updates[committed]).toMatchObject({ percent: 100, bytes: size });
    expect(sent.at(-1)).toMatchObject({ percent: 100, bytes: size, phase: "done" });
    reporter.stop();
  });

  it("a resumed sync: held parts count for percent at once, not for the rate", async () => {
    const size = 25 * MiB + 12_345;
    const archive = await archiveOf("resumed_full_20260101_000000.tar.zst", size);
    await s3.setPartFaults({ holdAbove: 2 });
    const pause = new AbortController();
    const first = syncJob("resume", archive, pause.signal);
    let held = 0;
    await until("two parts stored", async () => {
      const parts = await partsOf("resume", `sync/${archive.fileName}`);
      held = parts.length === 2 ? parts[0]! + parts[1]! : 0;
      return held > 0 && first.updates.at(-1)?.bytes === held;
    });
    pause.abort(Object.assign(new Error("paused by the control plane"), { code: "PAUSED" }));
    await first.job.catch(() => {});
    first.reporter.stop();
    await s3.setPartFaults({});

    const again = syncJob("resume", archive);
    const out = await again.job;
    again.reporter.stop();
    expect(out.result).toMatchObject({ status: "completed", resumedBytes: held });
    const uploading = again.updates.filter((u) => u.phase === "upload" && u.bytes > 0);
    expect(uploading[0]!.bytes).toBeGreaterThanOrEqual(held / 2);
    // Every acknowledged byte beyond the held ones was sent by this job; the held ones never were.
    for (const u of uploading) expect(u.rateBytes).toBe(Math.max(0, u.bytes - held));
    for (const m of again.sent.filter((x) => x.phase === "upload" && x.bytes <= held)) expect(m.rate).toBe(0);
    expect(uploading.at(-1)).toMatchObject({ bytes: size, rateBytes: size - held });
  });

  it("local: onAcked counts writes the file system completed, never ahead of what was written", async () => {
    const dest = new LocalDestination(path.join(dir, "local-acked"));
    const size = 3 * MiB + 5;
    let written = 0;
    let acked = 0;
    let ahead = 0;
    const w = await dest.createWriter("a.bin", {
      onAcked: (n) => {
        acked += n;
        if (acked > written) ahead = Math.max(ahead, acked - written);
      },
    });
    const pieces = function* () {
      for (let off = 0; off < size; off += 256 * 1024) {
        const piece = randomBytes(Math.min(256 * 1024, size - off));
        written += piece.length;
        yield piece;
      }
    };
    await pipeline(Readable.from(pieces(), { objectMode: false }), w.stream);
    expect((await w.commit()).size).toBe(size);
    expect(ahead).toBe(0);
    expect(acked).toBe(size);
  });

  it("auto-sync: a copy's counter is what S3 answered, not what the backup wrote into it", async () => {
    const local = path.join(dir, "fan-local");
    // What the live monitor would send on each acknowledgement (copies.ts re-reports on this callback).
    const reported: number[] = [];
    const fan: FanoutDestination = new FanoutDestination(
      new LocalDestination(local),
      [{ destinationId: "dst_s3", dest: s3dest("fan") }],
      () => reported.push(fan.progress().dst_s3!),
    );
    const size = 4 * 5 * MiB + 777;
    await s3.setPartFaults({ holdAbove: 2 });
    try {
      const w = await fan.createWriter("site_full_20260101_000000.tar.zst");
      const wrote = new Promise<void>((resolve, reject) =>
        w.stream.end(randomBytes(size), (err?: Error | null) => (err ? reject(err) : resolve())),
      );
      wrote.catch(() => {});
      await until(
        "parts 1 and 2 stored, 3 and 4 held",
        async () =>
          (await partsOf("fan", "site_full_20260101_000000.tar.zst")).length === 2 &&
          (await s3.partStats()).held === 2,
      );
      await until("parts 1 and 2 answered", () => fan.progress().dst_s3 === 2 * 5 * MiB);
      // 4 parts and more were written into the copy; only the 2 answered ones count.
      expect(fan.progress().dst_s3).toBe(2 * 5 * MiB);
      await s3.setPartFaults({});
      await wrote;
      const beforeCommit = reported.length;
      await w.commit();
      expect(fan.progress().dst_s3).toBe(size);
      // The tail part answers during commit, after the backup stopped writing: still reported.
      expect(reported.length).toBeGreaterThan(beforeCommit);
      expect(reported.at(-1)).toBe(size);
      expect(reported).toEqual([...reported].sort((x, y) => x - y));
      expect(fan.results("site_full_20260101_000000.tar.zst")[0]).toMatchObject({
        status: "completed",
        size,
      });
    } finally {
      await s3.setPartFaults({});
      await fan.close();
    }
  });
});
