/**
 * S3 and S3-compatible storage (AWS, MinIO, R2, Spaces, GCS XML API). Uploads are our own multipart:
 * parts of `partSize` with at most `queueSize` in flight, so memory stays bounded whatever the object
 * size; nothing is visible under the final key before CompleteMultipartUpload; any failure aborts the
 * multipart upload so no orphaned parts are left to bill.
 */
import { createHash, type Hash } from "node:crypto";
import { Writable, type Readable } from "node:stream";
import { finished } from "node:stream/promises";
import { checkObjectName, normalizePrefix } from "./names";
import { runProbe } from "./probe";
import { withMappedErrors } from "./read-stream";
import { parseS3ResumeToken, type S3ResumeToken } from "./s3-resume";
import { DEFAULT_RETRY, type RetryPolicy } from "./retry";
import { escapeXml, S3Client, S3ResponseError, xmlBlocks, xmlText, type S3Request } from "./s3-client";
import {
  DestinationError,
  type Destination,
  type DestinationErrorCode,
  type ObjectInfo,
  type ObjectWriter,
  type WriterOptions,
} from "./types";
import { specUrl, type S3Spec } from "./url";

const MiB = 1024 * 1024;
const MAX_PART_SIZE = 5 * 1024 * MiB;
const AUTH_ERRORS = new Set([
  "InvalidAccessKeyId",
  "SignatureDoesNotMatch",
  "AccessDenied",
  "InvalidToken",
  "ExpiredToken",
  "Forbidden",
]);
const SPACE_ERRORS = new Set([
  "EntityTooLarge",
  "QuotaExceeded",
  "InsufficientStorage",
  "XMinioStorageFull",
  "StorageFull",
]);

/** Turn a failed call into a DestinationError that names the destination and the cause (never a secret). */
export function mapS3Error(url: string, what: string, err: unknown): DestinationError {
  if (err instanceof DestinationError) return err;
  const e = err as { name?: string; code?: string; message?: string };
  const name = err instanceof S3ResponseError ? err.code : (e?.name ?? "");
  const status = err instanceof S3ResponseError ? err.status : undefined;
  let code: DestinationErrorCode;
  if (AUTH_ERRORS.has(name) || status === 401 || status === 403) code = "AUTH_FAILED";
  else if (
    name === "NoSuchBucket" ||
    name === "NoSuchKey" ||
    name === "NotFound" ||
    name === "NoSuchUpload" ||
    status === 404
  )
    code = "NOT_FOUND";
  else if (SPACE_ERRORS.has(name) || status === 507) code = "NO_SPACE";
  else if (name === "AbortError" || e?.code === "ABORT_ERR") code = "CANCELLED";
  else if ((status !== undefined && status >= 500) || status === undefined) code = "CONNECTION_FAILED";
  else code = "PROTOCOL_ERROR";
  if (name === "InvalidObjectState") {
    return new DestinationError(
      "PROTOCOL_ERROR",
      url,
      `${what} failed: the object is in an archive storage class; restore it in S3 first`,
      { cause: err },
    );
  }
  const detail =
    name === "NoSuchBucket"
      ? "bucket does not exist"
      : `${name || "error"}${status ? ` (HTTP ${status})` : ""}: ${e?.message ?? String(err)}`;
  return new DestinationError(code, url, `${what} failed: ${detail}`, { cause: err });
}

export class S3Destination implements Destination {
  readonly url: string;
  readonly supportsRanges = true;
  readonly client: S3Client;
  private readonly prefix: string;
  private readonly retry: RetryPolicy;

  constructor(readonly spec: S3Spec) {
    this.url = specUrl(spec);
    this.prefix = normalizePrefix(spec.prefix);
    this.retry = spec.retry ?? DEFAULT_RETRY;
    this.client = new S3Client({
      bucket: spec.bucket,
      region: spec.region,
      endpoint: spec.endpoint,
      pathStyle: spec.pathStyle,
      credentials: spec.credentials,
      retry: this.retry,
      // Keep-alive sockets for the parts in flight and the control calls beside them: no
      // handshake per part. (No "Expect: 100-continue" either: one round trip per part.)
      maxSockets: spec.queueSize + 2,
    });
  }

  key(name: string): string {
    return this.prefix + checkObjectName(this.url, name);
  }

  async createWriter(name: string, opts: WriterOptions = {}): Promise<ObjectWriter> {
    return new S3Writer(this, this.key(name), name, opts);
  }

  /** Aborts a suspended multipart upload that will not be resumed, so no orphaned parts are billed. */
  async discardSuspended(token: unknown): Promise<void> {
    const t = parseS3ResumeToken(token);
    if (!t || t.bucket !== this.spec.bucket) return;
    await this.abortUpload(t.key, t.uploadId);
  }

  async abortUpload(key: string, uploadId: string): Promise<void> {
    try {
      await this.send(`abort upload of ${key}`, { method: "DELETE", key, query: { uploadId } });
    } catch (err) {
      // Already gone (completed, aborted, expired by a lifecycle rule): nothing is left to bill.
      if ((err as DestinationError).code !== "NOT_FOUND") throw err;
    }
  }

  /** The parts the server holds for an upload; null when the upload no longer exists. */
  async listParts(
    key: string,
    uploadId: string,
  ): Promise<Map<number, { etag: string; size: number }> | null> {
    const out = new Map<number, { etag: string; size: number }>();
    let marker: string | undefined;
    try {
      do {
        const page = await this.send(`list parts of ${key}`, {
          method: "GET",
          key,
          query: { uploadId, "part-number-marker": marker },
        });
        for (const p of xmlBlocks(page.text, "Part")) {
          const n = Number(xmlText(p, "PartNumber"));
          const etag = xmlText(p, "ETag");
          if (!Number.isInteger(n) || n < 1 || !etag) continue;
          out.set(n, { etag: etag.replace(/"/g, ""), size: Number(xmlText(p, "Size") ?? -1) });
        }
        const next =
          xmlText(page.text, "IsTruncated") === "true"
            ? xmlText(page.text, "NextPartNumberMarker")
            : undefined;
        // Part number markers only grow; one that does not would page forever.
        if (next !== undefined && !(Number(next) > Number(marker ?? 0)))
          throw new DestinationError(
            "PROTOCOL_ERROR",
            this.url,
            `list parts of ${key}: the part marker did not advance`,
          );
        marker = next;
      } while (marker);
    } catch (err) {
      if ((err as DestinationError).code === "NOT_FOUND") return null;
      throw err;
    }
    return out;
  }

  async createReadStream(name: string, range?: { start: number; end?: number }): Promise<Readable> {
    const key = this.key(name);
    const out = await this.send(`read ${name}`, {
      method: "GET",
      key,
      headers: { range: range ? `bytes=${range.start}-${range.end ?? ""}` : undefined },
      stream: true,
    });
    const body = out.stream!;
    // A server that ignores the range would hand over the object from byte 0 as if it were the range.
    if (range && (range.start > 0 || range.end !== undefined) && out.status !== 206) {
      body.destroy();
      throw new DestinationError(
        "PROTOCOL_ERROR",
        this.url,
        `read ${name}: the server ignored the byte range`,
      );
    }
    return withMappedErrors(body, (err) => mapS3Error(this.url, `read ${name}`, err));
  }

  async stat(name: string): Promise<ObjectInfo | null> {
    try {
      const h = await this.send(`stat ${name}`, { method: "HEAD", key: this.key(name) });
      return { name, ...sizeAndTime(h.headers) };
    } catch (err) {
      const mapped = mapS3Error(this.url, `stat ${name}`, err);
      // HEAD has no body, so a missing bucket also looks like 404: tell them apart with a list.
      if (mapped.code === "NOT_FOUND") {
        await this.list("\u0000-none-");
        return null;
      }
      throw mapped;
    }
  }

  async list(prefix = ""): Promise<ObjectInfo[]> {
    const out: ObjectInfo[] = [];
    let token: string | undefined;
    const seen = new Set<string>();
    do {
      const page = await this.send("list", {
        method: "GET",
        query: { "list-type": "2", prefix: this.prefix + prefix, "continuation-token": token },
      });
      for (const o of xmlBlocks(page.text, "Contents")) {
        const key = xmlText(o, "Key");
        if (!key?.startsWith(this.prefix)) continue;
        const modified = xmlText(o, "LastModified");
        out.push({
          name: key.slice(this.prefix.length),
          size: Number(xmlText(o, "Size") ?? 0),
          mtime: modified ? new Date(modified) : undefined,
        });
      }
      token =
        xmlText(page.text, "IsTruncated") === "true"
          ? xmlText(page.text, "NextContinuationToken")
          : undefined;
      // Storage is untrusted: a server that hands back a token it gave before would list forever.
      if (token !== undefined && seen.has(token))
        throw new DestinationError(
          "PROTOCOL_ERROR",
          this.url,
          "list: the server repeated a continuation token",
        );
      if (token !== undefined) seen.add(token);
    } while (token);
    return out;
  }

  async delete(name: string): Promise<void> {
    try {
      await this.client.send({ method: "DELETE", key: this.key(name) });
    } catch (err) {
      const mapped = mapS3Error(this.url, `delete ${name}`, err);
      if (mapped.code !== "NOT_FOUND" || (err as S3ResponseError).code === "NoSuchBucket") throw mapped;
    }
  }

  async test(): Promise<void> {
    // GLACIER and DEEP_ARCHIVE objects cannot be read back without a restore: probe in STANDARD.
    if (this.spec.storageClass === "GLACIER" || this.spec.storageClass === "DEEP_ARCHIVE") {
      const standard = new S3Destination({ ...this.spec, storageClass: undefined });
      try {
        return await runProbe(standard);
      } finally {
        await standard.close();
      }
    }
    return runProbe(this);
  }

  async close(): Promise<void> {
    this.client.close();
  }

  /** One call (the client retries transient faults); failures come back as DestinationErrors. */
  send(what: string, req: S3Request) {
    return this.client.send(req).catch((err: unknown) => {
      throw mapS3Error(this.url, what, err);
    });
  }
}

function sizeAndTime(h: Record<string, string | string[] | undefined>): { size: number; mtime?: Date } {
  const modified = typeof h["last-modified"] === "string" ? new Date(h["last-modified"]) : undefined;
  return { size: Number(h["content-length"] ?? -1), mtime: modified };
}

/** The ETag header without its quotes. */
function etagOf(h: Record<string, string | string[] | undefined>): string {
  return String(h.etag ?? "").replace(/"/g, "");
}

/** Storage class and server-side encryption, as headers of CreateMultipartUpload and PutObject. */
function storageHeaders(spec: S3Spec): Record<string, string | undefined> {
  return {
    "x-amz-storage-class": spec.storageClass,
    "x-amz-server-side-encryption": spec.sse,
    "x-amz-server-side-encryption-aws-kms-key-id": spec.sseKmsKeyId,
  };
}

/** What the stored object's ETag must be: the single PUT's MD5, or a multipart upload's. */
type EtagExpectation =
  | { single: string; multipart?: undefined; partsMatch?: undefined }
  | { single?: undefined; multipart: string; partsMatch: boolean };

class S3Writer implements ObjectWriter {
  readonly stream: Writable;
  private part?: Buffer;
  /** Part buffers whose upload finished, reused so memory stays at (queueSize + 1) parts without GC lag. */
  private readonly spare: Buffer[] = [];
  private partLen = 0;
  /** MD5 of the part being filled, fed as bytes arrive (they are still in cache): the part's Content-MD5. */
  private partMd5?: Hash;
  private total = 0;
  private uploadId?: string;
  private readonly parts: { PartNumber: number; ETag: string }[] = [];
  private readonly partMd5s: Buffer[] = [];
  private readonly inflight = new Set<Promise<void>>();
  private failure?: DestinationError;
  private aborting?: Promise<void>;
  private creating?: Promise<unknown>;
  private committed = false;
  private readonly signal?: AbortSignal;
  private readonly sizeHint?: number;
  private readonly keepOnFailure: boolean;
  private readonly onAcked?: (bytes: number) => void;
  /** What each uploaded part was, for a resume token. */
  private readonly partMeta = new Map<number, { etag: string; size: number; md5: string }>();
  /** Resume: parts the server confirmed (ListParts) and the previous attempt recorded. */
  private confirmed?: Map<number, { etag: string; size: number; md5: string }>;
  private readonly resumeToken?: S3ResumeToken;
  /** Stops in-flight part requests on suspend without aborting the upload. */
  private readonly requests = new AbortController();
  private suspending?: Promise<S3ResumeToken | undefined>;
  /** Bytes of parts the server already held and that were not sent again. */
  skippedBytes = 0;

  constructor(
    private readonly dest: S3Destination,
    private readonly key: string,
    private readonly name: string,
    opts: WriterOptions,
  ) {
    this.signal = opts.signal;
    this.sizeHint = opts.sizeHint;
    this.keepOnFailure = opts.keepOnFailure ?? false;
    this.onAcked = opts.onAcked;
    const token = opts.resume === undefined ? undefined : parseS3ResumeToken(opts.resume);
    if (token && token.bucket === dest.spec.bucket && token.key === key) this.resumeToken = token;
    const signal = this.signal;
    this.stream = new Writable({
      highWaterMark: 1024 * 1024,
      write: (chunk: Buffer, _enc, cb) => {
        this.accept(chunk).then(() => cb(), cb);
      },
    });
    signal?.addEventListener("abort", () => void this.abort(signal.reason).catch(() => {}), { once: true });
  }

  private get spec(): S3Spec {
    return this.dest.spec;
  }

  /**
   * S3 allows at most 10,000 parts. A size hint sets the part size up front; beyond that the size
   * doubles every 1,000 parts (5 MiB parts reach ~5 TiB), so a large backup never runs out of parts.
   */
  private nextPartSize(): number {
    const n = this.parts.length + this.inflight.size;
    const grown = this.spec.partSize * 2 ** Math.min(10, Math.floor(n / 1_000));
    const hinted = this.sizeHint !== undefined ? Math.ceil(this.sizeHint / 9_000 / MiB) * MiB : 0;
    return Math.min(MAX_PART_SIZE, Math.max(grown, hinted));
  }

  private async accept(chunk: Buffer): Promise<void> {
    if (this.failure) throw this.failure;
    if (this.aborting || this.suspending)
      throw new DestinationError("CANCELLED", this.dest.url, `upload of ${this.name} was aborted`);
    this.total += chunk.length;
    // Copy into one part-sized buffer: each part costs exactly partSize, no concat copies.
    let off = 0;
    while (off < chunk.length) {
      if (!this.part) {
        const size = this.nextPartSize();
        const spare = this.spare.pop();
        this.part = spare?.length === size ? spare : Buffer.allocUnsafe(size);
        this.partMd5 = createHash("md5");
      }
      const n = chunk.copy(this.part, this.partLen, off);
      this.partMd5!.update(this.part.subarray(this.partLen, this.partLen + n));
      this.partLen += n;
      off += n;
      if (this.partLen === this.part.length) {
        const { body, md5 } = this.take();
        await this.startPart(body, md5);
      }
    }
  }

  /** The bytes gathered so far (a full part, or the tail at the end) and their MD5. */
  private take(): { body: Buffer; md5: Buffer } {
    const body = this.part ? this.part.subarray(0, this.partLen) : Buffer.alloc(0);
    const md5 = (this.partMd5 ?? createHash("md5")).digest();
    this.part = undefined;
    this.partMd5 = undefined;
    this.partLen = 0;
    return { body, md5 };
  }

  /**
   * Resume: continue the recorded upload when the server still has it and the part size is the same
   * (part boundaries must line up); otherwise abort it, so no orphan is left, and start afresh.
   */
  private async adopt(t: S3ResumeToken): Promise<boolean> {
    const listed = t.partSize === this.spec.partSize ? await this.dest.listParts(this.key, t.uploadId) : null;
    if (!listed) {
      await this.dest.abortUpload(this.key, t.uploadId);
      return false;
    }
    this.confirmed = new Map();
    for (const p of t.parts) {
      const l = listed.get(p.n);
      if (l && l.etag === p.etag && l.size === p.size) this.confirmed.set(p.n, p);
    }
    this.uploadId = t.uploadId;
    return true;
  }

  private async startPart(body: Buffer, md5: Buffer): Promise<void> {
    if (this.uploadId === undefined && this.resumeToken && !this.confirmed) {
      const t = this.resumeToken;
      const adopting = this.adopt(t);
      this.creating = adopting.catch(() => {});
      if (!(await adopting)) this.confirmed = new Map();
    }
    if (this.uploadId === undefined) {
      const creating = this.dest
        .send(`start upload of ${this.name}`, {
          method: "POST",
          key: this.key,
          query: { uploads: "" },
          headers: storageHeaders(this.spec),
        })
        .then((created) => {
          const uploadId = xmlText(created.text, "UploadId");
          if (!uploadId)
            throw new DestinationError("PROTOCOL_ERROR", this.dest.url, "server returned no UploadId");
          // Set inside the promise so an abort that awaits `creating` always sees the id.
          this.uploadId = uploadId;
        });
      this.creating = creating.catch(() => {});
      await creating;
    }
    // Bounded queue: wait for a slot before buffering another part.
    while (this.inflight.size >= this.spec.queueSize) await Promise.race(this.inflight);
    if (this.failure) throw this.failure;
    if (this.aborting || this.suspending)
      throw new DestinationError("CANCELLED", this.dest.url, `upload of ${this.name} was aborted`);
    const PartNumber = this.parts.length + this.inflight.size + 1;
    this.partMd5s[PartNumber - 1] = md5;
    const md5hex = md5.toString("hex");
    // The server holds this very part (same number, size and MD5 of the bytes): do not send it again.
    const held = this.confirmed?.get(PartNumber);
    if (held && held.size === body.length && held.md5 === md5hex) {
      this.parts.push({ PartNumber, ETag: held.etag });
      this.partMeta.set(PartNumber, held);
      this.skippedBytes += body.length;
      this.onAcked?.(body.length);
      this.recycle(body);
      return;
    }
    const uploadId = this.uploadId;
    const abortSignal = this.signal
      ? AbortSignal.any([this.signal, this.requests.signal])
      : this.requests.signal;
    const p = this.dest.client
      .send({
        method: "PUT",
        key: this.key,
        query: { partNumber: String(PartNumber), uploadId },
        headers: { "content-md5": md5.toString("base64") },
        body,
        signal: abortSignal,
      })
      .then(
        (r) => {
          const etag = etagOf(r.headers);
          this.parts.push({ PartNumber, ETag: etag });
          if (etag) this.partMeta.set(PartNumber, { etag, size: body.length, md5: md5hex });
          if (this.ackedEtag(etag, md5hex)) this.onAcked?.(body.length);
        },
        (err: unknown) => {
          this.failure ??= mapS3Error(this.dest.url, `upload part ${PartNumber} of ${this.name}`, err);
          // Abort right away so parts do not linger even if the caller never calls abort(), unless the
          // caller keeps the upload for a retry (it then calls suspend() or abort() itself).
          if (!this.keepOnFailure && !this.suspending) void this.abort(this.failure).catch(() => {});
        },
      )
      .finally(() => {
        this.inflight.delete(p);
        // The request is over (retries included), so its bytes may be overwritten by the next part.
        this.recycle(body);
      });
    this.inflight.add(p);
  }

  /**
   * Progress counts a part once the server answered with the ETag its bytes must have (their MD5;
   * SSE-KMS ETags are not MD5s, any ETag there). A part answered otherwise is not counted: commit's
   * check decides about it.
   */
  private ackedEtag(etag: string, md5hex: string): boolean {
    return this.spec.sse === "aws:kms" ? etag !== "" : etag === md5hex;
  }

  private recycle(body: Buffer): void {
    if (body.byteOffset === 0 && this.spare.length < this.spec.queueSize) {
      this.spare.push(Buffer.from(body.buffer, 0, body.buffer.byteLength));
    }
  }

  /**
   * Pause: stop sending (in-flight part requests are cut; they are simply not recorded), keep the
   * multipart upload, and return what the next attempt needs. Safe to call more than once.
   */
  suspend(opts: { finishInflight?: boolean } = {}): Promise<S3ResumeToken | undefined> {
    if (this.committed || this.aborting) return Promise.resolve(undefined);
    this.suspending ??= (async () => {
      if (!this.stream.destroyed) this.stream.destroy();
      // After a failure, parts still in flight may well succeed: keep them rather than send them again.
      if (!opts.finishInflight) this.requests.abort();
      while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
      await this.creating;
      const uploadId = this.uploadId;
      if (uploadId === undefined) return undefined;
      return {
        kind: "s3-multipart" as const,
        bucket: this.spec.bucket,
        key: this.key,
        uploadId,
        partSize: this.spec.partSize,
        parts: [...this.partMeta].sort(([a], [b]) => a - b).map(([n, p]) => ({ n, ...p })),
      };
    })();
    return this.suspending;
  }

  async commit(): Promise<ObjectInfo> {
    if (this.committed)
      throw new DestinationError("PROTOCOL_ERROR", this.dest.url, `${this.name} already committed`);
    try {
      await finished(this.stream);
    } catch (err) {
      // keepOnFailure: the caller decides between suspend() (retry later) and abort().
      if (!this.keepOnFailure) await this.abort(err);
      throw this.failure ?? mapS3Error(this.dest.url, `upload of ${this.name}`, err);
    }
    if (this.aborting) {
      await this.aborting;
      throw (
        this.failure ?? new DestinationError("CANCELLED", this.dest.url, `upload of ${this.name} was aborted`)
      );
    }
    try {
      const expectedEtags = await this.finish();
      this.committed = true;
      return await this.verify(expectedEtags);
    } catch (err) {
      if (!this.committed && !this.keepOnFailure) await this.abort(err);
      throw err instanceof DestinationError ? err : mapS3Error(this.dest.url, `upload of ${this.name}`, err);
    }
  }

  /** Send the rest and make the object visible; returns what the stored object's ETag must match. */
  private async finish(): Promise<EtagExpectation> {
    if (this.uploadId === undefined) {
      const { body, md5 } = this.take();
      const put = await this.dest.send(`upload ${this.name}`, {
        method: "PUT",
        key: this.key,
        headers: { "content-md5": md5.toString("base64"), ...storageHeaders(this.spec) },
        body,
        signal: this.signal,
      });
      if (this.ackedEtag(etagOf(put.headers), md5.toString("hex"))) this.onAcked?.(body.length);
      return { single: md5.toString("hex") };
    }
    if (this.partLen > 0) {
      const { body, md5 } = this.take();
      await this.startPart(body, md5);
    }
    while (this.inflight.size > 0) await Promise.race(this.inflight);
    if (this.failure) throw this.failure;
    const parts = [...this.parts].sort((a, b) => a.PartNumber - b.PartNumber);
    const uploadId = this.uploadId;
    const list = parts
      .map((p) => `<Part><PartNumber>${p.PartNumber}</PartNumber><ETag>"${escapeXml(p.ETag)}"</ETag></Part>`)
      .join("");
    await this.dest.send(`complete upload of ${this.name}`, {
      method: "POST",
      key: this.key,
      query: { uploadId },
      headers: { "content-type": "application/xml" },
      body: Buffer.from(`<CompleteMultipartUpload>${list}</CompleteMultipartUpload>`),
      signBody: true,
    });
    this.uploadId = undefined;
    return {
      multipart: `${createHash("md5").update(Buffer.concat(this.partMd5s)).digest("hex")}-${parts.length}`,
      partsMatch: parts.every((p) => p.ETag === this.partMd5s[p.PartNumber - 1]?.toString("hex")),
    };
  }

  /**
   * Storage is untrusted: read back what it says it stored and compare with what we sent. The size
   * must match. AWS (and MinIO, R2, ...) report a multipart object's ETag as md5(part MD5s)-N: that
   * must be ours exactly. s3rver and a few other servers report the plain MD5 of the whole object
   * instead; we do not hash every byte a second time to predict it (that pass cost as much CPU as
   * the Content-MD5s themselves). There we require instead that every part's ETag was the MD5 we
   * sent for it (the server stored each part's bytes as sent; servers that check Content-MD5 also
   * refused a corrupt part on arrival), and CompleteMultipartUpload names each part by number and
   * ETag, so the server joins exactly those parts in that order; a lost, repeated or cut part
   * changes the size. Left unchecked there is only a server joining verified parts out of order:
   * encrypted archives fail authentication on that (segment nonces count up), and the archive's
   * sha256 in the backup record is checked when it is verified, restored or copied.
   */
  private async verify(expected: EtagExpectation): Promise<ObjectInfo> {
    const h = await this.dest.send(`check ${this.name}`, { method: "HEAD", key: this.key });
    const { size, mtime } = sizeAndTime(h.headers);
    const etag = etagOf(h.headers);
    // SSE-KMS ETags are not MD5s of the content, so only the size can be compared there.
    const etagComparable = this.spec.sse !== "aws:kms" && etag !== "";
    let etagProblem: string | undefined;
    if (etagComparable) {
      if (expected.single !== undefined) {
        if (etag !== expected.single) etagProblem = `etag ${etag} vs ${expected.single}`;
      } else if (/-\d+$/.test(etag)) {
        if (etag !== expected.multipart) etagProblem = `etag ${etag} vs ${expected.multipart}`;
      } else if (!expected.partsMatch) {
        etagProblem = `etag ${etag} is not multipart and the parts' etags were not their MD5s`;
      }
    }
    if (size !== this.total || etagProblem) {
      await this.dest.delete(this.name).catch(() => {});
      throw new DestinationError(
        "INTEGRITY_MISMATCH",
        this.dest.url,
        `stored ${this.name} does not match what was sent (size ${size} vs ${this.total}${etagProblem ? `, ${etagProblem}` : ""})`,
      );
    }
    return { name: this.name, size, mtime };
  }

  abort(_reason?: unknown): Promise<void> {
    if (this.committed) return Promise.resolve();
    this.aborting ??= (async () => {
      // Destroy without an error: whoever pipes into the stream sees a premature close, and an
      // abort never turns into an unhandled 'error' event.
      if (!this.stream.destroyed) this.stream.destroy();
      // Let in-flight parts settle first: a part finishing after the abort would otherwise recreate storage.
      while (this.inflight.size > 0) await Promise.allSettled([...this.inflight]);
      // An upload being created while we abort must be aborted too, or it would be orphaned.
      await this.creating;
      const uploadId = this.uploadId;
      this.uploadId = undefined;
      // abortUpload treats NoSuchUpload as done: an abort whose response was lost is retried and
      // then finds the upload gone, which is what the abort was for.
      if (uploadId !== undefined) await this.dest.abortUpload(this.key, uploadId);
    })();
    return this.aborting;
  }
}
