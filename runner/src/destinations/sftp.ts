/**
 * SFTP (OpenSSH and others) through ssh2. Objects are written to `.<name>.part-<random>` beside the
 * final name and renamed only when complete and size-checked, so a reader never sees half an object.
 * A dropped connection mid-upload reconnects and continues at the last acknowledged offset (bounded
 * retries); when that fails the temp file is removed and the error names the cause, unless the caller
 * keeps it (`keepOnFailure`) and `suspend()`s: the next job then continues it (see resume-tokens.ts).
 */
import { createHash } from "node:crypto";
import { readFile } from "node:fs/promises";
import { posix } from "node:path";
import { Writable, type Readable } from "node:stream";
import { finished } from "node:stream/promises";
import { Client, type SFTPWrapper } from "ssh2";
import { checkKnownHosts, checkTofu } from "./host-keys";
import { checkObjectName, isTempName } from "./names";
import { PrefixHash } from "./prefix-hash";
import { runProbe } from "./probe";
import { withMappedErrors } from "./read-stream";
import { DEFAULT_RETRY, isTransient, sleep, withRetry, type RetryPolicy } from "./retry";
import { suspendedTempToken, type TempFileToken } from "./resume-tokens";
import {
  newTempPath,
  sourceEndedEarly,
  sourcePrefixMismatch,
  suspendedUploadToken,
  tempWriterSetup,
  type TempWriterOptions,
} from "./resume-writer";
import {
  DestinationError,
  type Destination,
  type ObjectInfo,
  type ObjectWriter,
  type WriterOptions,
} from "./types";
import { UploadAbort, uploadAborted } from "./upload-abort";
import { specUrl, type SftpSpec } from "./url";

// SFTP status codes (draft-ietf-secsh-filexfer-02), as ssh2 puts them on `err.code`.
const FX_NO_SUCH_FILE = 2;
const FX_PERMISSION_DENIED = 3;
const FX_FAILURE = 4;
/** Unit of resumption after a dropped connection: at most this much is sent again. */
const WRITE_PIECE = 256 * 1024;
const MAX_INFLIGHT = 8;
/**
 * Sent bytes whose hash stays available for a resume token: the acknowledged run trails what was
 * queued by at most MAX_INFLIGHT pieces plus one write batch.
 */
const HASH_WINDOW = 8 * 1024 * 1024;
/**
 * How long a cleanup step (pieces in flight settling, closing the file, removing the temp) may wait
 * for the server: the 2 MiB in flight take about a minute at 300 kbit/s. An SSH connection can stay up,
 * keepalives answered, while the SFTP server behind it hangs (a stuck disk), and ssh2 requests have no
 * timeout of their own.
 */
const CLEANUP_TIMEOUT_MS = 60_000;

interface Session {
  client: Client;
  sftp: SFTPWrapper;
  closed: boolean;
}

function call<T>(fn: (cb: (err: Error | undefined | null, v: T) => void) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => fn((err, v) => (err ? reject(err) : resolve(v))));
}

export class SftpDestination implements Destination {
  readonly url: string;
  readonly supportsRanges = true;
  private readonly root: string;
  private readonly retry: RetryPolicy;
  private current?: Promise<Session>;
  private hostKeyProblem?: string;
  readonly cleanupTimeoutMs: number;

  constructor(
    readonly spec: SftpSpec,
    opts: { cleanupTimeoutMs?: number } = {},
  ) {
    this.url = specUrl(spec);
    this.root = posix.normalize(spec.path.startsWith("/") ? spec.path : `/${spec.path}`);
    this.retry = spec.retry ?? DEFAULT_RETRY;
    this.cleanupTimeoutMs = opts.cleanupTimeoutMs ?? CLEANUP_TIMEOUT_MS;
  }

  /** Map an ssh2/SFTP error to a DestinationError naming this destination and the cause. */
  mapError(what: string, err: unknown): DestinationError {
    if (err instanceof DestinationError) return err;
    const e = err as { level?: string; code?: unknown; message?: string };
    const msg = e?.message ?? String(err);
    if (this.hostKeyProblem)
      return new DestinationError("HOST_KEY_MISMATCH", this.url, this.hostKeyProblem, { cause: err });
    if (e?.level === "client-authentication")
      return new DestinationError(
        "AUTH_FAILED",
        this.url,
        `${what}: authentication failed for user ${this.spec.user}`,
        { cause: err },
      );
    if (e?.code === FX_NO_SUCH_FILE)
      return new DestinationError("NOT_FOUND", this.url, `${what}: no such file or directory`, {
        cause: err,
      });
    if (e?.code === FX_PERMISSION_DENIED)
      return new DestinationError("AUTH_FAILED", this.url, `${what}: permission denied`, { cause: err });
    if (/no space|ENOSPC|quota/i.test(msg))
      return new DestinationError("NO_SPACE", this.url, `${what}: remote disk is full`, { cause: err });
    if (
      isTransient(err) ||
      e?.level === "client-socket" ||
      e?.level === "client-timeout" ||
      /not connected|No response|closed|Connection lost/i.test(msg)
    )
      return new DestinationError("CONNECTION_FAILED", this.url, `${what}: ${msg}`, { cause: err });
    return new DestinationError("PROTOCOL_ERROR", this.url, `${what}: ${msg}`, { cause: err });
  }

  private connectOnce(): Promise<Session> {
    return new Promise<Session>((resolve, reject) => {
      const client = new Client();
      const session: Session = { client, sftp: undefined as unknown as SFTPWrapper, closed: false };
      const fail = (err: unknown) => {
        session.closed = true;
        client.end();
        reject(err);
      };
      client.on("error", fail);
      client.on("close", () => {
        session.closed = true;
      });
      client.on("ready", () => {
        client.sftp((err, sftp) => {
          if (err) return fail(err);
          session.sftp = sftp;
          client.removeListener("error", fail);
          // Later socket errors only mark the session dead; the next operation reconnects.
          client.on("error", () => {
            session.closed = true;
          });
          resolve(session);
        });
      });
      client.connect({
        host: this.spec.host,
        port: this.spec.port,
        username: this.spec.user,
        privateKey: this.spec.privateKey,
        passphrase: this.spec.passphrase,
        password: this.spec.password,
        readyTimeout: 20_000,
        keepaliveInterval: 15_000,
        hostVerifier: (key: Buffer, verify: (ok: boolean) => void) => {
          this.verifyHostKey(key).then(
            (problem) => {
              this.hostKeyProblem = problem;
              verify(problem === undefined);
            },
            (err: unknown) => {
              this.hostKeyProblem = `host key check failed: ${(err as Error).message}`;
              verify(false);
            },
          );
        },
      });
    });
  }

  private async verifyHostKey(key: Buffer): Promise<string | undefined> {
    const verdict = this.spec.knownHostsFile
      ? checkKnownHosts(await readFile(this.spec.knownHostsFile, "utf8"), this.spec.host, this.spec.port, key)
      : await checkTofu(this.spec.tofuStorePath as string, this.spec.host, this.spec.port, key);
    return verdict.ok ? undefined : verdict.reason;
  }

  /** The live session, reconnecting (with bounded retries) when the last one died. */
  async session(): Promise<SFTPWrapper> {
    const cur = this.current ? await this.current.catch(() => undefined) : undefined;
    if (cur && !cur.closed) return cur.sftp;
    this.current = withRetry(this.retry, () => this.connectOnce(), {
      retryable: (err) =>
        !this.hostKeyProblem &&
        (err as { level?: string }).level !== "client-authentication" &&
        (isTransient(err) ||
          (err as { level?: string }).level === "client-socket" ||
          // A connection dropped mid-handshake (reset by a middlebox, server restarting).
          /Connection lost before handshake/i.test((err as Error).message ?? "")),
    }).catch((err: unknown) => {
      throw this.mapError("connect", err);
    });
    return (await this.current).sftp;
  }

  /** Forget the session `sftp` belongs to (its connection dropped), so the next call reconnects. */
  dropSession(sftp: SFTPWrapper): void {
    const cur = this.current;
    void cur?.then(
      (sess) => {
        if (sess.sftp === sftp && !sess.closed) {
          sess.closed = true;
          sess.client.end();
        }
      },
      () => {},
    );
  }

  /**
   * `p`, or CONNECTION_FAILED when the server leaves it unanswered for `cleanupTimeoutMs`; the current
   * connection is then cut, which fails whatever else waits on it, and the next call reconnects.
   */
  async bounded<T>(what: string, p: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const cur = this.current;
        this.current = undefined;
        void cur?.then(
          (sess) => {
            sess.closed = true;
            sess.client.destroy();
          },
          () => {},
        );
        reject(
          new DestinationError(
            "CONNECTION_FAILED",
            this.url,
            `${what}: no answer from the SFTP server within ${this.cleanupTimeoutMs / 1000} s`,
          ),
        );
      }, this.cleanupTimeoutMs);
    });
    try {
      return await Promise.race([p, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Run an idempotent operation, reconnecting on a dropped connection; `bounded` for cleanup steps. */
  async op<T>(
    what: string,
    fn: (sftp: SFTPWrapper) => Promise<T>,
    opts: { bounded?: boolean } = {},
  ): Promise<T> {
    const once = async () => fn(await this.session());
    return withRetry(this.retry, () => (opts.bounded ? this.bounded(what, once()) : once()), {
      retryable: (err) =>
        !(err instanceof DestinationError) && this.mapError(what, err).code === "CONNECTION_FAILED",
    }).catch((err: unknown) => {
      throw this.mapError(what, err);
    });
  }

  path(name: string): string {
    return posix.join(this.root, checkObjectName(this.url, name));
  }

  async mkdirp(sftp: SFTPWrapper, dir: string): Promise<void> {
    try {
      const st = await call<{ isDirectory(): boolean }>((cb) => sftp.stat(dir, cb));
      if (st.isDirectory()) return;
    } catch (err) {
      if ((err as { code?: unknown }).code !== FX_NO_SUCH_FILE) throw err;
    }
    await this.mkdirp(sftp, posix.dirname(dir));
    await call<void>((cb) => sftp.mkdir(dir, (e) => cb(e, undefined))).catch(async (err: unknown) => {
      // Lost a race with another writer creating the same directory: fine if it exists now.
      const st = await call<{ isDirectory(): boolean }>((cb) => sftp.stat(dir, cb)).catch(() => null);
      if (!st?.isDirectory()) throw err;
    });
  }

  async createWriter(name: string, opts: WriterOptions = {}): Promise<ObjectWriter> {
    const final = this.path(name);
    const { writerOpts, token } = tempWriterSetup(opts, "sftp-temp", name, final);
    if (token) {
      if (await this.adoptTemp(token))
        return new SftpWriter(this, name, token.temp, final, writerOpts, token);
      // Missing, short or not the bytes we sent: never build on it. Start again from zero.
      await this.op(
        `remove temp of ${name}`,
        (sftp) => call<void>((cb) => sftp.unlink(token.temp, () => cb(undefined, undefined))),
        { bounded: true },
      ).catch(() => {});
    }
    const temp = newTempPath(final);
    await this.op(`create ${name}`, async (sftp) => {
      // The destination's own directory must exist: creating it would hide a mistyped path.
      await call((cb) => sftp.stat(this.root, cb));
      await this.mkdirp(sftp, posix.dirname(final));
      const handle = await call<Buffer>((cb) => sftp.open(temp, "w", 0o600, cb));
      await call<void>((cb) => sftp.close(handle, (e) => cb(e, undefined)));
    });
    return new SftpWriter(this, name, temp, final, writerOpts);
  }

  /**
   * A suspended temp file is continued only when the server still has at least `offset` bytes and
   * reading them back hashes to what we sent: the storage is untrusted, its size proves nothing. Bytes
   * past `offset` (sent but never acknowledged) are cut off.
   */
  async adoptTemp(t: TempFileToken): Promise<boolean> {
    return this.op(`resume ${t.name}`, async (sftp) => {
      let size: number;
      try {
        size = (await call<{ size: number }>((cb) => sftp.stat(t.temp, cb))).size;
      } catch (err) {
        if ((err as { code?: unknown }).code === FX_NO_SUCH_FILE) return false;
        throw err;
      }
      if (size < t.offset) return false;
      const hash = createHash("sha256");
      let read = 0;
      const rs = sftp.createReadStream(t.temp, { start: 0, end: t.offset - 1 });
      for await (const chunk of rs) {
        hash.update(chunk as Buffer);
        read += (chunk as Buffer).length;
      }
      if (read !== t.offset || hash.digest("hex") !== t.sha256) return false;
      if (size > t.offset)
        await call<void>((cb) => sftp.setstat(t.temp, { size: t.offset }, (e) => cb(e, undefined)));
      return true;
    });
  }

  /** Removes the temp file of a suspended upload that will not be resumed. */
  async discardSuspended(token: unknown): Promise<void> {
    const t = suspendedTempToken(token, "sftp-temp", (n) => this.path(n));
    if (!t) return;
    await this.op(
      `remove temp of ${t.name}`,
      (sftp) => call<void>((cb) => sftp.unlink(t.temp, (e) => cb(e, undefined))),
      { bounded: true },
    ).catch((err: unknown) => {
      if (!(err instanceof DestinationError && err.code === "NOT_FOUND")) throw err;
    });
  }

  async createReadStream(name: string, range?: { start: number; end?: number }): Promise<Readable> {
    const p = this.path(name);
    return this.op(`read ${name}`, async (sftp) => {
      await call((cb) => sftp.stat(p, cb));
      return withMappedErrors(sftp.createReadStream(p, { start: range?.start, end: range?.end }), (err) =>
        this.mapError(`read ${name}`, err),
      );
    });
  }

  async stat(name: string): Promise<ObjectInfo | null> {
    const p = this.path(name);
    try {
      const st = await this.op(`stat ${name}`, (sftp) =>
        call<{ size: number; mtime: number; isFile(): boolean }>((cb) => sftp.stat(p, cb)),
      );
      return st.isFile() ? { name, size: st.size, mtime: new Date(st.mtime * 1000) } : null;
    } catch (err) {
      if (err instanceof DestinationError && err.code === "NOT_FOUND") {
        await this.op("stat root", (sftp) => call((cb) => sftp.stat(this.root, cb)));
        return null;
      }
      throw err;
    }
  }

  async list(prefix = ""): Promise<ObjectInfo[]> {
    // Walk only the directory the prefix points into.
    const base = prefix.includes("/") ? prefix.slice(0, prefix.lastIndexOf("/")) : "";
    const out: ObjectInfo[] = [];
    const walk = async (sftp: SFTPWrapper, rel: string): Promise<void> => {
      const dir = rel ? posix.join(this.root, rel) : this.root;
      let entries: {
        filename: string;
        attrs: { size: number; mtime: number; isDirectory(): boolean; isFile(): boolean };
      }[];
      try {
        entries = await call((cb) => sftp.readdir(dir, cb));
      } catch (err) {
        if ((err as { code?: unknown }).code === FX_NO_SUCH_FILE && rel !== "") return;
        throw err;
      }
      for (const e of entries) {
        const relName = rel ? `${rel}/${e.filename}` : e.filename;
        if (e.attrs.isDirectory()) {
          if (`${relName}/`.startsWith(prefix) || prefix.startsWith(`${relName}/`)) await walk(sftp, relName);
        } else if (e.attrs.isFile() && relName.startsWith(prefix) && !isTempName(relName)) {
          out.push({ name: relName, size: e.attrs.size, mtime: new Date(e.attrs.mtime * 1000) });
        }
      }
    };
    await this.op("list", async (sftp) => {
      out.length = 0;
      await walk(sftp, base);
    });
    return out.sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  async delete(name: string): Promise<void> {
    const p = this.path(name);
    try {
      await this.op(`delete ${name}`, (sftp) => call<void>((cb) => sftp.unlink(p, (e) => cb(e, undefined))));
    } catch (err) {
      if (!(err instanceof DestinationError && err.code === "NOT_FOUND")) throw err;
    }
  }

  test(): Promise<void> {
    return runProbe(this);
  }

  async close(): Promise<void> {
    const cur = this.current ? await this.current.catch(() => undefined) : undefined;
    this.current = undefined;
    cur?.client.end();
  }

  /** On a failed write, ask the server whether its disk is full (OpenSSH statvfs extension). */
  async diskFull(sftp: SFTPWrapper, dir: string, needed: number): Promise<boolean> {
    try {
      const fs = await call<{ f_bavail: number; f_frsize: number }>((cb) =>
        sftp.ext_openssh_statvfs(dir, cb),
      );
      return fs.f_bavail * fs.f_frsize < needed;
    } catch {
      return false;
    }
  }
}

interface OpenFile {
  sftp: SFTPWrapper;
  handle: Buffer;
}

class SftpWriter implements ObjectWriter {
  readonly stream: Writable;
  /** Bytes handed to the server so far (each piece has its own offset); a resumed writer starts at its offset. */
  private written = 0;
  /**
   * Every byte from the source, for the sha256 of the acknowledged prefix in a resume token; keeps the
   * last HASH_WINDOW bytes only for a writer that may be suspended (keepOnFailure).
   */
  private readonly hashed: PrefixHash;
  /** End of the run of pieces the server acknowledged without a gap (what a resume can build on). */
  private acked = 0;
  private readonly ackedAhead = new Map<number, number>();
  /** Resumed writers: the source has reached the held offset and its bytes there hash as recorded. */
  private crossed: boolean;
  private readonly keepOnFailure: boolean;
  private readonly onAcked?: (bytes: number) => void;
  private suspending?: Promise<TempFileToken | undefined>;
  skippedBytes = 0;
  private handleP?: Promise<OpenFile>;
  private current?: OpenFile;
  /** Pieces in flight: pipelining hides the round trip per write request on a distant server. */
  private readonly inflight = new Set<Promise<void>>();
  private failure?: unknown;
  private readonly dropped = new WeakSet<Promise<OpenFile>>();
  private dropsInARow = 0;
  private progressed = false;
  private resendTurn: Promise<void> = Promise.resolve();
  private readonly aborted = new UploadAbort();
  private done = false;

  constructor(
    private readonly dest: SftpDestination,
    private readonly name: string,
    private readonly temp: string,
    private readonly final: string,
    opts: TempWriterOptions,
    /** The adopted token of a resumed upload: the temp holds (verified) its first `offset` bytes. */
    private readonly resumed?: TempFileToken,
  ) {
    this.keepOnFailure = opts.keepOnFailure;
    this.onAcked = opts.onAcked;
    this.hashed = new PrefixHash(opts.keepOnFailure ? HASH_WINDOW : 0);
    this.crossed = resumed === undefined;
    this.written = this.acked = resumed?.offset ?? 0;
    const failed = (cb: (err?: Error | null) => void) => (err: Error) => {
      // Do not leave the temp file behind even if the caller never calls abort(), unless the caller
      // keeps it for a later attempt (it then calls suspend() or abort() itself).
      if (!this.keepOnFailure && !this.suspending) void this.abort(err).catch(() => {});
      cb(this.dest.mapError(`upload of ${this.name}`, err));
    };
    let pos = 0;
    this.stream = new Writable({
      highWaterMark: 1024 * 1024,
      writev: (chunks, cb) => {
        let buf = Buffer.concat(chunks.map((c) => c.chunk as Buffer));
        this.hashed.update(buf);
        const start = pos;
        pos += buf.length;
        if (!this.crossed) {
          if (pos < this.written) return cb();
          const t = this.resumed as TempFileToken;
          const mismatch = sourcePrefixMismatch(this.hashed, t, this.dest.url, this.name);
          if (mismatch) return failed(cb)(mismatch);
          this.crossed = true;
          this.skippedBytes = t.offset;
          // Held by the server from the earlier attempt, and the source matches them: acknowledged.
          this.onAcked?.(t.offset);
          buf = buf.subarray(this.written - start);
        }
        this.writeAt(buf).then(() => cb(), failed(cb));
      },
      final: (cb) => {
        if (!this.crossed) return failed(cb)(sourceEndedEarly(this.dest.url, this.name, pos, this.written));
        // Every piece was acknowledged; a close that fails on a dropped connection loses nothing
        // (the server closes the file itself), and commit() still checks the stored size.
        this.drain()
          .then(() => this.closeHandle().catch(() => {}))
          .then(() => cb(), failed(cb));
      },
    });
    opts.signal?.addEventListener("abort", () => void this.abort(opts.signal?.reason).catch(() => {}), {
      once: true,
    });
  }

  private get stopping(): boolean {
    return this.aborted.requested || this.suspending !== undefined;
  }

  private ack(position: number, length: number): void {
    this.ackedAhead.set(position, position + length);
    for (
      let end = this.ackedAhead.get(this.acked);
      end !== undefined;
      end = this.ackedAhead.get(this.acked)
    ) {
      this.ackedAhead.delete(this.acked);
      this.acked = end;
    }
  }

  /** The open temp file, reopened (r+, keeping what the server has) after a dropped connection. */
  private openHandle(): Promise<OpenFile> {
    if (!this.handleP) {
      const p = (async () => {
        const sftp = await this.dest.session();
        const handle = await call<Buffer>((cb) => sftp.open(this.temp, "r+", cb));
        this.current = { sftp, handle };
        return this.current;
      })();
      this.handleP = p;
      p.catch(() => {
        if (this.handleP === p) this.handleP = undefined;
      });
    }
    return this.handleP;
  }

  private invalidate(hp: Promise<OpenFile>): void {
    if (this.handleP === hp) {
      this.current = undefined;
      this.handleP = undefined;
    }
  }

  /** Queue `buf` at the current offset in pieces; waits only while MAX_INFLIGHT pieces are pending. */
  private async writeAt(buf: Buffer): Promise<void> {
    for (let off = 0; off < buf.length; off += WRITE_PIECE) {
      if (this.stopping) throw uploadAborted(this.dest.url, this.name);
      while (this.inflight.size >= MAX_INFLIGHT) await Promise.race(this.inflight);
      if (this.failure) throw this.failure;
      const piece = buf.subarray(off, Math.min(buf.length, off + WRITE_PIECE));
      const position = this.written;
      this.written += piece.length;
      const p: Promise<void> = this.writePiece(piece, position)
        .catch((err: unknown) => {
          this.failure ??= err;
        })
        .finally(() => this.inflight.delete(p));
      this.inflight.add(p);
    }
  }

  private async drain(): Promise<void> {
    while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
    if (this.failure) throw this.failure;
  }

  /**
   * One piece at its offset; on a dropped connection reconnect and write it again. The retry budget
   * counts dropped connections in a row without any piece getting through (not failures per piece:
   * one drop fails every piece in flight), so a flaky link that makes progress keeps going.
   */
  private async writePiece(piece: Buffer, position: number): Promise<void> {
    const policy = this.dest.spec.retry ?? DEFAULT_RETRY;
    let release: (() => void) | undefined;
    for (;;) {
      const hp = this.openHandle();
      let sftp: SFTPWrapper | undefined;
      try {
        const h = await hp;
        sftp = h.sftp;
        await call<void>((cb) =>
          h.sftp.write(h.handle, piece, 0, piece.length, position, (e) => cb(e, undefined)),
        );
        this.progressed = true;
        this.ack(position, piece.length);
        // The server answered the write request with SSH_FX_OK.
        this.onAcked?.(piece.length);
        release?.();
        return;
      } catch (err) {
        release?.();
        this.invalidate(hp);
        if (
          sftp &&
          (err as { code?: unknown }).code === FX_FAILURE &&
          (await this.dest.diskFull(sftp, posix.dirname(this.temp), piece.length))
        ) {
          throw new DestinationError(
            "NO_SPACE",
            this.dest.url,
            `upload of ${this.name}: remote disk is full`,
            {
              cause: err,
            },
          );
        }
        const mapped = this.dest.mapError(`upload of ${this.name}`, err);
        if (mapped.code !== "CONNECTION_FAILED" || this.stopping) throw mapped;
        // The session may not have noticed yet that its socket is gone: make the next call reconnect.
        if (sftp) this.dest.dropSession(sftp);
        if (!this.dropped.has(hp)) {
          this.dropped.add(hp);
          this.dropsInARow = this.progressed ? 1 : this.dropsInARow + 1;
          this.progressed = false;
        }
        if (this.dropsInARow >= policy.attempts) throw mapped;
        await sleep(Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (this.dropsInARow - 1)));
        // Resend one piece at a time: pieces resent side by side can all be cut again half-way.
        const prev = this.resendTurn;
        this.resendTurn = new Promise<void>((r) => (release = r));
        await prev;
      }
    }
  }

  private async closeHandle(): Promise<void> {
    const p = this.handleP;
    this.handleP = undefined;
    this.current = undefined;
    const h = p ? await p.catch(() => undefined) : undefined;
    if (h) await call<void>((cb) => h.sftp.close(h.handle, (e) => cb(e, undefined)));
  }

  async commit(): Promise<ObjectInfo> {
    try {
      await finished(this.stream);
    } catch (err) {
      if (!this.keepOnFailure) await this.abort(err).catch(() => {});
      throw this.dest.mapError(`upload of ${this.name}`, err);
    }
    if (this.stopping) throw uploadAborted(this.dest.url, this.name);
    try {
      const size = await this.dest.op(`check ${this.name}`, (sftp) =>
        call<{ size: number }>((cb) => sftp.stat(this.temp, cb)),
      );
      if (size.size !== this.written) {
        throw new DestinationError(
          "INTEGRITY_MISMATCH",
          this.dest.url,
          `stored ${this.name} has ${size.size} bytes, sent ${this.written}`,
        );
      }
      await this.dest.op(`rename ${this.name}`, async (sftp) => {
        // posix-rename replaces an existing object atomically; plain SFTP rename refuses to.
        await call<void>((cb) =>
          sftp.ext_openssh_rename(this.temp, this.final, (e) => cb(e, undefined)),
        ).catch(async () => {
          await call<void>((cb) => sftp.unlink(this.final, () => cb(undefined, undefined)));
          await call<void>((cb) => sftp.rename(this.temp, this.final, (e) => cb(e, undefined)));
        });
      });
      this.done = true;
      return { name: this.name, size: this.written };
    } catch (err) {
      const mapped = this.dest.mapError(`upload of ${this.name}`, err);
      // A complete temp file the server still has is worth keeping when the caller asked to.
      if (!this.keepOnFailure || mapped.code !== "CONNECTION_FAILED") await this.abort(err).catch(() => {});
      throw mapped;
    }
  }

  /**
   * Stop and keep the temp file for a later job: the token names it with the acknowledged run and its
   * sha256. Pieces in flight are let finish (at most MAX_INFLIGHT x 256 KiB). Nothing worth keeping
   * (or its hash left the window) removes the temp and returns undefined.
   */
  suspend(): Promise<TempFileToken | undefined> {
    if (this.done || this.aborted.requested) return Promise.resolve(undefined);
    this.suspending ??= (async () => {
      if (!this.stream.destroyed) this.stream.destroy();
      await this.stopTransfers();
      // Still checking the source against the adopted prefix: the server holds exactly that.
      if (!this.crossed) return this.resumed;
      const token = suspendedUploadToken("sftp-temp", this.name, this.temp, this.acked, this.hashed);
      if (!token) await this.removeTemp().catch(() => {});
      return token;
    })();
    return this.suspending;
  }

  /**
   * Lets the pieces in flight settle (they stop retrying once stopping) and closes the file. A server
   * that leaves them unanswered past the cleanup timeout has its connection cut, which fails them; the
   * acknowledged run is what a token may name. (A hung server that wakes may still apply writes it
   * had queued: our bytes at their own offsets, or into a temp since removed.)
   */
  private async stopTransfers(): Promise<void> {
    const settled = (async () => {
      while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
      await this.closeHandle().catch(() => {});
    })();
    await this.dest.bounded(`stop upload of ${this.name}`, settled).catch(() => {});
  }

  private async removeTemp(): Promise<void> {
    await this.dest
      .op(
        `remove temp of ${this.name}`,
        (sftp) => call<void>((cb) => sftp.unlink(this.temp, (e) => cb(e, undefined))),
        { bounded: true },
      )
      .catch((err: unknown) => {
        if (!(err instanceof DestinationError && err.code === "NOT_FOUND")) throw err;
      });
  }

  abort(_reason?: unknown): Promise<void> {
    if (this.done) return Promise.resolve();
    return this.aborted.run(async () => {
      if (!this.stream.destroyed) this.stream.destroy();
      // Pending pieces stop retrying once the abort is requested; let them settle before closing the file.
      await this.stopTransfers();
      await this.suspending?.catch(() => {});
      await this.removeTemp();
    });
  }
}
