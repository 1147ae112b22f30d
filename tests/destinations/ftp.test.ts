/** FTP and FTPS (explicit TLS) destinations against a real ftp-srv started by this file on loopback. */
import { randomBytes } from "node:crypto";
import { appendFile, mkdir, readdir, stat, writeFile } from "node:fs/promises";
import { join, posix } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FTPError } from "basic-ftp";
import { FtpDestination } from "../../runner/src/destinations/ftp";
import { DestinationError } from "../../runner/src/destinations/types";
import { parseDestinationUrl, type FtpSpec } from "../../runner/src/destinations/url";
import { destinationConformance, failure, readAll, writeObject, writeResumed } from "./conformance";
import { startFtpServer, type TestFtpServer } from "./ftp-server";
import { startTcpFaultProxy } from "./tcp-fault-proxy";

const MiB = 1024 * 1024;
const FAST_RETRY = { attempts: 3, baseDelayMs: 10, maxDelayMs: 50 };

for (const tls of [false, true]) {
  describe(tls ? "ftps (explicit TLS)" : "ftp (plain)", () => {
    let server: TestFtpServer;
    let secrets: string;

    beforeAll(async () => {
      server = await startFtpServer({ tls });
      await mkdir(join(server.root, "data"));
      secrets = join(server.root, "secrets");
      await mkdir(secrets);
      await writeFile(join(secrets, "password"), `${server.password}\n`);
      if (server.cert) await writeFile(join(secrets, "ca.pem"), server.cert);
    });
    afterAll(async () => {
      await server?.close();
    });

    function spec(over: Partial<FtpSpec> = {}): FtpSpec {
      const base = parseDestinationUrl(
        `${tls ? "ftps" : "ftp"}://${server.user}@127.0.0.1:${server.port}/data`,
        {
          passwordFile: join(secrets, "password"),
          ftpCaFile: tls ? join(secrets, "ca.pem") : undefined,
        },
      ) as FtpSpec;
      return { ...base, retry: FAST_RETRY, ...over };
    }

    destinationConformance(tls ? "ftps" : "ftp", async () => new FtpDestination(spec()), {
      bigObjectBytes: 20 * MiB,
    });

    it("keeps the password out of its URL and errors", async () => {
      const dest = new FtpDestination(spec({ path: "/nope" }));
      expect(dest.url).toBe(`${tls ? "ftps" : "ftp"}://${server.user}@127.0.0.1:${server.port}/nope`);
      const err = await failure(dest.test());
      expect(err.message).not.toContain(server.password);
    });

    it("wrong password is AUTH_FAILED", async () => {
      const err = await failure(new FtpDestination(spec({ password: "wrong" })).test());
      expect(err.code).toBe("AUTH_FAILED");
    });

    it("a missing remote path is NOT_FOUND", async () => {
      const dest = new FtpDestination(spec({ path: "/no-such-dir" }));
      expect((await failure(dest.test())).code).toBe("NOT_FOUND");
      expect((await failure(dest.stat("x"))).code).toBe("NOT_FOUND");
    });

    it("a size mismatch after upload is INTEGRITY_MISMATCH and nothing lands under the final name", async () => {
      const dest = new FtpDestination(spec());
      server.faults.mode = "truncate";
      let err: DestinationError;
      try {
        err = await failure(writeObject(dest, "short.bin", randomBytes(200_000)));
      } finally {
        server.faults.mode = undefined;
      }
      expect(err.code).toBe("INTEGRITY_MISMATCH");
      expect(await dest.stat("short.bin")).toBeNull();
      expect((await readdir(join(server.root, "data"))).filter((f) => f.includes("short.bin"))).toEqual([]);
    });

    it("a connection reset mid-upload fails clearly and leaves no half object", async () => {
      const dest = new FtpDestination(spec());
      server.faults.mode = "reset";
      server.faults.resetAfterBytes = MiB;
      let err: DestinationError;
      try {
        err = await failure(writeObject(dest, "reset.bin", randomBytes(4 * MiB)));
      } finally {
        server.faults.mode = undefined;
      }
      expect(err.code).toBe("CONNECTION_FAILED");
      expect(await dest.stat("reset.bin")).toBeNull();
      expect((await readdir(join(server.root, "data"))).filter((f) => f.includes("reset.bin"))).toEqual([]);
      // And the destination works again afterwards.
      const body = randomBytes(1000);
      await writeObject(dest, "after-reset.bin", body);
      expect((await readAll(await dest.createReadStream("after-reset.bin"))).equals(body)).toBe(true);
    });

    /** Names of the files in the destination's directory that belong to object `name` (temps included). */
    async function filesOf(name: string): Promise<string[]> {
      return (await readdir(join(server.root, "data"))).filter((f) => f.includes(name));
    }

    /** Writes the first `held` bytes of `body` and waits until the server has them on disk. */
    async function writeHeld(dest: FtpDestination, name: string, body: Buffer, held: number) {
      const w = await dest.createWriter(name, { keepOnFailure: true });
      w.stream.write(body.subarray(0, held));
      const dir = join(server.root, "data");
      for (let i = 0; i < 400; i++) {
        const temp = (await readdir(dir)).find((f) => f.startsWith(`.${name}.part-`));
        if (temp && (await stat(join(dir, temp))).size === held) break;
        await new Promise((r) => setTimeout(r, 25));
      }
      return w;
    }

    it("a DELE the server refuses is not taken for a removal: abort() fails, a later abort() removes the temp", async () => {
      const w = await writeHeld(new FtpDestination(spec()), "refused.bin", randomBytes(100_000), 100_000);
      server.faults.refuseDelete = true;
      try {
        const err = await failure(w.abort());
        expect(err.message).toContain("refused to delete");
        expect((await filesOf("refused.bin")).length).toBe(1);
      } finally {
        server.faults.refuseDelete = false;
      }
      await w.abort();
      expect(await filesOf("refused.bin")).toEqual([]);
    });

    describe("resume across writers (suspend token)", () => {
      /** Writes `held` bytes, waits until the server has them on disk, suspends. */
      async function suspendedAfter(name: string, body: Buffer, held: number) {
        const dest = new FtpDestination(spec());
        const w = await writeHeld(dest, name, body, held);
        const token = (await w.suspend?.()) as { offset: number; temp: string };
        return { dest, token };
      }

      /** Suspends an upload of `held` bytes after the server went out of reach (its SIZE cannot be read). */
      async function suspendedUnreachable(name: string, body: Buffer, held: number) {
        const proxy = await startTcpFaultProxy(server.port);
        const w = await writeHeld(new FtpDestination(spec({ port: proxy.port })), name, body, held);
        await proxy.close();
        const token = (await w.suspend?.()) as { offset: number; temp: string };
        expect(token).toMatchObject({ kind: "ftp-temp", name });
        expect(await filesOf(name)).toEqual([posix.basename(token.temp)]);
        return token;
      }

      it("suspended out of reach, the temp keeps a token: the next job continues it", async () => {
        const body = randomBytes(3 * MiB);
        const token = await suspendedUnreachable("unreachable.bin", body, 2 * MiB);
        const dest = new FtpDestination(spec());
        const w = await writeResumed(dest, "unreachable.bin", token, body);
        expect(w.skippedBytes).toBe(2 * MiB);
        expect((await readAll(await dest.createReadStream("unreachable.bin"))).equals(body)).toBe(true);
        expect(await filesOf("unreachable.bin")).toEqual(["unreachable.bin"]);
      });

      it("suspended out of reach, the temp keeps a token: a discard removes it", async () => {
        const token = await suspendedUnreachable("unreachable-discard.bin", randomBytes(2 * MiB), MiB);
        await new FtpDestination(spec()).discardSuspended(token);
        expect(await filesOf("unreachable-discard.bin")).toEqual([]);
      });

      it("continues with APPE: only the rest is stored, the object is byte-identical", async () => {
        const body = randomBytes(3 * MiB);
        const { dest, token } = await suspendedAfter("again.bin", body, 2 * MiB);
        expect(token).toMatchObject({ kind: "ftp-temp", offset: 2 * MiB });
        const before = server.stats.bytesStored;
        const w = await writeResumed(dest, "again.bin", token, body);
        expect(w.skippedBytes).toBe(2 * MiB);
        expect(server.stats.bytesStored - before).toBe(MiB);
        expect((await readAll(await dest.createReadStream("again.bin"))).equals(body)).toBe(true);
      });

      it("a temp longer than the token's offset is not appended to (FTP cannot cut it): uploaded again from zero", async () => {
        const body = randomBytes(3 * MiB);
        const { dest, token } = await suspendedAfter("long.bin", body, 2 * MiB);
        const dir = join(server.root, "data");
        await appendFile(join(dir, posix.basename(token.temp)), Buffer.from("x"));
        const before = server.stats.bytesStored;
        const w = await writeResumed(dest, "long.bin", token, body);
        expect(w.skippedBytes).toBe(0);
        expect(server.stats.bytesStored - before).toBe(body.length);
        expect((await readAll(await dest.createReadStream("long.bin"))).equals(body)).toBe(true);
        expect((await readdir(dir)).filter((f) => f.includes("long.bin"))).toEqual(["long.bin"]);
      });

      it("a source whose first bytes differ from the held ones is INTEGRITY_MISMATCH; nothing is appended", async () => {
        const body = randomBytes(3 * MiB);
        const { dest, token } = await suspendedAfter("swap.bin", body, 2 * MiB);
        const w = await dest.createWriter("swap.bin", { resume: token, keepOnFailure: true });
        const other = Buffer.from(body);
        other[5] = (other[5] as number) ^ 1;
        const err = await failure(pipeline(Readable.from([other]), w.stream));
        expect(err.code).toBe("INTEGRITY_MISMATCH");
        const dir = join(server.root, "data");
        expect((await stat(join(dir, posix.basename(token.temp)))).size).toBe(2 * MiB);
        await w.abort();
        expect((await readdir(dir)).filter((f) => f.includes("swap.bin"))).toEqual([]);
      });
    });

    if (tls) {
      it("refuses a server certificate it was not told to trust (verification stays on)", async () => {
        const err = await failure(new FtpDestination(spec({ ca: undefined })).test());
        expect(err.code).toBe("CONNECTION_FAILED");
        expect(err.message).toMatch(/certificate/i);
      });
    }
  });
}

// A real full disk cannot be observed through ftp-srv: it resets the data connection before it sends
// its 550 reply, so the client sees a reset (CONNECTION_FAILED, still a failure). Servers that answer
// 552/452 (vsftpd, pure-ftpd) are mapped to NO_SPACE, checked here on the mapping itself.
describe("ftp error mapping", () => {
  const dest = new FtpDestination({
    type: "ftp",
    secure: false,
    host: "h",
    port: 21,
    user: "u",
    password: "p",
    path: "/x",
  });
  it.each([
    [552, "552 Exceeded storage allocation", "NO_SPACE"],
    [452, "452 Insufficient storage space", "NO_SPACE"],
    [530, "530 Login incorrect", "AUTH_FAILED"],
    [550, "550 No such file", "NOT_FOUND"],
    [421, "421 Service not available", "CONNECTION_FAILED"],
    [500, "500 Syntax error", "PROTOCOL_ERROR"],
  ])("reply %i maps to %s", (code, message, expected) => {
    const err = dest.mapError("upload of a.bin", new FTPError({ code, message } as never));
    expect(err.code).toBe(expected);
    expect(err.message).toContain("ftp://u@h:21/x");
  });
});
