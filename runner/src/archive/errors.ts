import { ArchiveErrorCode } from "../../../shared/errors";

export { ArchiveErrorCode };

/** The one error type of the archive engine; `code` is the first word of the CLI's stderr line. */
export class ArchiveError extends Error {
  constructor(
    readonly code: ArchiveErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "ArchiveError";
  }
}

export const corrupt = (msg: string) => new ArchiveError(ArchiveErrorCode.Corrupt, msg);
export const truncated = (msg: string) => new ArchiveError(ArchiveErrorCode.Truncated, msg);
export const unsafe = (msg: string) => new ArchiveError(ArchiveErrorCode.UnsafeEntry, msg);
export const wrongKey = (msg: string) => new ArchiveError(ArchiveErrorCode.WrongKey, msg);

/** Wraps aborts and unknown failures so callers always see an ArchiveError. */
export function toArchiveError(err: unknown): ArchiveError {
  if (err instanceof ArchiveError) return err;
  const e = err as { name?: string; code?: string; message?: string };
  if (e?.name === "AbortError" || e?.code === "ABORT_ERR") {
    return new ArchiveError(ArchiveErrorCode.Cancelled, "operation cancelled", { cause: err });
  }
  if (e?.code === "ENOENT")
    return new ArchiveError(ArchiveErrorCode.NotFound, e.message ?? "not found", { cause: err });
  if ((e as { code?: string })?.code === "NOT_FOUND")
    return new ArchiveError(ArchiveErrorCode.NotFound, e.message ?? "not found", { cause: err });
  return new ArchiveError(ArchiveErrorCode.Io, e?.message ?? String(err), { cause: err });
}
