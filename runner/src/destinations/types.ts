/**
 * Every destination (local directory, S3, GCS, Google Drive, SFTP, FTP) implements this one
 * interface and passes the shared conformance suite. Storage is untrusted: readers verify
 * everything they read (see docs/FORMAT.md); destinations only move bytes.
 */
import type { Readable, Writable } from "node:stream";

export interface ObjectInfo {
  name: string;
  size: number;
  mtime?: Date;
}

/** An object being written. Nothing is visible under its final name until `commit()` resolves. */
export interface ObjectWriter {
  /** Write the object's bytes here; end it, then call commit(). */
  readonly stream: Writable;
  /** Finish the object (rename / complete multipart) and check its stored size. */
  commit(): Promise<ObjectInfo>;
  /** Throw away whatever was written (temp file, multipart upload). Safe to call more than once. */
  abort(reason?: unknown): Promise<void>;
  /**
   * Resumable writers only: stop without discarding what the server holds (pause, or a transient
   * failure the user may retry). Returns a token for `createWriter(..., { resume })`, free of
   * credentials, or undefined when nothing is worth keeping (then nothing is left on the server).
   */
  suspend?(opts?: { finishInflight?: boolean }): Promise<unknown>;
  /** Resumable writers: bytes the server already held from an earlier attempt and that were not sent again. */
  readonly skippedBytes?: number;
}

export interface WriterOptions {
  signal?: AbortSignal;
  sizeHint?: number;
  /** A token from an earlier `suspend()`: continue that upload where the server confirms it stands. */
  resume?: unknown;
  /** Keep the server-side upload on failure (the caller then calls suspend() or abort()). */
  keepOnFailure?: boolean;
  /**
   * Progress: called with each run of bytes (a count, not a total) the destination has acknowledged,
   * not merely taken from the stream: an S3 part answered with its expected ETag, an SFTP write the
   * server confirmed, a Drive chunk answered 308/200, bytes an earlier attempt left held on the server.
   * The sum never exceeds what was written; the object is still not final until `commit()` resolves.
   */
  onAcked?: (bytes: number) => void;
}

export interface Destination {
  /** Human-readable location without secrets, e.g. `s3://bucket/prefix`. */
  readonly url: string;
  /** True when `createReadStream` honours ranges without reading the bytes before `start`. */
  readonly supportsRanges: boolean;
  createWriter(name: string, opts?: WriterOptions): Promise<ObjectWriter>;
  /** Resumable destinations: throw away a suspended upload (its `suspend()` token) that will not be resumed. */
  discardSuspended?(token: unknown): Promise<void>;
  /** `end` is inclusive, as in HTTP ranges. */
  createReadStream(name: string, range?: { start: number; end?: number }): Promise<Readable>;
  /** null when the object does not exist. */
  stat(name: string): Promise<ObjectInfo | null>;
  list(prefix?: string): Promise<ObjectInfo[]>;
  delete(name: string): Promise<void>;
  /** Write, read back and delete a probe object; throws a DestinationError naming the cause. */
  test(): Promise<void>;
  close(): Promise<void>;
}

export type DestinationErrorCode =
  | "AUTH_FAILED"
  | "NOT_FOUND"
  | "NO_SPACE"
  | "CONNECTION_FAILED"
  | "HOST_KEY_MISMATCH"
  | "INTEGRITY_MISMATCH"
  | "PROTOCOL_ERROR"
  | "CANCELLED";

export class DestinationError extends Error {
  constructor(
    readonly code: DestinationErrorCode,
    readonly destination: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(`${destination}: ${message}`, options);
    this.name = "DestinationError";
  }
}
