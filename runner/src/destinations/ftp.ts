/**
 * FTP and FTPS (explicit TLS, `AUTH TLS`) through basic-ftp, always passive. Objects are uploaded to
 * `.<name>.part-<random>`, size-checked, then renamed, so no half object appears under the final
 * name. Within one upload a reset fails the copy (the stream is gone; the temp file is removed), but a
 * caller that keeps it (`keepOnFailure`, then `suspend()`) lets the next job continue it: SIZE, read the
 * held bytes back and compare their sha256, then APPE the rest (see resume-tokens.ts). Connecting and
 * the other commands are retried with backoff.
 */
import { posix } from "node:path";
import { Transform, type Readable } from "node:stream";
import { finished } from "node:stream/promises";
import { Client, FTPError } from "basic-ftp";
import { checkObjectName, isTempName } from "./names";
import { PrefixHash } from "./prefix-hash";
import { runProbe } from "./probe";
import { suspendedTempToken, type TempFileToken } from "./resume-tokens";
import {
  newTempPath,
  sourceEndedEarly,
  sourcePrefixMismatch,
  suspendedUploadToken,
  tempWriterSetup,
  type TempWriterOptions,
} from "./resume-writer";
import { DEFAULT_RETRY, isTransient, sleep, withRetry, type RetryPolicy } from "./retry";
import {
  DestinationError,
  type Destination,
  type ObjectInfo,
  type ObjectWriter,
  type WriterOptions,
} from "./types";
import { UploadAbort, uploadAborted } from "./upload-abort";
import { specUrl, type FtpSpec } from "./url";
import { Sha256Meter } from "../util/sha256-meter";

const TLS_TRUST = /certificate|self[- ]signed|unable to verify|ERR_TLS|altnames/i;
/**
 * Sent bytes whose hash stays available for a resume token. After a cut the server holds what reached
 * its disk, which trails what we passed on by the stream and socket buffers of both sides.
 */
const HASH_WINDOW = 16 * 1024 * 1024;

export class FtpDestination implements Destination {
  readonly url: string;
  readonly supportsRanges = true;
  private readonly root: string;
  private readonly retry: RetryPolicy;

  constructor(readonly spec: FtpSpec) {
    this.url = specUrl(spec);
    this.root = posix.normalize(spec.path.startsWith("/") ? spec.path : `/${spec.path}`);
    this.retry = spec.retry ?? DEFAULT_RETRY;
  }

  mapError(what: string, err: unknown): DestinationError {
    if (err instanceof DestinationError) return err;
    const msg = (err as Error)?.message ?? String(err);
    const code = err instanceof FTPError ? err.code : undefined;
    const make = (c: DestinationError["code"], m: string) =>
      new DestinationError(c, this.url, `${what}: ${m}`, { cause: err });
    if (code === 530 || code === 532) return make("AUTH_FAILED", `login refused for user ${this.spec.user}`);
    if (code === 552 || code === 452 || /ENOSPC|no space|quota|storage allocation/i.test(msg))
      return make("NO_SPACE", "remote disk is full");
    if (code === 550) return make("NOT_FOUND", msg);
    if (TLS_TRUST.test(msg)) return make("CONNECTION_FAILED", `TLS certificate not trusted: ${msg}`);
    if (code === undefined || code === 421 || code === 425 || code === 426 || isTransient(err))
      return make("CONNECTION_FAILED", msg);
    return make("PROTOCOL_ERROR", msg);
  }

  private isRetryable(err: unknown): boolean {
    if (err instanceof FTPError) return err.code === 421 || err.code === 425 || err.code === 426;
    return isTransient(err) || /closed|timeout/i.test((err as Error)?.message ?? "");
  }

  async connect(): Promise<Client> {
    return withRetry(
      this.retry,
      async () => {
        const client = new Client(30_000);
        try {
          await client.access({
            host: this.spec.host,
            port: this.spec.port,
            user: this.spec.user,
            password: this.spec.password,
            // Explicit TLS: connect in clear, then AUTH TLS; data connections are protected too.
            secure: this.spec.secure,
            // Trust the given CA in addition to the system store; verification stays on.
            secureOptions: this.spec.ca
              ? { ca: this.spec.ca, servername: this.spec.host }
              : { servername: this.spec.host },
          });
          return client;
        } catch (err) {
          client.close();
          throw err;
        }
      },
      { retryable: (err) => this.isRetryable(err) },
    ).catch((err: unknown) => {
      throw this.mapError("connect", err);
    });
  }

  /** One connection per operation: FTP runs one command at a time per control connection. */
  async op<T>(what: string, fn: (client: Client) => Promise<T>): Promise<T> {
    return withRetry(
      this.retry,
      async () => {
        const client = await this.connect();
        try {
          return await fn(client);
        } finally {
          client.close();
        }
      },
      { retryable: (err) => !(err instanceof DestinationError) && this.isRetryable(err) },
    ).catch((err: unknown) => {
      throw this.mapError(what, err);
    });
  }

  path(name: string): string {
    return posix.join(this.root, checkObjectName(this.url, name));
  }

  async checkRoot(client: Client): Promise<void> {
    try {
      await client.cd(this.root);
    } catch (err) {
      throw new DestinationError("NOT_FOUND", this.url, `remote path ${this.root} does not exist`, {
        cause: err,
      });
    }
  }

  async createWriter(name: string, opts: WriterOptions = {}): Promise<ObjectWriter> {
    const final = this.path(name);
    const { writerOpts, token } = tempWriterSetup(opts, "ftp-temp", name, final);
    if (token) {
      // The upload connection opens when the source reaches the held offset (hashing a long prefix
      // must not leave an idle transfer to time out).
      if (await this.op(`resume ${name}`, (c) => this.heldPrefixMatches(c, token)))
        return new FtpWriter(this, undefined, name, token.temp, final, writerOpts, token);
      // Missing, of another size, or not the bytes we sent: never build on it. Start again from zero.
      await this.op(`remove temp of ${name}`, (c) => c.remove(token.temp, true)).catch(() => {});
    }
    const temp = newTempPath(final);
    const client = await this.connect();
    try {
      await this.checkRoot(client);
      await client.ensureDir(posix.dirname(final));
    } catch (err) {
      client.close();
      throw this.mapError(`create ${name}`, err);
    }
    return new FtpWriter(this, client, name, temp, final, writerOpts);
  }

  /**
   * APPE continues at the server's end of file and FTP cannot truncate, so the temp must hold exactly
   * `offset` bytes; they are downloaded and hashed (the storage is untrusted: SIZE proves nothing).
   */
  async heldPrefixMatches(client: Client, t: TempFileToken): Promise<boolean> {
    let size: number;
    try {
      size = await client.size(t.temp);
    } catch (err) {
      if (err instanceof FTPError && err.code === 550) return false;
      throw err;
    }
    if (size !== t.offset) return false;
    const sink = new Sha256Meter({ discard: true });
    await client.downloadTo(sink, t.temp);
    return sink.size === t.offset && sink.digest() === t.sha256;
  }

  /** Removes the temp file of a suspended upload that will not be resumed. */
  async discardSuspended(token: unknown): Promise<void> {
    const t = suspendedTempToken(token, "ftp-temp", (n) => this.path(n));
    if (!t) return;
    await this.op(`remove temp of ${t.name}`, (c) => this.removeFile(c, t.temp));
  }

  /**
   * DELE, failing unless the file is gone afterwards: 550 answers both "no such file" and "not
   * allowed" (and some servers refuse a file still open after a cut), so only a SIZE that no longer
   * finds it tells a refusal from a file that was already gone.
   */
  async removeFile(client: Client, path: string): Promise<void> {
    try {
      await client.remove(path);
    } catch (err) {
      if (!(err instanceof FTPError)) throw err;
      const stillThere = await client.size(path).then(
        () => true,
        (e: unknown) => {
          if (e instanceof FTPError && e.code === 550) return false;
          throw e;
        },
      );
      if (stillThere)
        throw new DestinationError(
          "PROTOCOL_ERROR",
          this.url,
          `the server refused to delete ${posix.basename(path)}: ${err.message}`,
          { cause: err },
        );
    }
  }

  async createReadStream(name: string, range?: { start: number; end?: number }): Promise<Readable> {
    const p = this.path(name);
    const client = await this.connect();
    const close = () => client.close();
    try {
      await client.size(p);
    } catch (err) {
      close();
      throw this.mapError(`read ${name}`, err);
    }
    const start = range?.start ?? 0;
    let left = range?.end !== undefined ? range.end - start + 1 : Infinity;
    // REST gives the start; FTP has no end offset, so stop reading once the range is complete.
    const out = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        if (left <= 0) return cb();
        const piece = chunk.length > left ? chunk.subarray(0, left) : chunk;
        left -= piece.length;
        cb(null, piece);
        if (left <= 0) {
          this.push(null);
          close();
        }
      },
    });
    client
      .downloadTo(out, p, start)
      .then(() => {
        close();
        if (!out.writableEnded) out.end();
      })
      .catch((err: unknown) => {
        close();
        if (left > 0) out.destroy(this.mapError(`read ${name}`, err));
      });
    return out;
  }

  async stat(name: string): Promise<ObjectInfo | null> {
    const p = this.path(name);
    return this.op(`stat ${name}`, async (client) => {
      await this.checkRoot(client);
      try {
        return { name, size: await client.size(p) };
      } catch (err) {
        if (err instanceof FTPError && err.code === 550) return null;
        throw err;
      }
    });
  }

  async list(prefix = ""): Promise<ObjectInfo[]> {
    const base = prefix.includes("/") ? prefix.slice(0, prefix.lastIndexOf("/")) : "";
    return this.op("list", async (client) => {
      await this.checkRoot(client);
      const out: ObjectInfo[] = [];
      const walk = async (rel: string): Promise<void> => {
        let entries;
        try {
          entries = await client.list(rel ? posix.join(this.root, rel) : this.root);
        } catch (err) {
          if (err instanceof FTPError && err.code === 550 && rel !== "") return;
          throw err;
        }
        for (const e of entries) {
          if (e.name === "." || e.name === "..") continue;
          const relName = rel ? `${rel}/${e.name}` : e.name;
          if (e.isDirectory) {
            if (`${relName}/`.startsWith(prefix) || prefix.startsWith(`${relName}/`)) await walk(relName);
          } else if (e.isFile && relName.startsWith(prefix) && !isTempName(relName)) {
            out.push({ name: relName, size: e.size, mtime: e.modifiedAt });
          }
        }
      };
      await walk(base);
      return out.sort((a, b) => (a.name < b.name ? -1 : 1));
    });
  }

  async delete(name: string): Promise<void> {
    const p = this.path(name);
    await this.op(`delete ${name}`, async (client) => {
      await client.remove(p, true);
    });
  }

  test(): Promise<void> {
    return runProbe(this);
  }

  async close(): Promise<void> {}
}

class FtpWriter implements ObjectWriter {
  readonly stream: Transform;
  /** Set once the transfer starts: at once for a new upload, at the held offset for a resumed one. */
  private upload?: Promise<unknown>;
  /** Source bytes seen (a resumed writer counts the held prefix too): the size the object must have. */
  private written = 0;
  /** Hashes what passes; keeps the last HASH_WINDOW bytes only for a writer that may be suspended. */
  private readonly hashed: PrefixHash;
  /** The held prefix checked against the source (always true for a new upload). */
  private crossed: boolean;
  private readonly keepOnFailure: boolean;
  private readonly onAcked?: (bytes: number) => void;
  /** Bytes reported through onAcked so far. */
  private acked = 0;
  private readonly aborted = new UploadAbort();
  private suspending?: Promise<TempFileToken | undefined>;
  private done = false;
  skippedBytes = 0;

  constructor(
    private readonly dest: FtpDestination,
    private client: Client | undefined,
    private readonly name: string,
    private readonly temp: string,
    private readonly final: string,
    opts: TempWriterOptions,
    /** The adopted token of a resumed upload: the temp holds (verified) exactly its first `offset` bytes. */
    private readonly resumed?: TempFileToken,
  ) {
    this.keepOnFailure = opts.keepOnFailure;
    this.onAcked = opts.onAcked;
    this.hashed = new PrefixHash(opts.keepOnFailure ? HASH_WINDOW : 0);
    this.crossed = resumed === undefined;
    // Count in a transform: a 'data' listener would start the flow before the upload is attached.
    this.stream = new Transform({
      highWaterMark: 1024 * 1024,
      transform: (chunk: Buffer, _enc, cb) => {
        const start = this.written;
        this.written += chunk.length;
        this.hashed.update(chunk);
        if (this.crossed) return cb(null, chunk);
        const t = this.resumed as TempFileToken;
        if (this.written < t.offset) return cb();
        const mismatch = sourcePrefixMismatch(this.hashed, t, this.dest.url, this.name);
        if (mismatch) return cb(mismatch);
        this.crossed = true;
        this.skippedBytes = t.offset;
        this.ackTo(t.offset);
        this.startUpload("APPE");
        cb(null, chunk.subarray(t.offset - start));
      },
      // The transfer may destroy this stream with a raw socket error: callers see it mapped.
      destroy: (err, cb) => cb(err ? this.dest.mapError(`upload of ${this.name}`, err) : null),
      flush: (cb) => {
        if (this.crossed) return cb();
        cb(sourceEndedEarly(this.dest.url, this.name, this.written, (this.resumed as TempFileToken).offset));
      },
    });
    // FTP acknowledges nothing per write: bytes handed to the data socket are the best the protocol
    // offers (the pipe into the socket stops at its buffer, so they run at most that far ahead); only
    // the reply to STOR/APPE and commit's SIZE check confirm what was stored. Counted from the
    // transfer's own 'data' events, joined once it flows: listening earlier would start the flow.
    if (opts.onAcked) {
      let sent = resumed?.offset ?? 0;
      this.stream.once("resume", () =>
        this.stream.on("data", (chunk: Buffer) => {
          sent += chunk.length;
          this.ackTo(sent);
        }),
      );
    }
    if (!resumed) this.startUpload("STOR");
    opts.signal?.addEventListener("abort", () => void this.abort(opts.signal?.reason).catch(() => {}), {
      once: true,
    });
  }

  /** Reports progress up to `total` bytes of the object (held prefix included), never backwards. */
  private ackTo(total: number): void {
    if (total <= this.acked) return;
    this.onAcked?.(total - this.acked);
    this.acked = total;
  }

  private startUpload(command: "STOR" | "APPE"): void {
    const run = async () => {
      this.client ??= await this.dest.connect();
      return command === "STOR"
        ? this.client.uploadFrom(this.stream, this.temp)
        : this.client.appendFrom(this.stream, this.temp);
    };
    const upload = run();
    this.upload = upload;
    upload.catch((err: unknown) => {
      // The server gave up (reset, disk full): fail the writer's stream; clean up the temp file unless
      // the caller keeps it for a later attempt (it then calls suspend() or abort() itself).
      if (!this.stream.destroyed) this.stream.destroy(this.dest.mapError(`upload of ${this.name}`, err));
      if (!this.keepOnFailure && !this.suspending) void this.abort(err).catch(() => {});
    });
  }

  async commit(): Promise<ObjectInfo> {
    try {
      await finished(this.stream);
      await this.upload;
    } catch (err) {
      if (!this.keepOnFailure) await this.abort(err).catch(() => {});
      throw this.dest.mapError(`upload of ${this.name}`, err);
    }
    if (this.aborted.requested || this.suspending) throw uploadAborted(this.dest.url, this.name);
    try {
      const client = this.client as Client;
      const size = await client.size(this.temp);
      if (size !== this.written) {
        throw new DestinationError(
          "INTEGRITY_MISMATCH",
          this.dest.url,
          `stored ${this.name} has ${size} bytes, sent ${this.written}`,
        );
      }
      try {
        await client.rename(this.temp, this.final);
      } catch {
        // Some servers refuse to rename over an existing file.
        await client.remove(this.final, true);
        await client.rename(this.temp, this.final);
      }
      this.done = true;
      client.close();
      return { name: this.name, size };
    } catch (err) {
      await this.abort(err).catch(() => {});
      throw this.dest.mapError(`upload of ${this.name}`, err);
    }
  }

  /** SIZE until two reads agree: after a cut the server may still be writing what it had received. */
  private async settledSize(): Promise<number> {
    let last = -1;
    for (let i = 0; i < 10; i++) {
      const size = await this.dest.op(`check ${this.name}`, (c) => c.size(this.temp));
      if (size === last) return size;
      last = size;
      await sleep(200);
    }
    return last;
  }

  /**
   * Stop and keep the temp file for a later job: the token names it with the size the server settled
   * on and the sha256 of our first that many bytes. When that size left the hash window (or nothing
   * arrived) the temp is removed and undefined returned. A temp whose size cannot be read (server out
   * of reach) or that cannot be removed is never left without a token: its token names the bytes
   * passed on toward the server instead, so the next job continues it if the server holds exactly
   * those (checked like any token) and removes it otherwise, and a discard deletes it.
   */
  suspend(): Promise<TempFileToken | undefined> {
    if (this.done || this.aborted.requested) return Promise.resolve(undefined);
    this.suspending ??= (async () => {
      const passedOn = this.written - this.stream.readableLength;
      if (!this.stream.destroyed) this.stream.destroy();
      this.client?.close();
      await this.upload?.catch(() => {});
      // Still checking the source against the adopted prefix: nothing was appended.
      if (!this.crossed) return this.resumed;
      const size = await this.settledSize().catch((err: unknown) => err);
      if (typeof size === "number") {
        const token = suspendedUploadToken("ftp-temp", this.name, this.temp, size, this.hashed);
        if (token) return token;
      }
      const guess = suspendedUploadToken("ftp-temp", this.name, this.temp, passedOn, this.hashed);
      // Out of reach for SIZE: a DELE would only wait out the same retries.
      const unreachable = size instanceof DestinationError && size.code === "CONNECTION_FAILED";
      if (guess && unreachable) return guess;
      const removed = await this.removeTemp().then(
        () => true,
        () => false,
      );
      // Nothing passed on (so no token can name the temp): at worst an empty temp is left.
      return removed ? undefined : guess;
    })();
    return this.suspending;
  }

  private async removeTemp(): Promise<void> {
    await this.dest.op(`remove temp of ${this.name}`, (c) => this.dest.removeFile(c, this.temp));
  }

  abort(_reason?: unknown): Promise<void> {
    if (this.done) return Promise.resolve();
    return this.aborted.run(async () => {
      await this.suspending?.catch(() => {});
      if (!this.stream.destroyed) this.stream.destroy();
      this.client?.close();
      await this.upload?.catch(() => {});
      // The upload's connection is gone; remove the temp file over a fresh one.
      await this.removeTemp();
    });
  }
}
