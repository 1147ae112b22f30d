/**
 * Pause / resume / retry of a sync job against a real s3rver: parts the server already holds are
 * not sent again (counted at the server), the final object is byte-identical, and an abandoned or
 * cancelled upload leaves no multipart upload behind.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { RunnerConfig } from "../config";
import { makeRunnerConfig, makeSigningKey } from "../daemon/test-fixtures";
import { memoryLogger } from "../util/log";
import { openUploads, startS3Server, type TestS3Server } from "../../../tests/destinations/s3-server";
import { s3SpecSchema } from "../destinations/url";
import { syncHandler } from "./sync";
import {
  expectStoppedByAbort,
  jobClaims,
  remoteTarget,
  s3rverDestination,
  s3rverKeys,
  syncCopyJob,
} from "./test-helpers";
import { JobFailure, type JobContext } from "./types";

const MiB = 1024 * 1024;
// The runner's default for jobs: a resumed job must skip exactly the parts it finished.
const PART = s3SpecSchema.shape.partSize.parse(undefined);
let s3: TestS3Server;
let config: RunnerConfig;
let dir: string;
const archive = {
  fileName: "resume_full_20260101_000000.tar.zst",
  size: 4 * PART + MiB + 123,
  sha256: "",
};

beforeAll(async () => {
  s3 = await startS3Server(["r-pause", "r-fail", "r-restart", "r-cancel", "r-discard"]);
  const made = await makeRunnerConfig(await makeSigningKey());
  config = made.config;
  dir = made.dir;
  // Random bytes: the sync job moves an archive file as is, so its content need not be an archive.
  const data = randomBytes(archive.size);
  archive.sha256 = createHash("sha256").update(data).digest("hex");
  await mkdir(config.backupDir, { recursive: true });
  await writeFile(path.join(config.backupDir, archive.fileName), data);
});
afterAll(async () => {
  await s3?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const remote = (bucket: string) =>
  remoteTarget(
    `dst_${bucket.replace(/-/g, "_")}`,
    { kind: "s3", config: { bucket, prefix: "p", endpoint: s3.endpoint, pathStyle: true } },
    s3rverKeys(),
  );
const destOf = (bucket: string) =>
  s3rverDestination(s3, { bucket, prefix: "p", partSize: PART, queueSize: 4 });

function run(
  bucket: string,
  opts: { restart?: boolean; discard?: boolean; controller?: AbortController } = {},
) {
  const { target, secrets } = remote(bucket);
  const claims = jobClaims(config, syncCopyJob(`bk_${bucket.replace(/-/g, "_")}`, archive, target, opts));
  const ctx: JobContext = {
    jobId: claims.jti,
    claims,
    secrets,
    config,
    signal: (opts.controller ?? new AbortController()).signal,
    progress: () => {},
    log: memoryLogger(),
  };
  return syncHandler().run(ctx);
}

const stateFile = (bucket: string) =>
  path.join(
    config.stateDir,
    "sync-resume",
    `bk_${bucket.replace(/-/g, "_")}.dst_${bucket.replace(/-/g, "_")}.json`,
  );

async function uploadsIn(bucket: string): Promise<string[]> {
  const d = destOf(bucket);
  try {
    return (await openUploads(d.spec)).map((u) => u.uploadId);
  } finally {
    await d.close();
  }
}

async function waitFor(what: string, cond: () => Promise<boolean>): Promise<void> {
  for (let i = 0; i < 600; i++) {
    if (await cond()) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Starts a sync whose parts above 2 are held by the server, waits until parts 1-2 are stored, pauses it. */
async function pauseAfterTwoParts(bucket: string): Promise<void> {
  await s3.setPartFaults({ holdAbove: 2 });
  const controller = new AbortController();
  const job = run(bucket, { controller });
  const key = `p/${archive.fileName}`;
  const d = destOf(bucket);
  try {
    await waitFor("two stored parts", async () => {
      const [id] = await uploadsIn(bucket);
      const parts = id ? await d.listParts(key, id) : null;
      return (parts?.size ?? 0) >= 2 && (await s3.partStats()).held > 0;
    });
  } finally {
    await d.close();
  }
  controller.abort(new JobFailure("PAUSED", "paused by the control plane"));
  await expectStoppedByAbort(job);
  await s3.setPartFaults({});
}

async function storedSha256(bucket: string): Promise<{ size: number; sha256: string }> {
  const d = destOf(bucket);
  const h = createHash("sha256");
  let size = 0;
  try {
    for await (const chunk of await d.createReadStream(archive.fileName)) {
      h.update(chunk as Buffer);
      size += (chunk as Buffer).length;
    }
  } finally {
    await d.close();
  }
  return { size, sha256: h.digest("hex") };
}

describe("sync pause / resume / retry (s3rver)", () => {
  it("pause keeps the multipart upload and a 0600 state file; resume sends only the missing parts", async () => {
    await pauseAfterTwoParts("r-pause");
    expect(await uploadsIn("r-pause")).toHaveLength(1);
    const st = await stat(stateFile("r-pause"));
    expect(st.mode & 0o777).toBe(0o600);
    const saved = await readFile(stateFile("r-pause"), "utf8");
    expect(saved).not.toContain("S3RVER");
    const token = (JSON.parse(saved) as { token: { uploadId: string; parts: { n: number; size: number }[] } })
      .token;
    expect(token.uploadId).toBe((await uploadsIn("r-pause"))[0]);
    expect(token.parts.map((p) => [p.n, p.size])).toEqual([
      [1, PART],
      [2, PART],
    ]);

    const before = await s3.partStats();
    const out = await run("r-pause");
    const after = await s3.partStats();
    expect(out.result).toMatchObject({ status: "completed", sha256: archive.sha256, resumedBytes: 2 * PART });
    // Only parts 3..5 crossed the wire again.
    expect(after.partBytes - before.partBytes).toBe(archive.size - 2 * PART);
    expect(after.partRequests - before.partRequests).toBe(3);
    expect(await storedSha256("r-pause")).toEqual({ size: archive.size, sha256: archive.sha256 });
    expect(await uploadsIn("r-pause")).toEqual([]);
    await expect(stat(stateFile("r-pause"))).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("a server failure mid-upload fails the job; the retry resumes from the parts the server holds", async () => {
    await s3.setPartFaults({ failAbove: 2 });
    try {
      await expect(run("r-fail")).rejects.toMatchObject({ code: "CONNECTION_FAILED" });
    } finally {
      await s3.setPartFaults({});
    }
    // Kept for the retry, not orphaned: the state file names it.
    const [id] = await uploadsIn("r-fail");
    expect(JSON.parse(await readFile(stateFile("r-fail"), "utf8"))).toMatchObject({
      token: { uploadId: id },
    });

    const before = await s3.partStats();
    const out = await run("r-fail");
    const after = await s3.partStats();
    expect(out.result).toMatchObject({ status: "completed", resumedBytes: 2 * PART });
    expect(after.partBytes - before.partBytes).toBe(archive.size - 2 * PART);
    expect(await storedSha256("r-fail")).toEqual({ size: archive.size, sha256: archive.sha256 });
    expect(await uploadsIn("r-fail")).toEqual([]);
  });

  it("retry from zero aborts the paused upload: everything is sent again, no multipart is left", async () => {
    await pauseAfterTwoParts("r-restart");
    const [old] = await uploadsIn("r-restart");
    expect(old).toBeDefined();
    const before = await s3.partStats();
    const out = await run("r-restart", { restart: true });
    const after = await s3.partStats();
    expect(out.result).toMatchObject({ status: "completed", resumedBytes: 0 });
    expect(after.partBytes - before.partBytes).toBe(archive.size);
    expect(await uploadsIn("r-restart")).toEqual([]);
    expect(await storedSha256("r-restart")).toEqual({ size: archive.size, sha256: archive.sha256 });
  });

  it("cancel (not pause) of a resumed sync aborts the upload and drops the saved state", async () => {
    await pauseAfterTwoParts("r-cancel");
    expect(await uploadsIn("r-cancel")).toHaveLength(1);
    await s3.setPartFaults({ holdAbove: 3 });
    const controller = new AbortController();
    const job = run("r-cancel", { controller });
    try {
      await waitFor("a held part", async () => (await s3.partStats()).held > 0);
      controller.abort(new JobFailure("CANCELLED", "cancelled by the control plane"));
      await expectStoppedByAbort(job);
    } finally {
      await s3.setPartFaults({});
    }
    expect(await uploadsIn("r-cancel")).toEqual([]);
    await expect(stat(stateFile("r-cancel"))).rejects.toMatchObject({ code: "ENOENT" });
    const d = destOf("r-cancel");
    try {
      expect(await d.stat(archive.fileName)).toBeNull();
    } finally {
      await d.close();
    }
  });

  it("discard (copy deleted) aborts the paused upload and copies nothing", async () => {
    await pauseAfterTwoParts("r-discard");
    expect(await uploadsIn("r-discard")).toHaveLength(1);
    const before = await s3.partStats();
    const out = await run("r-discard", { discard: true });
    expect(out.result).toEqual({ destinationId: "dst_r_discard", discarded: true });
    expect((await s3.partStats()).partBytes).toBe(before.partBytes);
    expect(await uploadsIn("r-discard")).toEqual([]);
    await expect(stat(stateFile("r-discard"))).rejects.toMatchObject({ code: "ENOENT" });
    const d = destOf("r-discard");
    try {
      expect(await d.stat(archive.fileName)).toBeNull();
    } finally {
      await d.close();
    }
  });
});
