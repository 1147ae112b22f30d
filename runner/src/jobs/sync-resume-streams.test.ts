/**
 * Sync resume across jobs on the streaming destinations, each against its real server (OpenSSH sshd
 * behind a counting TCP proxy, ftp-srv, the local Drive v3 server): an interrupted sync (pause, or a
 * connection cut that fails the job) is continued by the next job, which sends only the bytes the
 * server does not hold (counted at the server or on the wire); the stored object is byte-identical;
 * a held partial whose bytes were changed is detected and the upload starts again from zero.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdir, open, readdir, readFile, rm, stat, writeFile } from "node:fs/promises";
import net from "node:net";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JobSecrets, RemoteJobDestination } from "../../../shared/protocol/job-claims";
import type { RunnerConfig } from "../config";
import { makeRunnerConfig, makeSigningKey } from "../daemon/test-fixtures";
import { GdriveDestination } from "../destinations/gdrive";
import type { GdriveSpec } from "../destinations/url";
import { memoryLogger } from "../util/log";
import { startFakeDrive, type FakeDrive } from "../../../tests/destinations/fake-gdrive-server";
import { fakeDriveConfig } from "../../../tests/support/drive-destination";
import { startFtpServer, type TestFtpServer } from "../../../tests/destinations/ftp-server";
import { sshdUnavailable, startSshd, type TestSshd } from "../../../tests/destinations/sshd";
import { startTcpFaultProxy, type TcpFaultProxy } from "../../../tests/destinations/tcp-fault-proxy";
import { remoteSpec } from "./remote-destination";
import { syncHandler } from "./sync";
import { expectStoppedByAbort, jobClaims, remoteTarget, syncCopyJob } from "./test-helpers";
import { JobFailure, type JobContext } from "./types";

const MiB = 1024 * 1024;
const sshUnavailable = sshdUnavailable();
if (sshUnavailable) console.warn(`sftp sync-resume tests skipped: ${sshUnavailable}`);

let config: RunnerConfig;
let dir: string;
/** Random bytes: a sync moves the archive file as is, so its content need not be an archive. */
const archive = { fileName: "stream_full_20260101_000000.tar.zst", size: 16 * MiB + 123, sha256: "" };
let data: Buffer;

beforeAll(async () => {
  const made = await makeRunnerConfig(await makeSigningKey());
  config = made.config;
  dir = made.dir;
  data = randomBytes(archive.size);
  archive.sha256 = createHash("sha256").update(data).digest("hex");
  await mkdir(config.backupDir, { recursive: true });
  await writeFile(path.join(config.backupDir, archive.fileName), data);
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

interface RunOpts {
  /** Pause the job (job.cancel mode pause) once this many source bytes went through. */
  pauseAt?: number;
  /** Cancel the job (a real cancel) once this many source bytes went through. */
  cancelAt?: number;
  restart?: boolean;
  discard?: boolean;
}

function run(key: string, target: RemoteJobDestination, secrets: JobSecrets, opts: RunOpts = {}) {
  const controller = new AbortController();
  const claims = jobClaims(config, syncCopyJob(`bk_${key}`, archive, target, opts));
  const log = memoryLogger();
  const ctx: JobContext = {
    jobId: claims.jti,
    claims,
    secrets,
    config,
    signal: controller.signal,
    progress: (p) => {
      if (opts.pauseAt !== undefined && p.bytes >= opts.pauseAt && !controller.signal.aborted)
        controller.abort(new JobFailure("PAUSED", "paused by the control plane"));
      if (opts.cancelAt !== undefined && p.bytes >= opts.cancelAt && !controller.signal.aborted)
        controller.abort(new JobFailure("CANCELLED", "cancelled by the control plane"));
    },
    log,
  };
  return { job: syncHandler().run(ctx), log };
}

const stateFile = (key: string, destinationId: string) =>
  path.join(config.stateDir, "sync-resume", `bk_${key}.${destinationId}.json`);

async function savedToken(key: string, destinationId: string): Promise<Record<string, unknown>> {
  const file = stateFile(key, destinationId);
  expect((await stat(file)).mode & 0o777).toBe(0o600);
  return (JSON.parse(await readFile(file, "utf8")) as { token: Record<string, unknown> }).token;
}

async function sha256File(file: string): Promise<{ size: number; sha256: string }> {
  const buf = await readFile(file);
  return { size: buf.length, sha256: createHash("sha256").update(buf).digest("hex") };
}

/** The archive stands complete and byte-identical under its own name in `folder`. */
async function expectStoredArchive(folder: string): Promise<void> {
  expect(await sha256File(path.join(folder, archive.fileName))).toEqual({
    size: archive.size,
    sha256: archive.sha256,
  });
}

/** The job's resume state is gone (completed, discarded or cancelled). */
async function expectNoSavedState(key: string, destinationId: string): Promise<void> {
  await expect(stat(stateFile(key, destinationId))).rejects.toMatchObject({ code: "ENOENT" });
}

/** Flip one byte of a file in place (a held partial changed behind our back). */
async function flipByte(file: string, at = 1000): Promise<void> {
  const fh = await open(file, "r+");
  try {
    const b = Buffer.alloc(1);
    await fh.read(b, 0, 1, at);
    b[0] = (b[0] as number) ^ 0xff;
    await fh.write(b, 0, 1, at);
  } finally {
    await fh.close();
  }
}

/** A loopback relay that counts client→server bytes: what an SFTP upload put on the wire. */
async function startCountingRelay(
  targetPort: number,
): Promise<{ port: number; bytesUp: () => number; close(): Promise<void> }> {
  let up = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(targetPort, "127.0.0.1");
    sockets.add(client).add(upstream);
    client.on("data", (c: Buffer) => (up += c.length));
    client.pipe(upstream).pipe(client);
    const kill = () => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", kill).on("close", kill);
    upstream.on("error", kill).on("close", kill);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    bytesUp: () => up,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

async function tempFiles(folder: string): Promise<string[]> {
  return (await readdir(folder)).filter((f) => f.includes(".part-"));
}

describe.skipIf(sshUnavailable !== undefined)("sync resume: sftp (OpenSSH)", () => {
  let sshd: TestSshd;
  /** runner → counting relay → fault proxy (cuts connections) → sshd */
  let proxy: TcpFaultProxy;
  let relay: Awaited<ReturnType<typeof startCountingRelay>>;
  let privateKey: string;

  beforeAll(async () => {
    sshd = await startSshd();
    proxy = await startTcpFaultProxy(sshd.port);
    relay = await startCountingRelay(proxy.port);
    privateKey = await readFile(sshd.userKey, "utf8");
  });
  afterAll(async () => {
    await relay?.close();
    await proxy?.close();
    await sshd?.close();
  });

  async function place(key: string) {
    const folder = path.join(sshd.dir, key);
    await mkdir(folder);
    const r = remoteTarget(
      `dst_${key}`,
      { kind: "sftp", config: { host: "127.0.0.1", port: relay.port, user: sshd.user, path: folder } },
      { privateKey },
    );
    return { folder, ...r };
  }

  it("a paused sync resumes: the temp file's verified prefix is not sent again, the object is identical", async () => {
    const p = await place("sftp_pause");
    const first = run("sftp_pause", p.target, p.secrets, { pauseAt: 10 * MiB });
    await expectStoppedByAbort(first.job);
    const token = await savedToken("sftp_pause", p.destinationId);
    expect(token).toMatchObject({ kind: "sftp-temp", name: archive.fileName });
    const held = token.offset as number;
    expect(held).toBeGreaterThan(0);
    expect(held).toBeLessThan(archive.size);
    // The recorded sha256 is of our own first `held` bytes.
    expect(token.sha256).toBe(createHash("sha256").update(data.subarray(0, held)).digest("hex"));
    expect(await tempFiles(p.folder)).toHaveLength(1);

    const before = relay.bytesUp();
    const out = await run("sftp_pause", p.target, p.secrets).job;
    const up = relay.bytesUp() - before;
    expect(out.result).toMatchObject({ status: "completed", sha256: archive.sha256, resumedBytes: held });
    // On the wire: the rest, plus SSH/SFTP framing (well under 2%) and the handshake.
    expect(up).toBeGreaterThanOrEqual(archive.size - held);
    expect(up).toBeLessThan((archive.size - held) * 1.02 + 256 * 1024);
    expect(up).toBeLessThan(archive.size);
    await expectStoredArchive(p.folder);
    expect(await tempFiles(p.folder)).toEqual([]);
    await expectNoSavedState("sftp_pause", p.destinationId);
  });

  it("a sync failed by a dead connection keeps the temp file; the retry sends only the rest", async () => {
    const p = await place("sftp_cut");
    proxy.cutAfterBytes = 6 * MiB;
    // After the first cut every reconnect dies too, so the job's own retries give up.
    const flip = setInterval(() => {
      if (proxy.cuts > 0) proxy.cutAfterBytes = 0;
    }, 5);
    try {
      const err = (await run("sftp_cut", p.target, p.secrets).job.catch((e: unknown) => e)) as Error & {
        code?: string;
      };
      expect(err.code, err.message).toBe("CONNECTION_FAILED");
    } finally {
      clearInterval(flip);
      proxy.cutAfterBytes = undefined;
    }
    const token = await savedToken("sftp_cut", p.destinationId);
    expect(token).toMatchObject({ kind: "sftp-temp" });
    const held = token.offset as number;
    expect(held).toBeGreaterThan(0);

    const before = relay.bytesUp();
    const out = await run("sftp_cut", p.target, p.secrets).job;
    const up = relay.bytesUp() - before;
    expect(out.result).toMatchObject({ status: "completed", sha256: archive.sha256, resumedBytes: held });
    expect(up).toBeGreaterThanOrEqual(archive.size - held);
    expect(up).toBeLessThan(archive.size);
    await expectStoredArchive(p.folder);
    expect(await tempFiles(p.folder)).toEqual([]);
  });

  it("a changed byte in the held temp file is detected: the upload restarts from zero, never corrupt", async () => {
    const p = await place("sftp_tamper");
    await expectStoppedByAbort(run("sftp_tamper", p.target, p.secrets, { pauseAt: 10 * MiB }).job);
    const [temp] = await tempFiles(p.folder);
    expect(temp).toBeDefined();
    await flipByte(path.join(p.folder, temp as string));

    const before = relay.bytesUp();
    const out = await run("sftp_tamper", p.target, p.secrets).job;
    const up = relay.bytesUp() - before;
    expect(out.result).toMatchObject({ status: "completed", sha256: archive.sha256, resumedBytes: 0 });
    expect(up).toBeGreaterThanOrEqual(archive.size);
    await expectStoredArchive(p.folder);
    // The tampered temp is removed, not left beside the object.
    expect(await tempFiles(p.folder)).toEqual([]);
  });

  it("cancel (not pause) of a resumed sync removes the temp file and the saved state", async () => {
    const p = await place("sftp_cancel");
    await expectStoppedByAbort(run("sftp_cancel", p.target, p.secrets, { pauseAt: 6 * MiB }).job);
    expect(await tempFiles(p.folder)).toHaveLength(1);
    await expectStoppedByAbort(run("sftp_cancel", p.target, p.secrets, { cancelAt: 12 * MiB }).job);
    expect(await tempFiles(p.folder)).toEqual([]);
    expect(await readdir(p.folder)).toEqual([]);
    await expectNoSavedState("sftp_cancel", p.destinationId);
  });
});

describe("sync resume: ftp (ftp-srv)", () => {
  let ftp: TestFtpServer;

  beforeAll(async () => {
    ftp = await startFtpServer({ tls: false });
  });
  afterAll(async () => {
    await ftp?.close();
  });

  async function place(key: string) {
    const folder = path.join(ftp.root, key);
    await mkdir(folder);
    const r = remoteTarget(
      `dst_${key}`,
      { kind: "ftp", config: { host: "127.0.0.1", port: ftp.port, user: ftp.user, path: `/${key}` } },
      { password: ftp.password },
    );
    return { folder, ...r };
  }

  /** A connection reset mid-upload (server side) fails the job with CONNECTION_FAILED, keeping the temp. */
  async function failByReset(key: string, p: Awaited<ReturnType<typeof place>>): Promise<number> {
    ftp.faults.mode = "reset";
    ftp.faults.resetAfterBytes = 6 * MiB;
    try {
      await expect(run(key, p.target, p.secrets).job).rejects.toMatchObject({ code: "CONNECTION_FAILED" });
    } finally {
      ftp.faults.mode = undefined;
    }
    const token = await savedToken(key, p.destinationId);
    expect(token).toMatchObject({ kind: "ftp-temp", name: archive.fileName });
    const held = token.offset as number;
    expect(held).toBeGreaterThan(0);
    expect(held).toBeLessThan(archive.size);
    const [temp] = await tempFiles(p.folder);
    expect((await stat(path.join(p.folder, temp as string))).size).toBe(held);
    expect(token.sha256).toBe(createHash("sha256").update(data.subarray(0, held)).digest("hex"));
    return held;
  }

  it("a sync failed by a connection reset resumes with APPE: only the rest is stored, the object is identical", async () => {
    const p = await place("ftp_reset");
    const held = await failByReset("ftp_reset", p);
    const before = ftp.stats.bytesStored;
    const out = await run("ftp_reset", p.target, p.secrets).job;
    expect(out.result).toMatchObject({ status: "completed", sha256: archive.sha256, resumedBytes: held });
    expect(ftp.stats.bytesStored - before).toBe(archive.size - held);
    await expectStoredArchive(p.folder);
    expect(await tempFiles(p.folder)).toEqual([]);
    await expectNoSavedState("ftp_reset", p.destinationId);
  });

  it("a paused sync resumes from the size the server settled on", async () => {
    const p = await place("ftp_pause");
    await expectStoppedByAbort(run("ftp_pause", p.target, p.secrets, { pauseAt: 10 * MiB }).job);
    const token = await savedToken("ftp_pause", p.destinationId);
    const held = token.offset as number;
    expect(held).toBeGreaterThan(0);
    const before = ftp.stats.bytesStored;
    const out = await run("ftp_pause", p.target, p.secrets).job;
    expect(out.result).toMatchObject({ status: "completed", sha256: archive.sha256, resumedBytes: held });
    expect(ftp.stats.bytesStored - before).toBe(archive.size - held);
    await expectStoredArchive(p.folder);
  });

  it("discard (copy deleted) removes the kept temp file and copies nothing", async () => {
    const p = await place("ftp_discard");
    await failByReset("ftp_discard", p);
    const before = ftp.stats.bytesStored;
    const out = await run("ftp_discard", p.target, p.secrets, { discard: true }).job;
    expect(out.result).toEqual({ destinationId: p.destinationId, discarded: true });
    expect(ftp.stats.bytesStored).toBe(before);
    expect(await readdir(p.folder)).toEqual([]);
    await expectNoSavedState("ftp_discard", p.destinationId);
  });

  it("retry from zero removes the kept temp file and sends everything", async () => {
    const p = await place("ftp_restart");
    await failByReset("ftp_restart", p);
    const before = ftp.stats.bytesStored;
    const out = await run("ftp_restart", p.target, p.secrets, { restart: true }).job;
    expect(out.result).toMatchObject({ status: "completed", sha256: archive.sha256, resumedBytes: 0 });
    expect(ftp.stats.bytesStored - before).toBe(archive.size);
    expect(await readdir(p.folder)).toEqual([archive.fileName]);
  });

  it("a changed byte in the held temp file is detected: the upload restarts from zero, never corrupt", async () => {
    const p = await place("ftp_tamper");
    await failByReset("ftp_tamper", p);
    const [temp] = await tempFiles(p.folder);
    await flipByte(path.join(p.folder, temp as string));
    const before = ftp.stats.bytesStored;
    const out = await run("ftp_tamper", p.target, p.secrets).job;
    expect(out.result).toMatchObject({ status: "completed", sha256: archive.sha256, resumedBytes: 0 });
    expect(ftp.stats.bytesStored - before).toBe(archive.size);
    await expectStoredArchive(p.folder);
    expect(await tempFiles(p.folder)).toEqual([]);
  });
});

describe("sync resume: google drive (local Drive v3 server)", () => {
  let drive: FakeDrive;

  beforeAll(async () => {
    drive = await startFakeDrive();
  });
  afterAll(async () => {
    await drive?.close();
  });

  function place(key: string) {
    return remoteTarget(
      `dst_${key}`,
      { kind: "gdrive", config: fakeDriveConfig(drive) },
      { clientId: drive.clientId, clientSecret: drive.clientSecret, refreshToken: drive.refreshToken },
    );
  }

  /** The stored object's bytes; Drive allows same-named files side by side, so there must be one. */
  async function storedBytes(p: ReturnType<typeof place>): Promise<Buffer> {
    const dest = new GdriveDestination(remoteSpec(p.target, p.secrets, config) as GdriveSpec);
    const chunks: Buffer[] = [];
    for await (const c of await dest.createReadStream(archive.fileName)) chunks.push(c as Buffer);
    expect((await dest.list()).filter((f) => f.name === archive.fileName)).toHaveLength(1);
    return Buffer.concat(chunks);
  }

  it("a paused sync resumes the upload session: held chunks are not sent again, the object is identical", async () => {
    const p = place("drive_pause");
    await expectStoppedByAbort(run("drive_pause", p.target, p.secrets, { pauseAt: 10 * MiB }).job);
    const raw = await readFile(stateFile("drive_pause", p.destinationId), "utf8");
    // The session URI is kept (0600); the account's secrets are not.
    expect(raw).not.toContain(drive.clientSecret);
    expect(raw).not.toContain(drive.refreshToken);
    const token = await savedToken("drive_pause", p.destinationId);
    expect(token).toMatchObject({ kind: "gdrive-session", name: archive.fileName });
    expect(String(token.session)).toContain(drive.uploadBase);
    const held = token.offset as number;
    expect(held).toBeGreaterThan(0);
    expect(drive.stats.sessionsOpen()).toBe(1);

    const before = drive.stats.chunkBytes;
    const queries = drive.stats.statusQueries;
    const out = await run("drive_pause", p.target, p.secrets).job;
    expect(out.result).toMatchObject({ status: "completed", sha256: archive.sha256, resumedBytes: held });
    expect(drive.stats.chunkBytes - before).toBe(archive.size - held);
    expect(drive.stats.statusQueries).toBeGreaterThan(queries);
    expect((await storedBytes(p)).equals(data)).toBe(true);
    expect(drive.stats.sessionsOpen()).toBe(0);
  });

  it("an expired session (404) is not resumed: a new session uploads everything", async () => {
    const p = place("drive_gone");
    await expectStoppedByAbort(run("drive_gone", p.target, p.secrets, { pauseAt: 10 * MiB }).job);
    const token = await savedToken("drive_gone", p.destinationId);
    // What Drive does to a session after a week: it is gone.
    await (await fetch(String(token.session), { method: "DELETE" })).body?.cancel();
    expect(drive.stats.sessionsOpen()).toBe(0);
    const before = drive.stats.chunkBytes;
    const out = await run("drive_gone", p.target, p.secrets).job;
    expect(out.result).toMatchObject({ status: "completed", sha256: archive.sha256, resumedBytes: 0 });
    expect(drive.stats.chunkBytes - before).toBe(archive.size);
    expect((await storedBytes(p)).equals(data)).toBe(true);
  });

  it("a held session the server refuses (403) is dropped, not retried forever: uploaded from zero in the same job", async () => {
    const p = place("drive_refused");
    await expectStoppedByAbort(run("drive_refused", p.target, p.secrets, { pauseAt: 10 * MiB }).job);
    await savedToken("drive_refused", p.destinationId);
    drive.faults.refuseSessionStatus = true;
    try {
      const before = drive.stats.chunkBytes;
      const { job, log } = run("drive_refused", p.target, p.secrets);
      const out = await job;
      expect(out.result).toMatchObject({ status: "completed", sha256: archive.sha256, resumedBytes: 0 });
      expect(drive.stats.chunkBytes - before).toBe(archive.size);
      expect(log.lines.join("\n")).toContain("sync resume refused");
      expect((await storedBytes(p)).equals(data)).toBe(true);
      // the refused session was cancelled, not left open on the server
      expect(drive.stats.sessionsOpen()).toBe(0);
    } finally {
      drive.faults.refuseSessionStatus = false;
    }
  });

  it("changed bytes in the held session are caught by the MD5 at commit: uploaded again from zero, never corrupt", async () => {
    const p = place("drive_tamper");
    await expectStoppedByAbort(run("drive_tamper", p.target, p.secrets, { pauseAt: 10 * MiB }).job);
    const held = (await savedToken("drive_tamper", p.destinationId)).offset as number;
    expect(held).toBeGreaterThan(1000);
    expect(drive.tamperSessions(1000)).toBe(1);

    const before = drive.stats.chunkBytes;
    const { job, log } = run("drive_tamper", p.target, p.secrets);
    const out = await job;
    expect(out.result).toMatchObject({ status: "completed", sha256: archive.sha256, resumedBytes: 0 });
    // The rest of the tampered session, then the whole object in a new session.
    expect(drive.stats.chunkBytes - before).toBe(archive.size - held + archive.size);
    expect(log.lines.join("\n")).toContain("sync resume refused");
    expect((await storedBytes(p)).equals(data)).toBe(true);
    expect(drive.stats.sessionsOpen()).toBe(0);
  });
});
