/** Google Drive destination (real client code) against the local Drive v3 + OAuth server. */
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { GdriveDestination } from "../../runner/src/destinations/gdrive";
import { buildAuthorizationUrl, exchangeAuthorizationCode } from "../../runner/src/destinations/gdrive-oauth";
import { DestinationError } from "../../runner/src/destinations/types";
import { parseDestinationUrl, type GdriveSpec } from "../../runner/src/destinations/url";
import { destinationConformance, failure, readAll, writeObject, writeResumed } from "./conformance";
import { startFakeDrive, type FakeDrive } from "./fake-gdrive-server";

const MiB = 1024 * 1024;
const FAST_RETRY = { attempts: 4, baseDelayMs: 10, maxDelayMs: 50 };
let drive: FakeDrive;
let dir: string;

beforeAll(async () => {
  drive = await startFakeDrive();
  dir = await mkdtemp(join(tmpdir(), "cairn-gdrive-"));
});
afterAll(async () => {
  await drive?.close();
  await rm(dir, { recursive: true, force: true });
});

async function spec(over: Partial<GdriveSpec> = {}, tokens?: object): Promise<GdriveSpec> {
  const file = join(dir, `token-${randomBytes(4).toString("hex")}.json`);
  await writeFile(
    file,
    JSON.stringify(
      tokens ?? {
        clientId: drive.clientId,
        clientSecret: drive.clientSecret,
        refreshToken: drive.refreshToken,
      },
    ),
    { mode: 0o600 },
  );
  const base = parseDestinationUrl(`gdrive://${drive.rootId}`, {
    gdriveTokenFile: file,
    gdriveApiBase: drive.apiBase,
    gdriveUploadBase: drive.uploadBase,
    gdriveTokenUrl: drive.tokenUrl,
  }) as GdriveSpec;
  // 1 MiB chunks so the 20 MiB object takes many resumable PUTs.
  return { ...base, chunkSize: MiB, retry: FAST_RETRY, ...over };
}

destinationConformance(
  "gdrive (resumable uploads, 1 MiB chunks)",
  async () => new GdriveDestination(await spec()),
  {
    bigObjectBytes: 20 * MiB,
    maxLiveBufferBytes: 12 * MiB,
  },
);

describe("gdrive", () => {
  it("prints gdrive://FOLDER without tokens", async () => {
    const dest = new GdriveDestination(await spec());
    expect(dest.url).toBe(`gdrive://${drive.rootId}`);
  });

  it("refreshes an expired access token and carries on", async () => {
    const dest = new GdriveDestination(await spec());
    await dest.list();
    const before = drive.stats.refreshes;
    drive.revokeAccessTokens();
    await dest.list();
    expect(drive.stats.refreshes).toBe(before + 1);
  });

  it("replaces an object written twice under one name (Drive allows duplicates)", async () => {
    const dest = new GdriveDestination(await spec());
    await writeObject(dest, "twice/x.bin", randomBytes(10));
    const second = randomBytes(20);
    await writeObject(dest, "twice/x.bin", second);
    expect(await dest.list("twice/")).toHaveLength(1);
    expect((await readAll(await dest.createReadStream("twice/x.bin"))).equals(second)).toBe(true);
  });

  it("a reset mid-chunk resumes from what the session holds", async () => {
    const dest = new GdriveDestination(await spec());
    const body = randomBytes(3 * MiB + 12345);
    drive.faults.resetChunkAfterBytes = 600 * 1024;
    drive.faults.resetChunkCount = 2;
    const queries = drive.stats.statusQueries;
    const resets = drive.stats.resets;
    try {
      await writeObject(dest, "resume.bin", body);
    } finally {
      drive.faults.resetChunkCount = 0;
    }
    expect(drive.stats.resets - resets).toBe(2);
    expect(drive.stats.statusQueries - queries).toBeGreaterThanOrEqual(2);
    expect((await readAll(await dest.createReadStream("resume.bin"))).equals(body)).toBe(true);
  });

  it("5xx on every try: bounded retries, then CONNECTION_FAILED, session cancelled, no file", async () => {
    const dest = new GdriveDestination(await spec());
    drive.faults.fail503Count = 1000;
    let err: DestinationError;
    try {
      err = await failure(writeObject(dest, "never.bin", randomBytes(2 * MiB)));
    } finally {
      drive.faults.fail503Count = 0;
    }
    expect(err.code).toBe("CONNECTION_FAILED");
    expect(err.message).toContain(`gdrive://${drive.rootId}`);
    expect(await dest.stat("never.bin")).toBeNull();
    expect(drive.stats.sessionsOpen()).toBe(0);
  });

  describe("a session cancel the server never answers", () => {
    /** A writer whose first chunk has reached the session (so the session holds bytes). */
    async function writerWithOneChunk(dest: GdriveDestination, name: string, signal?: AbortSignal) {
      const w = await dest.createWriter(name, { signal });
      await new Promise<void>((resolve, reject) =>
        w.stream.write(randomBytes(MiB + 10), (e) => (e ? reject(e) : resolve())),
      );
      return w;
    }

    it("a failed upload: abort() gives up after the cancel timeout, the copy still fails, a later abort() cancels", async () => {
      const dest = new GdriveDestination(await spec(), { cancelTimeoutMs: 200 });
      const open = drive.stats.sessionsOpen();
      const held = drive.stats.cancelsHeld;
      const w = await dest.createWriter("held-cancel.bin");
      drive.faults.fail503Count = 1000;
      drive.faults.holdSessionCancel = true;
      try {
        const err = await failure(pipeline(Readable.from([randomBytes(2 * MiB)]), w.stream));
        expect(err.code).toBe("CONNECTION_FAILED");
        expect((await failure(w.commit())).code).toBe("CONNECTION_FAILED");
        const abortErr = await failure(w.abort(err));
        expect(abortErr.code).toBe("CONNECTION_FAILED");
        expect(abortErr.message).toContain("no answer within 0.2 s");
        expect(drive.stats.cancelsHeld - held).toBeGreaterThanOrEqual(2);
        expect(drive.stats.sessionsOpen()).toBe(open + 1);
      } finally {
        drive.faults.fail503Count = 0;
        drive.faults.holdSessionCancel = false;
      }
      await w.abort();
      expect(drive.stats.sessionsOpen()).toBe(open);
      expect(await dest.stat("held-cancel.bin")).toBeNull();
    });

    it("a cancelled job: abort() returns, commit() fails, nothing is stored", async () => {
      const dest = new GdriveDestination(await spec(), { cancelTimeoutMs: 200 });
      const cancel = new AbortController();
      const w = await writerWithOneChunk(dest, "cancelled.bin", cancel.signal);
      drive.faults.holdSessionCancel = true;
      try {
        cancel.abort(new Error("job cancelled"));
        expect((await failure(w.abort())).code).toBe("CONNECTION_FAILED");
        w.stream.end();
        expect((await failure(w.commit())).code).toBe("CANCELLED");
      } finally {
        drive.faults.holdSessionCancel = false;
      }
      expect(await dest.stat("cancelled.bin")).toBeNull();
      await w.abort();
    });

    it("discardSuspended() of a session gives up after the cancel timeout", async () => {
      const dest = new GdriveDestination(await spec(), { cancelTimeoutMs: 200 });
      const w = await writerWithOneChunk(dest, "discard-held.bin");
      const token = await w.suspend?.();
      expect(token).toMatchObject({ kind: "gdrive-session", offset: MiB });
      const open = drive.stats.sessionsOpen();
      drive.faults.holdSessionCancel = true;
      try {
        expect((await failure(dest.discardSuspended(token))).code).toBe("CONNECTION_FAILED");
        expect(drive.stats.sessionsOpen()).toBe(open);
      } finally {
        drive.faults.holdSessionCancel = false;
      }
      await dest.discardSuspended(token);
      expect(drive.stats.sessionsOpen()).toBe(open - 1);
    });
  });

  it("a checksum mismatch after upload is INTEGRITY_MISMATCH and the file is removed", async () => {
    const dest = new GdriveDestination(await spec());
    drive.faults.corruptMd5 = true;
    let err: DestinationError;
    try {
      err = await failure(writeObject(dest, "md5.bin", randomBytes(1000)));
    } finally {
      drive.faults.corruptMd5 = false;
    }
    expect(err.code).toBe("INTEGRITY_MISMATCH");
    expect(await dest.stat("md5.bin")).toBeNull();
  });

  /** Starts an upload of `body`, writes 2.5 MiB in 1 MiB chunks (two reach the session), suspends it. */
  async function suspendedAfterTwoChunks(dest: GdriveDestination, name: string, body: Buffer) {
    const first = await dest.createWriter(name, { keepOnFailure: true });
    await new Promise<void>((resolve, reject) =>
      first.stream.write(body.subarray(0, 2.5 * MiB), (e) => (e ? reject(e) : resolve())),
    );
    return first.suspend?.();
  }

  it("resume across writers: the session is asked what it holds and only the rest is sent", async () => {
    const dest = new GdriveDestination(await spec());
    const body = randomBytes(3 * MiB + 100);
    const token = await suspendedAfterTwoChunks(dest, "across.bin", body);
    expect(token).toMatchObject({ kind: "gdrive-session", name: "across.bin", offset: 2 * MiB });
    const before = drive.stats.chunkBytes;
    const w = await writeResumed(dest, "across.bin", token, body);
    expect(w.skippedBytes).toBe(2 * MiB);
    expect(drive.stats.chunkBytes - before).toBe(body.length - 2 * MiB);
    expect((await readAll(await dest.createReadStream("across.bin"))).equals(body)).toBe(true);
  });

  it("resume across writers: bytes changed in the held session fail the MD5 at commit, no file is left", async () => {
    const dest = new GdriveDestination(await spec());
    const body = randomBytes(3 * MiB + 100);
    const token = await suspendedAfterTwoChunks(dest, "changed.bin", body);
    expect(drive.tamperSessions(4096)).toBeGreaterThanOrEqual(1);
    const w = await dest.createWriter("changed.bin", { resume: token, keepOnFailure: true });
    await pipeline(Readable.from([body]), w.stream);
    expect((await failure(w.commit())).code).toBe("INTEGRITY_MISMATCH");
    expect(await dest.stat("changed.bin")).toBeNull();
  });

  it("resume across writers: a resumed upload whose completion carries no md5Checksum is refused, no file is left", async () => {
    const dest = new GdriveDestination(await spec());
    const body = randomBytes(3 * MiB + 100);
    const token = await suspendedAfterTwoChunks(dest, "nomd5.bin", body);
    drive.faults.omitMd5 = true;
    try {
      const w = await dest.createWriter("nomd5.bin", { resume: token, keepOnFailure: true });
      await pipeline(Readable.from([body]), w.stream);
      expect((await failure(w.commit())).code).toBe("INTEGRITY_MISMATCH");
      expect(await dest.stat("nomd5.bin")).toBeNull();
      // A fresh upload is still taken on its size (the sync reads it back and hashes it).
      await writeObject(dest, "nomd5.bin", body);
      expect((await dest.stat("nomd5.bin"))?.size).toBe(body.length);
    } finally {
      drive.faults.omitMd5 = false;
    }
  });

  it("a full Drive is NO_SPACE", async () => {
    const dest = new GdriveDestination(await spec());
    drive.faults.quotaExceeded = true;
    try {
      expect((await failure(dest.test())).code).toBe("NO_SPACE");
    } finally {
      drive.faults.quotaExceeded = false;
    }
  });

  it("a revoked refresh token is AUTH_FAILED without leaking secrets", async () => {
    const dest = new GdriveDestination(
      await spec(
        {},
        { clientId: drive.clientId, clientSecret: drive.clientSecret, refreshToken: "1//revoked-token" },
      ),
    );
    const err = await failure(dest.test());
    expect(err.code).toBe("AUTH_FAILED");
    expect(err.message).not.toContain("revoked-token");
    expect(err.message).not.toContain(drive.clientSecret);
  });

  it("a missing folder is NOT_FOUND", async () => {
    const dest = new GdriveDestination(await spec({ folderId: "no-such-folder" }));
    expect((await failure(dest.test())).code).toBe("NOT_FOUND");
    expect((await failure(dest.stat("x"))).code).toBe("NOT_FOUND");
  });

  it("authorization-code flow: builds the consent URL and exchanges the code for a refresh token", async () => {
    const u = new URL(
      buildAuthorizationUrl({ clientId: drive.clientId, redirectUri: drive.redirectUri, state: "st-1" }),
    );
    expect(u.origin + u.pathname).toBe("https://accounts.google.com/o/oauth2/v2/auth");
    expect(u.searchParams.get("access_type")).toBe("offline");
    expect(u.searchParams.get("response_type")).toBe("code");
    expect(u.searchParams.get("state")).toBe("st-1");
    const code = drive.authCode;
    const t = await exchangeAuthorizationCode({
      clientId: drive.clientId,
      clientSecret: drive.clientSecret,
      code,
      redirectUri: drive.redirectUri,
      tokenUrl: drive.tokenUrl,
    });
    expect(t.refreshToken).toBe(drive.refreshToken);
    // Codes are single-use.
    const again = await failure(
      exchangeAuthorizationCode({
        clientId: drive.clientId,
        clientSecret: drive.clientSecret,
        code,
        redirectUri: drive.redirectUri,
        tokenUrl: drive.tokenUrl,
      }),
    );
    expect(again.code).toBe("AUTH_FAILED");
  });
});
