/**
 * Resume tokens of the streaming destinations (what `suspend()` returns and `createWriter(..., { resume })`
 * continues). They live in the runner's 0600 state file, never on the storage. None is trusted blindly:
 * - SFTP / FTP: the temp file and the sha256 of the first `offset` bytes as we sent them. On resume the
 *   server's bytes are read back and hashed (the storage is untrusted: a size or a server-side claim
 *   proves nothing), and the source's first `offset` bytes must hash the same before anything is appended.
 * - Drive: the resumable session URI (a capability for this one upload, valid about a week; no account
 *   credential). The session is asked what it holds; the whole object's MD5 is checked at commit.
 * A token that does not parse, or names another object or place, is ignored (the upload restarts).
 */
import { posix } from "node:path";
import { z } from "zod";
import { parseS3ResumeToken } from "./s3-resume";

const sha256Hex = z.string().regex(/^[0-9a-f]{64}$/);

export const TempFileToken = z.object({
  kind: z.enum(["sftp-temp", "ftp-temp"]),
  name: z.string().min(1),
  /** Absolute remote path of the `.<name>.part-<hex>` file beside the final name. */
  temp: z.string().min(1),
  offset: z.number().int().positive(),
  sha256: sha256Hex,
});
export type TempFileToken = z.infer<typeof TempFileToken>;

export const GdriveSessionToken = z.object({
  kind: z.literal("gdrive-session"),
  name: z.string().min(1),
  session: z.url(),
  /** What the session confirmed when suspended (shown as progress; the session is asked again). */
  offset: z.number().int().nonnegative(),
});
export type GdriveSessionToken = z.infer<typeof GdriveSessionToken>;

/**
 * The token when it is a temp-file token of `kind` for object `name` whose temp path is the one this
 * writer would use (beside `final`, `.<base>.part-<12 hex>`): a token can never point a writer elsewhere.
 */
export function parseTempFileToken(
  token: unknown,
  kind: TempFileToken["kind"],
  name: string,
  final: string,
): TempFileToken | undefined {
  const r = TempFileToken.safeParse(token);
  if (!r.success || r.data.kind !== kind || r.data.name !== name) return undefined;
  const base = posix.basename(r.data.temp);
  const m = /^\.(.+)\.part-[0-9a-f]{12}$/.exec(base);
  if (posix.dirname(r.data.temp) !== posix.dirname(final) || m?.[1] !== posix.basename(final))
    return undefined;
  return r.data;
}

/**
 * A saved temp-file token of `kind` that a discard may act on: its object name must be valid here
 * (`path` throws otherwise) and its temp must sit beside that object's final path.
 */
export function suspendedTempToken(
  token: unknown,
  kind: TempFileToken["kind"],
  path: (name: string) => string,
): TempFileToken | undefined {
  const name = (token as { name?: unknown } | null)?.name;
  if (typeof name !== "string") return undefined;
  let final: string;
  try {
    final = path(name);
  } catch {
    return undefined;
  }
  return parseTempFileToken(token, kind, name, final);
}

/** The session token for `name` when its URI is an upload session of this Drive API (same origin and path). */
export function parseGdriveSessionToken(
  token: unknown,
  name: string,
  uploadBase: string,
): GdriveSessionToken | undefined {
  const r = GdriveSessionToken.safeParse(token);
  if (!r.success || r.data.name !== name) return undefined;
  const u = new URL(r.data.session);
  const base = new URL(`${uploadBase.replace(/\/+$/, "")}/files`);
  return u.origin === base.origin && u.pathname === base.pathname && u.searchParams.has("upload_id")
    ? r.data
    : undefined;
}

/** Bytes a token says the server holds (progress and the saved state's `bytesDone`), 0 if unknown. */
export function resumeTokenBytes(token: unknown): number {
  const s3 = parseS3ResumeToken(token);
  if (s3) return s3.parts.reduce((n, p) => n + p.size, 0);
  const t = TempFileToken.safeParse(token);
  if (t.success) return t.data.offset;
  const g = GdriveSessionToken.safeParse(token);
  return g.success ? g.data.offset : 0;
}
