/**
 * Auto-sync (one read of the sources, tee into several writers), sync and Test Connection executors
 * against a real s3rver on loopback and the real archive engine.
 */
import { createHash } from "node:crypto";
import { mkdir, readFile, rm } from "node:fs/promises";
import path from "node:path";
import { Writable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JobClaims, JobSecrets, RemoteJobDestination } from "../../../shared/protocol/job-claims";
import { createBackup } from "../archive";
import { BINDING, makeTree } from "../archive/test-helpers";
import type { RunnerConfig } from "../config";
import { makeRunnerConfig, makeSigningKey } from "../daemon/test-fixtures";
import { DestinationError, type Destination, type ObjectWriter } from "../destinations";
import { memoryLogger } from "../util/log";
import { startS3Server, type TestS3Server } from "../../../tests/destinations/s3-server";
import { FanoutDestination } from "./fanout-destination";
import { LocalDestination } from "../destinations/local";
import { syncHandler } from "./sync";
import { jobClaims, s3rverDestination, s3rverKeys, syncCopyJob } from "./test-helpers";
import { testDestinationHandler } from "./test-destination";
import type { JobContext } from "./types";
import { JobRejection } from "../daemon/job-verifier";
import { remoteSpec } from "./remote-destination";
import { startFtpServer, type TestFtpServer } from "../../../tests/destinations/ftp-server";

const MiB = 1024 * 1024;
let s3: TestS3Server;
let ftps: TestFtpServer;
let config: RunnerConfig;
let dir: string;
let src: string;
let archive: { fileName: string; size: number; sha256: string };

beforeAll(async () => {
  [s3, ftps] = await Promise.all([startS3Server(["copies"]), startFtpServer({ tls: true })]);
  const made = await makeRunnerConfig(await makeSigningKey());
  config = made.config;
  dir = made.dir;
  src = path.join(dir, "src");
  await mkdir(src, { recursive: true });
  makeTree(src, { bigBytes: 3 * MiB + 5 });
  // The archive the sync tests copy (each test stands alone; none relies on another's output).
  const r = await createBackup({
    sources: [src],
    outDir: config.backupDir,
    name: "synced",
    kind: "full",
    level: 1,
    encryption: { mode: "none" },
    binding: BINDING,
  });
  archive = { fileName: r.fileName, size: r.size, sha256: r.sha256 };
});
afterAll(async () => {
  await Promise.all([s3?.close(), ftps?.close()]);
  if (dir) await rm(dir, { recursive: true, force: true });
});

const remote = (id: string, prefix: string, bucket = "copies"): RemoteJobDestination => ({
  kind: "remote",
  destinationId: id,
  destination: { kind: "s3", config: { bucket, prefix, endpoint: s3.endpoint, pathStyle: true } },
});
const creds = (ids: string[], c: Record<string, unknown> = s3rverKeys()): JobSecrets => ({
  destinations: Object.fromEntries(ids.map((id) => [id, c])),
});
const s3dest = (prefix: string) =>
  s3rverDestination(s3, { bucket: "copies", prefix, partSize: 5 * MiB, queueSize: 2 });

async function sha256Of(dest: Destination, name: string): Promise<{ size: number; sha256: string }> {
  const h = createHash("sha256");
  let size = 0;
  for await (const chunk of await dest.createReadStream(name)) {
    h.update(chunk as Buffer);
    size += (chunk as Buffer).length;
  }
  return { size, sha256: h.digest("hex") };
}

/** A destination whose writer fails after `failAfter` bytes, recording whether it was aborted. */
function breakingDestination(failAfter: number): Destination & { aborted: number } {
  const d = {
    url: "s3://broken/bucket",
    supportsRanges: false,
    aborted: 0,
    async createWriter(): Promise<ObjectWriter> {
      let seen = 0;
      const stream = new Writable({
        write(chunk: Buffer, _e, cb) {
          seen += chunk.length;
          if (seen > failAfter) cb(new DestinationError("NO_SPACE", "s3://broken/bucket", "quota exceeded"));
          else cb();
        },
      });
      return {
        stream,
        commit: async () => ({ name: "x", size: seen }),
        abort: async () => {
          d.aborted++;
        },
      };
    },
    createReadStream: async () => {
      throw new Error("unused");
    },
    stat: async () => null,
    list: async () => [],
    delete: async () => {},
    test: async () => {},
    close: async () => {},
  };
  return d as unknown as Destination & { aborted: number };
}

function ctxFor(claims: JobClaims, secrets: JobSecrets, progress: unknown[] = []): JobContext {
  return {
    jobId: claims.jti,
    claims,
    secrets,
    config,
    signal: new AbortController().signal,
    progress: (p) => progress.push(p),
    log: memoryLogger(),
  };
}

const claimsOf = (job: JobClaims["job"]): JobClaims => jobClaims(config, job);

describe("destination jobs", () => {
  it("auto-sync: one backup run lands byte-identical on local and S3; a failing copy fails alone and is aborted", async () => {
    const broken = breakingDestination(64 * 1024);
    const fan = new FanoutDestination(new LocalDestination(config.backupDir), [
      { destinationId: "dst_s3", dest: s3dest("auto") },
      { destinationId: "dst_broken", dest: broken },
    ]);
    const r = await createBackup({
      sources: [src],
      outDir: config.backupDir,
      name: "site",
      kind: "full",
      level: 3,
      encryption: { mode: "password", password: "correct horse battery staple" },
      binding: BINDING,
      destination: fan,
      scrypt: { N: 1024, r: 8, p: 1 },
    });
    await fan.close();
    const local = await readFile(path.join(config.backupDir, r.fileName));
    expect(createHash("sha256").update(local).digest("hex")).toBe(r.sha256);
    const results = fan.results(r.fileName, r.manifestFileName);
    expect(results[0]).toEqual({
      destinationId: "dst_s3",
      status: "completed",
      objectName: r.fileName,
      size: r.size,
      sha256: r.sha256,
    });
    expect(results[1]).toMatchObject({
      destinationId: "dst_broken",
      status: "failed",
      error: { code: "NO_SPACE" },
    });
    expect(broken.aborted).toBeGreaterThan(0);
    // Live monitor counters: the archive's bytes per copy (the broken one stopped early).
    expect(fan.progress().dst_s3).toBe(r.size);
    expect(fan.progress().dst_broken).toBeLessThan(r.size);
    expect(await sha256Of(s3dest("auto"), r.fileName)).toEqual({ size: r.size, sha256: r.sha256 });
    expect(await s3dest("auto").stat(r.manifestFileName!)).not.toBeNull();
  });

  it("sync copies an existing backup, verifies what the destination stores, and reports progress", async () => {
    const progress: { bytes: number; totalBytes?: number; message?: string }[] = [];
    const claims = claimsOf(syncCopyJob(BINDING.backupId, archive, remote("dst_later", "later")));
    const secrets = creds(["dst_later"]);
    const h = syncHandler();
    await h.validate!(claims, secrets, config);
    const out = await h.run(ctxFor(claims, secrets, progress));
    expect(out.result).toMatchObject({
      destinationId: "dst_later",
      status: "completed",
      objectName: archive.fileName,
      size: archive.size,
      sha256: archive.sha256,
    });
    expect(await sha256Of(s3dest("later"), archive.fileName)).toEqual({
      size: archive.size,
      sha256: archive.sha256,
    });
    expect(progress.at(-1)).toMatchObject({ totalBytes: archive.size, message: archive.fileName });
    expect(progress.some((p) => p.bytes === archive.size)).toBe(true);
  });

  it("sync refuses a source that does not match the backup record, leaving nothing behind", async () => {
    const claims = claimsOf(
      syncCopyJob(BINDING.backupId, { ...archive, sha256: "0".repeat(64) }, remote("dst_bad", "mismatch")),
    );
    await expect(syncHandler().run(ctxFor(claims, creds(["dst_bad"])))).rejects.toMatchObject({
      code: "INTEGRITY_MISMATCH",
    });
    expect(await s3dest("mismatch").stat(archive.fileName)).toBeNull();
  });

  it("test connection: ok with good keys, AUTH_FAILED with wrong keys, rejected without credentials", async () => {
    const ok = claimsOf({ type: "test-destination", params: { target: remote("dst_ok", "probe") } });
    await expect(testDestinationHandler().run(ctxFor(ok, creds(["dst_ok"])))).resolves.toMatchObject({
      result: { destinationId: "dst_ok" },
    });
    const bad = claimsOf({ type: "test-destination", params: { target: remote("dst_wrong", "probe") } });
    // s3rver checks the key id, not SigV4 signatures: the wrong credential is the key id.
    const wrong = creds(["dst_wrong"], { accessKeyId: "NOT-A-KEY", secretAccessKey: "not-the-secret" });
    await expect(testDestinationHandler().run(ctxFor(bad, wrong))).rejects.toMatchObject({
      code: "AUTH_FAILED",
    });
    expect(() => testDestinationHandler().validate!(bad, {}, config)).toThrow(JobRejection);
  });

  it("sync cancelled mid-upload ends CANCELLED-coded and leaves no object under the final name", async () => {
    const ac = new AbortController();
    const claims = claimsOf(syncCopyJob(BINDING.backupId, archive, remote("dst_cancel", "cancelled")));
    const ctx = {
      ...ctxFor(claims, creds(["dst_cancel"])),
      signal: ac.signal,
      // Cancel as the upload starts (what job.cancel does through the daemon). Not at the first
      // bytes: progress counts acknowledged bytes, and this archive (one PUT) is acknowledged whole.
      progress: (p: { phase?: string }) => {
        if (p.phase === "upload") ac.abort(new DOMException("cancelled", "AbortError"));
      },
    };
    await expect(syncHandler().run(ctx)).rejects.toMatchObject({ name: "AbortError" });
    expect(await s3dest("cancelled").stat(archive.fileName)).toBeNull();
    expect(await s3dest("cancelled").list()).toEqual([]);
  });

  it("maps every kind's config + credentials to the runner's spec", () => {
    const sftp = remoteSpec(
      {
        kind: "remote",
        destinationId: "dst_sftp",
        destination: {
          kind: "sftp",
          config: {
            host: "h.example",
            port: 2222,
            user: "u",
            path: "/srv",
            knownHosts: "h.example ssh-ed25519 AAAA",
          },
        },
      },
      { destinations: { dst_sftp: { privateKey: "KEY" } } },
      config,
    );
    expect(sftp).toMatchObject({
      type: "sftp",
      host: "h.example",
      port: 2222,
      privateKey: "KEY",
      knownHostsFile: path.join(config.stateDir, "known-hosts", "dst_sftp"),
      tofuStorePath: path.join(config.stateDir, "ssh-known-hosts.json"),
    });
    const ftp = remoteSpec(
      {
        kind: "remote",
        destinationId: "f",
        destination: { kind: "ftps", config: { host: "h", port: 21, user: "u", path: "/b" } },
      },
      { destinations: { f: { password: "pw" } } },
      config,
    );
    expect(ftp).toMatchObject({ type: "ftp", secure: true, password: "pw", path: "/b" });
    const gcs = remoteSpec(
      {
        kind: "remote",
        destinationId: "g",
        destination: { kind: "gcs", config: { bucket: "bkt", prefix: "", pathStyle: false } },
      },
      { destinations: { g: { accessKeyId: "GOOG1", secretAccessKey: "s" } } },
      config,
    );
    expect(gcs).toMatchObject({ type: "gcs", endpoint: "https://storage.googleapis.com", region: "auto" });
    const drive = remoteSpec(
      { kind: "remote", destinationId: "d", destination: { kind: "gdrive", config: { folderId: "F1" } } },
      { destinations: { d: { clientId: "c", clientSecret: "s", refreshToken: "r" } } },
      config,
    );
    expect(drive).toMatchObject({ type: "gdrive", folderId: "F1", tokens: { refreshToken: "r" } });
    // A credential set of the wrong kind is refused before the job runs, naming fields, never values.
    let err: unknown;
    try {
      remoteSpec(
        { kind: "remote", destinationId: "d", destination: { kind: "gdrive", config: { folderId: "F1" } } },
        { destinations: { d: { password: "super-secret-value" } } },
        config,
      );
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(JobRejection);
    expect((err as Error).message).not.toContain("super-secret-value");
  });

  it("test connection against a real FTPS server (explicit TLS, pinned CA)", async () => {
    await mkdir(path.join(ftps.root, "backups"), { recursive: true });
    const target: RemoteJobDestination = {
      kind: "remote",
      destinationId: "dst_ftps",
      destination: {
        kind: "ftps",
        config: { host: "127.0.0.1", port: ftps.port, user: ftps.user, path: "/backups", ca: ftps.cert },
      },
    };
    const ok = claimsOf({ type: "test-destination", params: { target } });
    await expect(
      testDestinationHandler().run(ctxFor(ok, { destinations: { dst_ftps: { password: ftps.password } } })),
    ).resolves.toMatchObject({ result: { destinationId: "dst_ftps" } });
    const bad = claimsOf({ type: "test-destination", params: { target } });
    await expect(
      testDestinationHandler().run(
        ctxFor(bad, { destinations: { dst_ftps: { password: "wrong-password" } } }),
      ),
    ).rejects.toMatchObject({ code: "AUTH_FAILED" });
  });
});
