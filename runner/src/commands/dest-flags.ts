import path from "node:path";
import { ArchiveError } from "../archive/errors";
import { DestinationError, type Destination } from "../destinations/types";
import type { DestinationOptions } from "../destinations/url";

/**
 * `--dest URL` and archive-location URLs on the CLI (s3://, gs://, sftp://, ftp://, ftps://, gdrive://, file://).
 * Secrets come from files or the standard AWS environment variables, never from the URL.
 * `--dest-password-file` (not `--password-file`): that flag already names the archive's encryption password.
 */
export const DEST_FLAGS = {
  "s3-endpoint": { type: "string" },
  "s3-region": { type: "string" },
  "s3-path-style": { type: "boolean" },
  "s3-storage-class": { type: "string" },
  "ssh-key": { type: "string" },
  "ssh-known-hosts": { type: "string" },
  "dest-password-file": { type: "string" },
  "ftp-ca-file": { type: "string" },
  "gdrive-token-file": { type: "string" },
  "state-dir": { type: "string" },
} as const;

type DestFlagValues = {
  [K in keyof typeof DEST_FLAGS]?: (typeof DEST_FLAGS)[K]["type"] extends "boolean" ? boolean : string;
};

export const DEST_USAGE =
  "[--s3-endpoint URL] [--s3-region R] [--s3-path-style] [--s3-storage-class C] [--ssh-key F] [--ssh-known-hosts F] [--dest-password-file F] [--ftp-ca-file F] [--gdrive-token-file F] [--state-dir DIR (TOFU host keys)]";

export const isUrl = (s: string): boolean => /^[a-z][a-z0-9+.-]*:\/\//i.test(s);

export function destOptions(v: DestFlagValues): DestinationOptions {
  const stateDir = v["state-dir"] ?? path.join(process.env.HOME ?? "/root", ".cairn");
  return {
    s3Endpoint: v["s3-endpoint"],
    s3Region: v["s3-region"],
    s3PathStyle: v["s3-path-style"],
    s3StorageClass: v["s3-storage-class"],
    sshKeyFile: v["ssh-key"],
    sshKnownHostsFile: v["ssh-known-hosts"],
    // Without pinned keys: trust on first use, remembered here; a changed key is refused.
    sshTofuStore: path.join(stateDir, "ssh-known-hosts.json"),
    passwordFile: v["dest-password-file"],
    ftpCaFile: v["ftp-ca-file"],
    gdriveTokenFile: v["gdrive-token-file"],
  };
}

/**
 * Loaded on first use: the remote destinations' clients (ssh2, basic-ftp, ...) weigh several MiB, and the
 * URL parser's zod schemas ~0.2 CPU-s of start-up that a local restore or backup does not need.
 */
export async function openDestUrl(url: string, v: DestFlagValues): Promise<Destination> {
  const { parseDestinationUrl } = await import("../destinations/url");
  const spec = parseDestinationUrl(url, destOptions(v));
  const { openDestination } = await import("../destinations/index");
  return openDestination(spec);
}

/** An archive URL is the destination URL plus the object name as its last path segment. */
export async function openArchiveUrl(
  url: string,
  v: DestFlagValues,
): Promise<{ dest: Destination; fileName: string }> {
  const u = new URL(url);
  const cut = u.pathname.lastIndexOf("/");
  const fileName = decodeURIComponent(u.pathname.slice(cut + 1));
  if (!fileName) throw new ArchiveError("USAGE", `${url}: the URL must end with the archive's file name`);
  // gdrive://FOLDER/name: the folder is the host.
  u.pathname = u.pathname.slice(0, cut) || (u.protocol === "file:" ? "/" : "");
  return { dest: await openDestUrl(u.toString(), v), fileName };
}

/** DestinationErrors keep their own code (AUTH_FAILED, NOT_FOUND, ...) on the one stderr line. */
export function destFail(err: unknown): number | undefined {
  // The archive engine wraps I/O failures; the destination's own cause is the useful code.
  let e: unknown = err;
  for (let i = 0; i < 5 && e && !(e instanceof DestinationError); i++) e = (e as { cause?: unknown }).cause;
  if (!(e instanceof DestinationError)) return undefined;
  process.stderr.write(`${e.code} ${e.message.replace(/\s+/g, " ")}\n`);
  return 1;
}

/** Flags of the commands that read one archive (verify, inspect): its key, output format and location. */
export const ARCHIVE_READ_FLAGS = {
  "password-file": { type: "string" },
  "key-file": { type: "string" },
  json: { type: "boolean" },
  ...DEST_FLAGS,
} as const;

/** The ARCHIVE argument: a local path, or a destination URL ending with the archive's file name. */
export async function archiveLocation(
  arg: string,
  v: DestFlagValues,
): Promise<{ source: string | Destination; fileName?: string; close(): Promise<void> }> {
  if (!isUrl(arg)) return { source: path.resolve(arg), close: async () => undefined };
  const { dest, fileName } = await openArchiveUrl(arg, v);
  return { source: dest, fileName, close: () => dest.close() };
}
