/**
 * Google Drive (v3 REST over fetch). A name like `a/b/c.bin` lives in folders `a/b` under the
 * configured folder. Uploads are resumable sessions sent in chunks (multiples of 256 KiB, one chunk
 * in memory); the file exists only once the last chunk is accepted, which `commit()` sends, so nothing
 * is visible before commit. After a reset or 5xx the session is asked how much it holds
 * (`Content-Range: bytes *\/total`) and the upload continues from there, with bounded retries.
 * Across jobs, `suspend()` returns the session URI and a later `createWriter(..., { resume })` asks the
 * session the same question and sends only the rest; the whole object's MD5 is checked at commit.
 */
import { createHash } from "node:crypto";
import { Readable, Writable } from "node:stream";
import { finished } from "node:stream/promises";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { refreshAccessToken } from "./gdrive-oauth";
import { checkObjectName } from "./names";
import { runProbe } from "./probe";
import { withMappedErrors } from "./read-stream";
import { parseGdriveSessionToken, type GdriveSessionToken } from "./resume-tokens";
import { DEFAULT_RETRY, isTransient, withRetry, type RetryPolicy } from "./retry";
import {
  DestinationError,
  type Destination,
  type DestinationErrorCode,
  type ObjectInfo,
  type ObjectWriter,
  type WriterOptions,
} from "./types";
import { UploadAbort, uploadAborted } from "./upload-abort";
import { specUrl, type GdriveSpec } from "./url";

const FOLDER = "application/vnd.google-apps.folder";
/** Per request (one chunk at most): long enough for a slow uplink, short enough to notice a stall. */
const REQUEST_TIMEOUT_MS = 10 * 60_000;
/** Asking a session what it holds: no body either way, so a live server answers at once. */
const STATUS_TIMEOUT_MS = 30_000;
/**
 * Cancelling a session (abort, discard): bodiless too, and on the way out of a failed or cancelled
 * job, which must not wait on a server that stopped answering.
 */
const CANCEL_TIMEOUT_MS = 10_000;
const FILE_FIELDS = "id,name,size,mimeType,modifiedTime,md5Checksum";

interface DriveFile {
  id: string;
  name: string;
  size?: string;
  mimeType: string;
  modifiedTime?: string;
  md5Checksum?: string;
}

/** A response worth another try (5xx, 429, rate-limit 403). */
class RetryableHttp extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

function escapeQ(s: string): string {
  return s.replace(/\\/g, "\\\\").replace(/'/g, "\\'");
}

export class GdriveDestination implements Destination {
  readonly url: string;
  readonly supportsRanges = true;
  readonly retry: RetryPolicy;
  private token?: { value: string; expiresAt: number };
  private readonly folders = new Map<string, string>();
  /** How long a session cancel may wait for its answer. */
  readonly cancelTimeoutMs: number;

  constructor(
    readonly spec: GdriveSpec,
    opts: { cancelTimeoutMs?: number } = {},
  ) {
    this.url = specUrl(spec);
    this.retry = spec.retry ?? DEFAULT_RETRY;
    this.cancelTimeoutMs = opts.cancelTimeoutMs ?? CANCEL_TIMEOUT_MS;
  }

  private async accessToken(force = false): Promise<string> {
    if (!force && this.token && this.token.expiresAt > Date.now() + 60_000) return this.token.value;
    const t = await refreshAccessToken({
      clientId: this.spec.tokens.clientId,
      clientSecret: this.spec.tokens.clientSecret,
      refreshToken: this.spec.tokens.refreshToken,
      tokenUrl: this.spec.tokenUrl,
      label: this.url,
    });
    this.token = { value: t.accessToken, expiresAt: Date.now() + t.expiresIn * 1000 };
    return t.accessToken;
  }

  async mapHttp(what: string, res: Response): Promise<DestinationError> {
    let reason = "";
    let message = "";
    try {
      const body = (await res.json()) as {
        error?: { message?: string; errors?: { reason?: string }[]; status?: string };
      };
      reason = body.error?.errors?.[0]?.reason ?? body.error?.status ?? "";
      message = body.error?.message ?? "";
    } catch {
      /* not JSON */
    }
    let code: DestinationErrorCode = "PROTOCOL_ERROR";
    if (res.status === 401) code = "AUTH_FAILED";
    else if (res.status === 403 && /storageQuotaExceeded|quotaExceeded/i.test(reason)) code = "NO_SPACE";
    else if (res.status === 403) code = "AUTH_FAILED";
    else if (res.status === 404) code = "NOT_FOUND";
    else if (res.status >= 500 || res.status === 429) code = "CONNECTION_FAILED";
    const detail = `HTTP ${res.status}${reason ? ` ${reason}` : ""}${message ? `: ${message}` : ""}`;
    return new DestinationError(
      code,
      this.url,
      `${what} failed: ${code === "NO_SPACE" ? `Drive storage quota exceeded (${detail})` : detail}`,
    );
  }

  /** An authorized request with bounded retries on network faults and 5xx/429; one token refresh on 401. */
  async request(what: string, url: string, init: RequestInit = {}, accept: number[] = []): Promise<Response> {
    try {
      return await withRetry(
        this.retry,
        async () => {
          let res = await this.fetchAuthorized(url, init, false);
          if (res.status === 401) res = await this.fetchAuthorized(url, init, true);
          if (res.status >= 500 || res.status === 429) {
            await res.body?.cancel();
            throw new RetryableHttp(res.status, `HTTP ${res.status}`);
          }
          if (!res.ok && !accept.includes(res.status)) throw await this.mapHttp(what, res);
          return res;
        },
        {
          retryable: (err) =>
            err instanceof RetryableHttp || (!(err instanceof DestinationError) && isTransient(err)),
        },
      );
    } catch (err) {
      throw this.mapError(what, err);
    }
  }

  mapError(what: string, err: unknown): DestinationError {
    if (err instanceof DestinationError) return err;
    const detail =
      err instanceof RetryableHttp
        ? err.message
        : `${(err as Error).message}${(err as { cause?: Error }).cause ? ` (${(err as { cause: Error }).cause.message})` : ""}`;
    return new DestinationError(
      "CONNECTION_FAILED",
      this.url,
      `${what} failed after ${this.retry.attempts} tries: ${detail}`,
      { cause: err },
    );
  }

  private async fetchAuthorized(url: string, init: RequestInit, refresh: boolean): Promise<Response> {
    const token = await this.accessToken(refresh);
    return fetch(url, {
      ...init,
      headers: { ...(init.headers as Record<string, string>), authorization: `Bearer ${token}` },
    });
  }

  async json<T>(what: string, url: string, init?: RequestInit): Promise<T> {
    return (await (await this.request(what, url, init)).json()) as T;
  }

  private async children(parentId: string, filter = ""): Promise<DriveFile[]> {
    const out: DriveFile[] = [];
    let pageToken: string | undefined;
    do {
      const u = new URL(`${this.spec.apiBase}/files`);
      u.searchParams.set("q", `'${escapeQ(parentId)}' in parents and trashed = false${filter}`);
      u.searchParams.set("fields", `nextPageToken,files(${FILE_FIELDS})`);
      u.searchParams.set("pageSize", "1000");
      u.searchParams.set("supportsAllDrives", "true");
      u.searchParams.set("includeItemsFromAllDrives", "true");
      if (pageToken) u.searchParams.set("pageToken", pageToken);
      const page = await this.json<{ files: DriveFile[]; nextPageToken?: string }>("list", u.toString());
      out.push(...page.files);
      pageToken = page.nextPageToken;
    } while (pageToken);
    return out;
  }

  async checkRoot(): Promise<void> {
    const res = await this.request(
      "open folder",
      `${this.spec.apiBase}/files/${encodeURIComponent(this.spec.folderId)}?fields=id,mimeType&supportsAllDrives=true`,
      {},
      [404],
    );
    if (res.status === 404)
      throw new DestinationError(
        "NOT_FOUND",
        this.url,
        `folder ${this.spec.folderId} does not exist or is not shared with this account`,
      );
    const f = (await res.json()) as DriveFile;
    if (f.mimeType !== FOLDER)
      throw new DestinationError("NOT_FOUND", this.url, `${this.spec.folderId} is not a folder`);
  }

  /** Folder id of `dir` (`a/b`), creating missing folders when `create`; null when missing. */
  async folderId(dir: string, create: boolean): Promise<string | null> {
    if (dir === "") return this.spec.folderId;
    const cached = this.folders.get(dir);
    if (cached) return cached;
    const slash = dir.lastIndexOf("/");
    const parent = await this.folderId(slash < 0 ? "" : dir.slice(0, slash), create);
    if (parent === null) return null;
    const base = dir.slice(slash + 1);
    const found = (
      await this.children(parent, ` and name = '${escapeQ(base)}' and mimeType = '${FOLDER}'`)
    )[0];
    let id = found?.id;
    if (!id) {
      if (!create) return null;
      const made = await this.json<DriveFile>(
        "create folder",
        `${this.spec.apiBase}/files?supportsAllDrives=true&fields=id`,
        {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ name: base, mimeType: FOLDER, parents: [parent] }),
        },
      );
      id = made.id;
    }
    this.folders.set(dir, id);
    return id;
  }

  /** All files with this name (Drive allows duplicates), newest first. */
  async findFiles(name: string): Promise<DriveFile[]> {
    checkObjectName(this.url, name);
    const slash = name.lastIndexOf("/");
    const parent = await this.folderId(slash < 0 ? "" : name.slice(0, slash), false);
    if (parent === null) return [];
    const files = await this.children(
      parent,
      ` and name = '${escapeQ(name.slice(slash + 1))}' and mimeType != '${FOLDER}'`,
    );
    return files.sort((a, b) => ((a.modifiedTime ?? "") < (b.modifiedTime ?? "") ? 1 : -1));
  }

  async createWriter(name: string, opts: WriterOptions = {}): Promise<ObjectWriter> {
    checkObjectName(this.url, name);
    await this.checkRoot();
    const writerOpts = {
      signal: opts.signal,
      keepOnFailure: opts.keepOnFailure ?? false,
      onAcked: opts.onAcked,
    };
    const token =
      opts.resume === undefined
        ? undefined
        : parseGdriveSessionToken(opts.resume, name, this.spec.uploadBase);
    if (token) {
      const held = await this.sessionStatus(token.session, opts.sizeHint);
      if (held) return new GdriveWriter(this, name, token.session, writerOpts, held);
      // Expired or cancelled: a new session from zero.
    }
    const slash = name.lastIndexOf("/");
    const parent = (await this.folderId(slash < 0 ? "" : name.slice(0, slash), true)) as string;
    const res = await this.request(
      `start upload of ${name}`,
      `${this.spec.uploadBase}/files?uploadType=resumable&supportsAllDrives=true&fields=${FILE_FIELDS}`,
      {
        method: "POST",
        headers: {
          "content-type": "application/json; charset=UTF-8",
          ...(opts.sizeHint !== undefined ? { "x-upload-content-length": String(opts.sizeHint) } : {}),
        },
        body: JSON.stringify({ name: name.slice(slash + 1), parents: [parent] }),
      },
    );
    await res.body?.cancel();
    const session = res.headers.get("location");
    if (!session)
      throw new DestinationError("PROTOCOL_ERROR", this.url, `upload of ${name}: no session URL returned`);
    return new GdriveWriter(this, name, session, writerOpts);
  }

  /**
   * What an upload session holds (`PUT` with `Content-Range: bytes *\/TOTAL`, Drive v3): 308 with the
   * Range it has, or 200/201 when it already completed (then the file's metadata); null when the
   * session is gone (404/410: expired or cancelled). Retried on network faults and 5xx.
   */
  async sessionStatus(session: string, total?: number): Promise<{ offset: number; file?: DriveFile } | null> {
    try {
      return await withRetry(
        this.retry,
        async () => {
          const res = await fetch(session, {
            method: "PUT",
            headers: { "content-range": `bytes */${total ?? "*"}` },
            signal: AbortSignal.timeout(STATUS_TIMEOUT_MS),
          });
          if (res.status === 308) {
            await res.body?.cancel();
            return { offset: rangeEnd(res.headers.get("range")) };
          }
          if (res.status === 200 || res.status === 201) {
            const file = (await res.json()) as DriveFile;
            return { offset: Number(file.size ?? 0), file };
          }
          if (res.status === 404 || res.status === 410) {
            await res.body?.cancel();
            return null;
          }
          if (res.status >= 500 || res.status === 429) {
            await res.body?.cancel();
            throw new RetryableHttp(res.status, `session status HTTP ${res.status}`);
          }
          throw await this.mapHttp("upload session status", res);
        },
        {
          retryable: (err) =>
            err instanceof RetryableHttp || (!(err instanceof DestinationError) && isTransient(err)),
        },
      );
    } catch (err) {
      throw this.mapError("upload session status", err);
    }
  }

  /** Cancels a suspended upload session that will not be resumed (an unfinished session never becomes a file). */
  async discardSuspended(token: unknown): Promise<void> {
    const name = (token as { name?: unknown } | null)?.name;
    const t =
      typeof name === "string" ? parseGdriveSessionToken(token, name, this.spec.uploadBase) : undefined;
    if (!t) return;
    await this.cancelSession(t.session, `discard upload of ${t.name}`);
  }

  /**
   * Cancels an upload session (`DELETE`, Drive answers 499), within `cancelTimeoutMs`. A session
   * already gone (404/410) or any other definite answer is done with; no answer, or a 5xx/429, is a
   * CONNECTION_FAILED (the session still exists; it never becomes a file and expires on its own).
   */
  async cancelSession(session: string, what: string): Promise<void> {
    let status: number;
    try {
      const res = await fetch(session, {
        method: "DELETE",
        signal: AbortSignal.timeout(this.cancelTimeoutMs),
      });
      await res.body?.cancel();
      status = res.status;
    } catch (err) {
      const why =
        (err as Error).name === "TimeoutError"
          ? `no answer within ${this.cancelTimeoutMs / 1000} s`
          : (err as Error).message;
      throw new DestinationError(
        "CONNECTION_FAILED",
        this.url,
        `${what}: cancelling the session failed: ${why}`,
        {
          cause: err,
        },
      );
    }
    if (status >= 500 || status === 429)
      throw new DestinationError(
        "CONNECTION_FAILED",
        this.url,
        `${what}: cancelling the session failed: HTTP ${status}`,
      );
  }

  async createReadStream(name: string, range?: { start: number; end?: number }): Promise<Readable> {
    const file = (await this.findFiles(name))[0];
    if (!file) {
      await this.checkRoot();
      throw new DestinationError("NOT_FOUND", this.url, `${name} does not exist`);
    }
    const headers: Record<string, string> = range ? { range: `bytes=${range.start}-${range.end ?? ""}` } : {};
    const res = await this.request(
      `read ${name}`,
      `${this.spec.apiBase}/files/${encodeURIComponent(file.id)}?alt=media&supportsAllDrives=true`,
      { headers },
    );
    if (range && res.status !== 206)
      throw new DestinationError("PROTOCOL_ERROR", this.url, `read ${name}: server ignored the range`);
    if (!res.body) throw new DestinationError("PROTOCOL_ERROR", this.url, `read ${name}: empty response`);
    return withMappedErrors(Readable.fromWeb(res.body as unknown as WebReadableStream<Uint8Array>), (err) =>
      this.mapError(`read ${name}`, err),
    );
  }

  async stat(name: string): Promise<ObjectInfo | null> {
    const file = (await this.findFiles(name))[0];
    if (!file) {
      await this.checkRoot();
      return null;
    }
    return {
      name,
      size: Number(file.size ?? 0),
      mtime: file.modifiedTime ? new Date(file.modifiedTime) : undefined,
    };
  }

  async list(prefix = ""): Promise<ObjectInfo[]> {
    await this.checkRoot();
    const base = prefix.includes("/") ? prefix.slice(0, prefix.lastIndexOf("/")) : "";
    const start = await this.folderId(base, false);
    if (start === null) return [];
    const out = new Map<string, ObjectInfo>();
    const walk = async (id: string, rel: string): Promise<void> => {
      for (const f of await this.children(id)) {
        const relName = rel ? `${rel}/${f.name}` : f.name;
        if (f.mimeType === FOLDER) {
          if (`${relName}/`.startsWith(prefix) || prefix.startsWith(`${relName}/`)) await walk(f.id, relName);
        } else if (relName.startsWith(prefix)) {
          const info = {
            name: relName,
            size: Number(f.size ?? 0),
            mtime: f.modifiedTime ? new Date(f.modifiedTime) : undefined,
          };
          const seen = out.get(relName);
          if (!seen || (seen.mtime ?? 0) < (info.mtime ?? 0)) out.set(relName, info);
        }
      }
    };
    await walk(start, base);
    return [...out.values()].sort((a, b) => (a.name < b.name ? -1 : 1));
  }

  async deleteFile(id: string, what: string): Promise<void> {
    await this.request(
      what,
      `${this.spec.apiBase}/files/${encodeURIComponent(id)}?supportsAllDrives=true`,
      { method: "DELETE" },
      [404],
    );
  }

  async delete(name: string): Promise<void> {
    for (const f of await this.findFiles(name)) await this.deleteFile(f.id, `delete ${name}`);
  }

  test(): Promise<void> {
    return runProbe(this);
  }

  async close(): Promise<void> {}
}

class GdriveWriter implements ObjectWriter {
  readonly stream: Writable;
  private chunk: Buffer;
  private chunkLen = 0;
  /** Bytes the session has confirmed. */
  private offset = 0;
  /** MD5 of every source byte, the held ones included: compared with Drive's md5Checksum at commit. */
  private readonly md5 = createHash("md5");
  private total = 0;
  private readonly aborted = new UploadAbort();
  private suspending?: Promise<GdriveSessionToken | undefined>;
  /** Cuts the chunk in flight on pause (the session keeps what arrived). */
  private readonly requests = new AbortController();
  private sending?: Promise<unknown>;
  private done = false;
  private readonly keepOnFailure: boolean;
  private readonly onAcked?: (bytes: number) => void;
  /** Bytes reported through onAcked so far. */
  private acked = 0;
  /** A resumed session: source bytes below this are held already and not sent. */
  private readonly heldBytes: number;
  /** A resumed session that had already completed: its file, checked at commit. */
  private readonly completed?: DriveFile;
  skippedBytes = 0;

  constructor(
    private readonly dest: GdriveDestination,
    private readonly name: string,
    private readonly session: string,
    opts: { signal?: AbortSignal; keepOnFailure: boolean; onAcked?: (bytes: number) => void },
    held?: { offset: number; file?: DriveFile },
  ) {
    this.keepOnFailure = opts.keepOnFailure;
    this.onAcked = opts.onAcked;
    this.offset = this.heldBytes = held?.offset ?? 0;
    this.completed = held?.file;
    this.chunk = Buffer.allocUnsafe(dest.spec.chunkSize);
    this.stream = new Writable({
      highWaterMark: 1024 * 1024,
      write: (data: Buffer, _enc, cb) => {
        this.accept(data).then(
          () => cb(),
          (err: Error) => {
            // Kept for a later attempt when the caller asked (it then calls suspend() or abort()).
            if (!this.keepOnFailure && !this.suspending) void this.abort(err).catch(() => {});
            cb(err);
          },
        );
      },
    });
    const signal = opts.signal;
    signal?.addEventListener("abort", () => void this.abort(signal.reason).catch(() => {}), { once: true });
  }

  private async accept(input: Buffer): Promise<void> {
    if (this.aborted.requested || this.suspending) throw uploadAborted(this.dest.url, this.name);
    this.md5.update(input);
    const before = this.total;
    this.total += input.length;
    let data = input;
    if (before < this.heldBytes || this.completed) {
      const skip = this.completed ? input.length : Math.min(input.length, this.heldBytes - before);
      this.skippedBytes += skip;
      data = input.subarray(skip);
      this.reportAcked();
    }
    let off = 0;
    while (off < data.length) {
      const n = data.copy(this.chunk, this.chunkLen, off);
      this.chunkLen += n;
      off += n;
      if (this.chunkLen === this.chunk.length) {
        this.sending = this.send(this.chunk, false);
        await this.sending;
        this.chunkLen = 0;
      }
    }
  }

  /**
   * Progress: what the session confirmed (308 Range / 200), up to the source bytes seen so far (held
   * bytes of a resumed session count as the source passes them), never backwards.
   */
  private reportAcked(): void {
    const done = Math.min(this.offset, this.total);
    if (done <= this.acked) return;
    this.onAcked?.(done - this.acked);
    this.acked = done;
  }

  /** Ask the session how many bytes it holds (after a failed chunk). */
  private async queryOffset(total: string): Promise<void> {
    const res = await fetch(this.session, {
      method: "PUT",
      headers: { "content-range": `bytes */${total}` },
      signal: AbortSignal.timeout(STATUS_TIMEOUT_MS),
    });
    await res.body?.cancel();
    if (res.status === 308) this.offset = rangeEnd(res.headers.get("range"));
    else if (res.status === 200 || res.status === 201) this.offset = this.total;
    else if (res.status === 404 || res.status === 410)
      throw new DestinationError(
        "CONNECTION_FAILED",
        this.dest.url,
        `upload of ${this.name}: upload session expired`,
      );
    else throw new RetryableHttp(res.status, `session status HTTP ${res.status}`);
  }

  /** Send `buf` (the bytes from `chunkStart`); on the last chunk returns the file's metadata. */
  private async send(buf: Buffer, last: boolean): Promise<DriveFile | undefined> {
    const chunkStart = this.offset;
    const totalField = last ? String(chunkStart + buf.length) : "*";
    return withRetry(
      this.dest.retry,
      async (attempt) => {
        if (attempt > 1) await this.queryOffset(totalField);
        const from = this.offset - chunkStart;
        if (from < 0 || from > buf.length)
          throw new DestinationError(
            "PROTOCOL_ERROR",
            this.dest.url,
            `upload of ${this.name}: server offset ${this.offset} outside the chunk`,
          );
        const body = buf.subarray(from);
        if (body.length === 0 && !last) return undefined;
        const range =
          body.length > 0
            ? `bytes ${this.offset}-${this.offset + body.length - 1}/${totalField}`
            : `bytes */${totalField}`;
        const res = await fetch(this.session, {
          method: "PUT",
          headers: { "content-range": range },
          body,
          // A stalled chunk is retried (after asking the session what it has) instead of hanging the backup.
          signal: AbortSignal.any([AbortSignal.timeout(REQUEST_TIMEOUT_MS), this.requests.signal]),
        });
        if (res.status === 308) {
          await res.body?.cancel();
          this.offset = rangeEnd(res.headers.get("range"));
          this.reportAcked();
          // The server kept less than we sent: send the rest (counted as a retry).
          if (this.offset < chunkStart + buf.length)
            throw new RetryableHttp(308, "server kept part of the chunk");
          return undefined;
        }
        if (res.status === 200 || res.status === 201) {
          this.offset = chunkStart + buf.length;
          this.reportAcked();
          return (await res.json()) as DriveFile;
        }
        if (res.status >= 500 || res.status === 429) {
          await res.body?.cancel();
          throw new RetryableHttp(res.status, `HTTP ${res.status}`);
        }
        throw await this.dest.mapHttp(`upload of ${this.name}`, res);
      },
      {
        retryable: (err) =>
          !this.aborted.requested &&
          !this.suspending &&
          (err instanceof RetryableHttp || (!(err instanceof DestinationError) && isTransient(err))),
      },
    ).catch((err: unknown) => {
      throw this.dest.mapError(`upload of ${this.name}`, err);
    });
  }

  async commit(): Promise<ObjectInfo> {
    try {
      await finished(this.stream);
    } catch (err) {
      if (!this.keepOnFailure) await this.abort(err).catch(() => {});
      throw this.dest.mapError(`upload of ${this.name}`, err);
    }
    if (this.aborted.requested || this.suspending) throw uploadAborted(this.dest.url, this.name);
    let file: DriveFile | undefined = this.completed;
    try {
      if (!file) {
        this.sending = this.send(this.chunk.subarray(0, this.chunkLen), true);
        file = (await this.sending) as DriveFile | undefined;
      }
    } catch (err) {
      if (!this.keepOnFailure || (err as DestinationError).code !== "CONNECTION_FAILED")
        await this.abort(err).catch(() => {});
      throw err;
    }
    this.done = true;
    if (!file)
      throw new DestinationError(
        "PROTOCOL_ERROR",
        this.dest.url,
        `upload of ${this.name}: no file metadata after the last chunk`,
      );
    const md5 = this.md5.digest("hex");
    const size = Number(file.size ?? -1);
    // Bytes held from an earlier job were never read back: only Drive's MD5 of the whole file vouches
    // for them, so a resumed upload without one is not taken.
    const md5Missing = file.md5Checksum === undefined && this.heldBytes > 0;
    if (size !== this.total || md5Missing || (file.md5Checksum !== undefined && file.md5Checksum !== md5)) {
      await this.dest.deleteFile(file.id, `remove bad ${this.name}`).catch(() => {});
      throw new DestinationError(
        "INTEGRITY_MISMATCH",
        this.dest.url,
        `stored ${this.name} does not match what was sent (size ${size} vs ${this.total}, md5 ${file.md5Checksum ?? "?"} vs ${md5})`,
      );
    }
    // Drive keeps same-named files side by side: the new one replaces the older ones.
    for (const old of await this.dest.findFiles(this.name)) {
      if (old.id !== file.id) await this.dest.deleteFile(old.id, `replace ${this.name}`);
    }
    return { name: this.name, size, mtime: file.modifiedTime ? new Date(file.modifiedTime) : undefined };
  }

  /**
   * Stop and keep the session for a later job: the chunk in flight is cut on pause (kept to the end
   * after a failure, `finishInflight`), then the session is asked what it holds.
   */
  suspend(opts: { finishInflight?: boolean } = {}): Promise<GdriveSessionToken | undefined> {
    if (this.done || this.aborted.requested) return Promise.resolve(undefined);
    this.suspending ??= (async () => {
      if (!this.stream.destroyed) this.stream.destroy();
      if (!opts.finishInflight) this.requests.abort();
      await this.sending?.catch(() => {});
      const held = await this.dest.sessionStatus(this.session).catch(() => undefined);
      // Gone (expired, cancelled): nothing is kept on the server.
      if (held === null) return undefined;
      return {
        kind: "gdrive-session" as const,
        name: this.name,
        session: this.session,
        offset: held?.offset ?? this.offset,
      };
    })();
    return this.suspending;
  }

  abort(_reason?: unknown): Promise<void> {
    if (this.done) return Promise.resolve();
    return this.aborted.run(async () => {
      await this.suspending?.catch(() => {});
      if (!this.stream.destroyed) this.stream.destroy();
      // Cancelling the session discards what it holds; an unfinished session never becomes a file.
      await this.dest.cancelSession(this.session, `abort upload of ${this.name}`);
    });
  }
}

/** `Range: bytes=0-N` → N + 1 bytes held; no header → 0. */
function rangeEnd(header: string | null): number {
  const m = header ? /bytes=0-(\d+)/.exec(header) : null;
  return m ? Number(m[1]) + 1 : 0;
}
