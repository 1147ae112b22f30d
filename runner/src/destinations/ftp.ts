/**
 * FTP and FTPS (explicit TLS, `AUTH TLS`) through basic-ftp, always passive. Objects are uploaded to
 * `.<name>.part-<random>`, size-checked, then renamed, so no half object appears under the final
 * name. FTP cannot continue an interrupted stream upload, so a reset mid-upload fails the copy (after
 * which the temp file is removed); connecting and the other commands are retried with backoff.
 */
import { randomBytes } from "node:crypto";
import { posix } from "node:path";
import { Transform, type Readable, type Writable } from "node:stream";
import { finished } from "node:stream/promises";
import { Client, FTPError } from "basic-ftp";
import { checkObjectName, isTempName } from "./names";
import { runProbe } from "./probe";
import { DEFAULT_RETRY, isTransient, withRetry, type RetryPolicy } from "./retry";
import { DestinationError, type Destination, type ObjectInfo, type ObjectWriter } from "./types";
import { specUrl, type FtpSpec } from "./url";

const TLS_TRUST = /certificate|self[- ]signed|unable to verify|ERR_TLS|altnames/i;

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

  async createWriter(
    name: string,
    opts: { signal?: AbortSignal; sizeHint?: number } = {},
  ): Promise<ObjectWriter> {
    const final = this.path(name);
    const temp = posix.join(
      posix.dirname(final),
      `.${posix.basename(final)}.part-${randomBytes(6).toString("hex")}`,
    );
    const client = await this.connect();
    try {
      await this.checkRoot(client);
      await client.ensureDir(posix.dirname(final));
    } catch (err) {
      client.close();
      throw this.mapError(`create ${name}`, err);
    }
    return new FtpWriter(this, client, name, temp, final, opts.signal);
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
  readonly stream: Writable;
  private readonly upload: Promise<unknown>;
  private written = 0;
  private aborting?: Promise<void>;
  private tempRemoved = false;
  private done = false;

  constructor(
    private readonly dest: FtpDestination,
    private readonly client: Client,
    private readonly name: string,
    private readonly temp: string,
    private readonly final: string,
    signal?: AbortSignal,
  ) {
    // Count in a transform: a 'data' listener would start the flow before the upload is attached.
    const pass = new Transform({
      highWaterMark: 1024 * 1024,
      transform: (chunk: Buffer, _enc, cb) => {
        this.written += chunk.length;
        cb(null, chunk);
      },
    });
    this.stream = pass;
    this.upload = client.uploadFrom(pass, temp);
    this.upload.catch((err: unknown) => {
      // The server gave up (reset, disk full): fail the writer's stream and clean up the temp file.
      if (!pass.destroyed) pass.destroy(this.dest.mapError(`upload of ${this.name}`, err));
      void this.abort(err).catch(() => {});
    });
    signal?.addEventListener("abort", () => void this.abort(signal.reason).catch(() => {}), { once: true });
  }

  async commit(): Promise<ObjectInfo> {
    try {
      await finished(this.stream);
      await this.upload;
    } catch (err) {
      await this.abort(err).catch(() => {});
      throw this.dest.mapError(`upload of ${this.name}`, err);
    }
    if (this.aborting)
      throw new DestinationError("CANCELLED", this.dest.url, `upload of ${this.name} was aborted`);
    try {
      const size = await this.client.size(this.temp);
      if (size !== this.written) {
        throw new DestinationError(
          "INTEGRITY_MISMATCH",
          this.dest.url,
          `stored ${this.name} has ${size} bytes, sent ${this.written}`,
        );
      }
      try {
        await this.client.rename(this.temp, this.final);
      } catch {
        // Some servers refuse to rename over an existing file.
        await this.client.remove(this.final, true);
        await this.client.rename(this.temp, this.final);
      }
      this.done = true;
      this.client.close();
      return { name: this.name, size };
    } catch (err) {
      await this.abort(err).catch(() => {});
      throw this.dest.mapError(`upload of ${this.name}`, err);
    }
  }

  abort(_reason?: unknown): Promise<void> {
    if (this.done) return Promise.resolve();
    const previous = this.aborting;
    this.aborting = (async () => {
      await previous?.catch(() => {});
      if (this.tempRemoved) return;
      if (!this.stream.destroyed) this.stream.destroy();
      this.client.close();
      await this.upload.catch(() => {});
      // The upload's connection is gone; remove the temp file over a fresh one.
      await this.dest.op(`remove temp of ${this.name}`, (c) => c.remove(this.temp, true));
      this.tempRemoved = true;
    })();
    // A failed cleanup (server unreachable) is not remembered as done: a later abort() tries again.
    return this.aborting.catch((err: unknown) => {
      this.aborting = Promise.resolve();
      throw err;
    });
  }
}
