/**
 * What the FTP and SFTP writers share to continue a temp-file upload in a later job (tokens:
 * resume-tokens.ts): the temp's name, the check of the source against the bytes the server holds, and
 * the token a suspended writer leaves. How each protocol reads back, appends and measures what it
 * holds stays in its own module.
 */
import { randomBytes } from "node:crypto";
import { posix } from "node:path";
import type { PrefixHash } from "./prefix-hash";
import { parseTempFileToken, type TempFileToken } from "./resume-tokens";
import { DestinationError, type WriterOptions } from "./types";

/** The options a temp-file writer keeps from WriterOptions. */
export interface TempWriterOptions {
  signal?: AbortSignal;
  keepOnFailure: boolean;
  onAcked?: (bytes: number) => void;
}

/** The writer's options, and the token to continue when `opts.resume` is one of `kind` for this object. */
export function tempWriterSetup(
  opts: WriterOptions,
  kind: TempFileToken["kind"],
  name: string,
  final: string,
): { writerOpts: TempWriterOptions; token?: TempFileToken } {
  return {
    writerOpts: { signal: opts.signal, keepOnFailure: opts.keepOnFailure ?? false, onAcked: opts.onAcked },
    token: opts.resume === undefined ? undefined : parseTempFileToken(opts.resume, kind, name, final),
  };
}

/** A new temp path beside `final`: `.<base>.part-<12 hex>`, the only form parseTempFileToken accepts. */
export function newTempPath(final: string): string {
  return posix.join(posix.dirname(final), `.${posix.basename(final)}.part-${randomBytes(6).toString("hex")}`);
}

/**
 * Once the source has reached the held offset, its bytes so far must be the ones sent before (same
 * sha256), or appending would join two different objects: the error when they are not.
 */
export function sourcePrefixMismatch(
  hashed: PrefixHash,
  t: TempFileToken,
  url: string,
  name: string,
): DestinationError | undefined {
  if (hashed.digestAt(t.offset) === t.sha256) return undefined;
  return new DestinationError(
    "INTEGRITY_MISMATCH",
    url,
    `upload of ${name}: the source's first ${t.offset} bytes differ from the ones held from the earlier attempt`,
  );
}

/** The error for a source that ended at `at` bytes, short of the `held` ones it should match. */
export function sourceEndedEarly(url: string, name: string, at: number, held: number): DestinationError {
  return new DestinationError(
    "INTEGRITY_MISMATCH",
    url,
    `upload of ${name}: the source ended at ${at} bytes, before the ${held} already held`,
  );
}

/**
 * The token of a suspended upload whose temp holds its first `offset` bytes; undefined when nothing
 * arrived or their hash has left the window (the caller then removes the temp).
 */
export function suspendedUploadToken(
  kind: TempFileToken["kind"],
  name: string,
  temp: string,
  offset: number,
  hashed: PrefixHash,
): TempFileToken | undefined {
  const sha256 = offset > 0 ? hashed.digestAt(offset) : undefined;
  return sha256 === undefined ? undefined : { kind, name, temp, offset, sha256 };
}
