/** SFTP destination against a real OpenSSH sshd started by this file on a free loopback port. */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { constants } from "node:fs";
import {
  appendFile,
  mkdir,
  open,
  readdir,
  readFile,
  rm,
  stat,
  truncate,
  writeFile,
  type FileHandle,
} from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SftpDestination } from "../../runner/src/destinations/sftp";
import { DestinationError, type ObjectWriter } from "../../runner/src/destinations/types";
import { parseDestinationUrl, type SftpSpec } from "../../runner/src/destinations/url";
import { destinationConformance, failure, readAll, writeObject, writeResumed } from "./conformance";
import { sshdUnavailable, startSshd, type TestSshd } from "./sshd";
import { startTcpFaultProxy, type TcpFaultProxy } from "./tcp-fault-proxy";

const MiB = 1024 * 1024;
const FAST_RETRY = { attempts: 3, baseDelayMs: 10, maxDelayMs: 50 };
const unavailable = sshdUnavailable();
if (unavailable) console.warn(`sftp tests skipped: ${unavailable}`);

describe.skipIf(unavailable !== undefined)("sftp", () => {
  let sshd: TestSshd;
  let data: string;

  beforeAll(async () => {
    sshd = await startSshd();
    data = join(sshd.dir, "data");
    await mkdir(data);
  });
  afterAll(async () => {
    await sshd?.close();
  });

  function spec(over: Partial<SftpSpec> = {}, port = sshd.port): SftpSpec {
    const base = parseDestinationUrl(`sftp://${sshd.user}@127.0.0.1:${port}${data}`, {
      sshKeyFile: sshd.userKey,
      sshTofuStore: join(sshd.dir, "tofu.json"),
    }) as SftpSpec;
    return { ...base, retry: FAST_RETRY, ...over };
  }

  destinationConformance("sftp (key auth, TOFU host key)", async () => new SftpDestination(spec()), {
    bigObjectBytes: 20 * MiB,
  });

  it("prints its URL without secrets", () => {
    expect(new SftpDestination(spec()).url).toBe(`sftp://${sshd.user}@127.0.0.1:${sshd.port}${data}`);
  });

  it("accepts the host key listed in a known_hosts file", async () => {
    const kh = join(sshd.dir, "known_hosts_ok");
    await writeFile(kh, `[127.0.0.1]:${sshd.port} ${sshd.hostPublicKey}\n`);
    const dest = new SftpDestination(spec({ knownHostsFile: kh, tofuStorePath: undefined }));
    await dest.test();
    await dest.close();
  });

  it("refuses a host whose key differs from known_hosts, or is not listed: HOST_KEY_MISMATCH", async () => {
    const other = join(sshd.dir, "other_key");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", other]);
    const otherPub = (await readFile(`${other}.pub`, "utf8")).trim();
    for (const line of [
      `[127.0.0.1]:${sshd.port} ${otherPub}`,
      `[127.0.0.2]:${sshd.port} ${sshd.hostPublicKey}`,
    ]) {
      const kh = join(sshd.dir, "known_hosts_bad");
      await writeFile(kh, `${line}\n`);
      const dest = new SftpDestination(spec({ knownHostsFile: kh, tofuStorePath: undefined }));
      const err = await failure(dest.list());
      expect(err.code).toBe("HOST_KEY_MISMATCH");
      await dest.close();
    }
  });

  it("trusts on first use, then refuses a changed host key: HOST_KEY_MISMATCH", async () => {
    const second = await startSshd();
    const tofu = join(second.dir, "tofu-second.json");
    try {
      const dest = new SftpDestination({
        ...spec({ tofuStorePath: tofu }, second.port),
        privateKey: await readFile(second.userKey, "utf8"),
        path: second.dir,
      });
      await dest.list();
      await dest.close();
      expect(Object.keys(JSON.parse(await readFile(tofu, "utf8")).hosts)).toEqual([
        `[127.0.0.1]:${second.port}`,
      ]);
      // Same address, new host key: what a man in the middle (or a rebuilt server) looks like.
      await second.stop();
      const replaced = await startSshd({ dir: second.dir, port: second.port, newHostKey: true });
      try {
        const again = new SftpDestination({
          ...spec({ tofuStorePath: tofu }, second.port),
          privateKey: await readFile(second.userKey, "utf8"),
          path: second.dir,
        });
        const err = await failure(again.list());
        expect(err.code).toBe("HOST_KEY_MISMATCH");
        expect(err.message).toContain("changed");
        await again.close();
      } finally {
        await replaced.close();
      }
    } finally {
      await second.close();
    }
  });

  it("a wrong key is AUTH_FAILED", async () => {
    const other = join(sshd.dir, "stranger_key");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-f", other]);
    const dest = new SftpDestination(spec({ privateKey: await readFile(other, "utf8") }));
    const err = await failure(dest.test());
    expect(err.code).toBe("AUTH_FAILED");
    await dest.close();
  });

  it("a missing remote path is NOT_FOUND", async () => {
    const dest = new SftpDestination(spec({ path: join(sshd.dir, "no-such-dir") }));
    expect((await failure(dest.test())).code).toBe("NOT_FOUND");
    expect((await failure(dest.stat("x"))).code).toBe("NOT_FOUND");
    await dest.close();
  });

  describe("connection resets", () => {
    let proxy: TcpFaultProxy;
    beforeAll(async () => {
      proxy = await startTcpFaultProxy(sshd.port);
    });
    afterAll(async () => {
      await proxy?.close();
    });

    it("a reset mid-upload reconnects and continues where the server left off", async () => {
      const dest = new SftpDestination(
        spec({ retry: { attempts: 6, baseDelayMs: 10, maxDelayMs: 50 } }, proxy.port),
      );
      const body = randomBytes(3 * MiB);
      proxy.cutAfterBytes = 1.2 * MiB;
      const cuts = proxy.cuts;
      try {
        await writeObject(dest, "resumed.bin", body);
      } finally {
        proxy.cutAfterBytes = undefined;
      }
      expect(proxy.cuts - cuts).toBeGreaterThanOrEqual(2);
      expect((await readAll(await dest.createReadStream("resumed.bin"))).equals(body)).toBe(true);
      expect((await readdir(data)).filter((f) => f.includes(".part-"))).toEqual([]);
      await dest.close();
    });

    it("when the server stays unreachable: retries, clear failure, no half object, temp removed", async () => {
      const dest = new SftpDestination(spec({}, proxy.port));
      const w = await dest.createWriter("cut.bin");
      await new Promise<void>((resolve, reject) =>
        w.stream.write(randomBytes(MiB), (e) => (e ? reject(e) : resolve())),
      );
      proxy.cutAfterBytes = 0;
      let err: DestinationError;
      try {
        err = await failure(pipeline(Readable.from([randomBytes(2 * MiB)]), w.stream).then(() => w.commit()));
      } finally {
        proxy.cutAfterBytes = undefined;
      }
      expect(err.code).toBe("CONNECTION_FAILED");
      expect(err.message).toContain(`127.0.0.1:${proxy.port}`);
      expect(
        (await readdir(data)).filter((f) => f.startsWith("cut.bin") || f.startsWith(".cut.bin")),
      ).not.toEqual([]);
      await w.abort();
      expect((await readdir(data)).filter((f) => f.includes("cut.bin"))).toEqual([]);
      await dest.close();
    });
  });

  describe("an SFTP server that stops answering behind a live connection (a stuck disk)", () => {
    /**
     * Read ends that let the blocked servers go. Held to the end: a server whose open() of the FIFO
     * comes after a reader has come and gone would block again, forever.
     */
    const releases: FileHandle[] = [];
    afterAll(async () => {
      for (const r of releases) await r.close();
    });

    /**
     * A writer of `body` with its first MiB acknowledged, whose SFTP server then blocks (a request to
     * open a FIFO for writing does not return until someone reads it, and the server handles one
     * request at a time, while sshd keeps answering keepalives) with the second MiB in flight. Calls
     * `during`, then lets the blocked server go.
     */
    async function withBlockedServer(
      name: string,
      body: Buffer,
      opts: { keepOnFailure?: boolean },
      during: (dest: SftpDestination, w: ObjectWriter) => Promise<void>,
    ): Promise<void> {
      const dest = new SftpDestination(spec(), { cleanupTimeoutMs: 300 });
      let acked = 0;
      let firstAcked = () => {};
      const first = new Promise<void>((resolve) => (firstAcked = resolve));
      const w = await dest.createWriter(name, {
        ...opts,
        onAcked: (n) => {
          acked += n;
          if (acked >= MiB) firstAcked();
        },
      });
      w.stream.write(body.subarray(0, MiB));
      await first;
      const fifo = join(data, `${name}.fifo`);
      execFileSync("mkfifo", [fifo]);
      try {
        const sftp = await dest.session();
        sftp.open(fifo, "w", () => {});
        w.stream.write(body.subarray(MiB, 2 * MiB), () => {});
        await during(dest, w);
      } finally {
        releases.push(await open(fifo, constants.O_RDONLY | constants.O_NONBLOCK));
        await rm(fifo);
        await dest.close();
      }
    }

    it("abort() cuts the connection after the cleanup timeout and removes the temp over a new one", async () => {
      await withBlockedServer("blocked.bin", randomBytes(2 * MiB), {}, async (_dest, w) => {
        await w.abort();
        expect((await readdir(data)).filter((f) => f.startsWith(".blocked.bin"))).toEqual([]);
        expect((await failure(w.commit())).code).toBe("CONNECTION_FAILED");
      });
    });

    it("suspend() returns a token for the acknowledged run, which the next writer continues", async () => {
      const body = randomBytes(3 * MiB);
      await withBlockedServer("blocked-pause.bin", body, { keepOnFailure: true }, async (dest, w) => {
        const token = await w.suspend?.();
        expect(token).toMatchObject({ kind: "sftp-temp", offset: MiB });
        const again = await writeResumed(dest, "blocked-pause.bin", token, body);
        expect(again.skippedBytes).toBe(MiB);
        expect((await readAll(await dest.createReadStream("blocked-pause.bin"))).equals(body)).toBe(true);
      });
    });
  });

  describe("resume across writers (suspend token)", () => {
    async function suspendedAfter(name: string, body: Buffer, held: number) {
      const dest = new SftpDestination(spec());
      const w = await dest.createWriter(name, { keepOnFailure: true });
      await new Promise<void>((resolve, reject) =>
        w.stream.write(body.subarray(0, held), (e) => (e ? reject(e) : resolve())),
      );
      const token = (await w.suspend?.()) as { offset: number; temp: string };
      return { dest, token };
    }

    it("continues the temp file: only the rest is written, the object is byte-identical", async () => {
      const body = randomBytes(3 * MiB);
      const { dest, token } = await suspendedAfter("again.bin", body, 2 * MiB);
      expect(token).toMatchObject({ kind: "sftp-temp", offset: 2 * MiB });
      const w = await writeResumed(dest, "again.bin", token, body);
      expect(w.skippedBytes).toBe(2 * MiB);
      expect((await readAll(await dest.createReadStream("again.bin"))).equals(body)).toBe(true);
      expect((await readdir(data)).filter((f) => f.includes("again.bin.part-"))).toEqual([]);
      await dest.close();
    });

    it("bytes past the token's offset (sent, never acknowledged) are cut off before the rest is written", async () => {
      const body = randomBytes(3 * MiB);
      const { dest, token } = await suspendedAfter("tail.bin", body, 2 * MiB);
      await appendFile(token.temp, randomBytes(100_000));
      const w = await dest.createWriter("tail.bin", { resume: token, keepOnFailure: true });
      expect((await stat(token.temp)).size).toBe(2 * MiB);
      await pipeline(Readable.from([body]), w.stream);
      await w.commit();
      expect(w.skippedBytes).toBe(2 * MiB);
      expect((await readAll(await dest.createReadStream("tail.bin"))).equals(body)).toBe(true);
      await dest.close();
    });

    it("a temp shorter than the token's offset is not built on: removed, uploaded again from zero", async () => {
      const body = randomBytes(3 * MiB);
      const { dest, token } = await suspendedAfter("short.bin", body, 2 * MiB);
      await truncate(token.temp, MiB);
      const w = await dest.createWriter("short.bin", { resume: token, keepOnFailure: true });
      await expect(stat(token.temp)).rejects.toMatchObject({ code: "ENOENT" });
      await pipeline(Readable.from([body]), w.stream);
      await w.commit();
      expect(w.skippedBytes).toBe(0);
      expect((await readAll(await dest.createReadStream("short.bin"))).equals(body)).toBe(true);
      expect((await readdir(data)).filter((f) => f.includes("short.bin.part-"))).toEqual([]);
      await dest.close();
    });

    it("a source whose first bytes differ from the held ones is INTEGRITY_MISMATCH; nothing is appended", async () => {
      const body = randomBytes(3 * MiB);
      const { dest, token } = await suspendedAfter("swap.bin", body, 2 * MiB);
      const w = await dest.createWriter("swap.bin", { resume: token, keepOnFailure: true });
      const other = Buffer.from(body);
      other[5] = (other[5] as number) ^ 1;
      const err = await failure(pipeline(Readable.from([other]), w.stream));
      expect(err.code).toBe("INTEGRITY_MISMATCH");
      expect((await stat(token.temp)).size).toBe(2 * MiB);
      await w.abort();
      expect((await readdir(data)).filter((f) => f.includes("swap.bin"))).toEqual([]);
      await dest.close();
    });
  });

  it("a full remote disk is NO_SPACE and leaves nothing behind", async (ctx) => {
    const small = join(sshd.dir, "small");
    await mkdir(small);
    try {
      execFileSync("mount", ["-t", "tmpfs", "-o", "size=1m", "tmpfs", small], { stdio: "ignore" });
    } catch {
      console.warn("NO_SPACE test skipped: cannot mount a small tmpfs here (needs root and mount rights)");
      ctx.skip();
      return;
    }
    try {
      const dest = new SftpDestination(spec({ path: small }));
      const err = await failure(writeObject(dest, "big.bin", randomBytes(3 * MiB)));
      expect(err.code, err.message).toBe("NO_SPACE");
      expect(await readdir(small)).toEqual([]);
      await dest.close();
    } finally {
      // Lazy: the server's SFTP process may still hold the directory for a moment.
      execFileSync("umount", ["-l", small]);
    }
  });
});
