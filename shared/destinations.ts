import { z } from "zod";

/**
 * Remote destinations as the control plane stores them and jobs carry them: a kind, a non-secret
 * `config` (may be shown, logged, put in a signed job) and `credentials` (write-only through the API,
 * encrypted at rest, delivered to a runner only inside a job's JWE). The runner turns the pair into
 * its DestinationSpec (runner/src/destinations/url.ts) in runner/src/jobs/remote-destination.ts.
 */

export const DESTINATION_KINDS = ["s3", "gcs", "sftp", "ftp", "ftps", "gdrive"] as const;
export const DestinationKind = z.enum(DESTINATION_KINDS);
export type DestinationKind = z.infer<typeof DestinationKind>;

/** Kinds whose objects can be handed out as a presigned GET URL. */
export const PRESIGNABLE_KINDS: readonly DestinationKind[] = ["s3", "gcs"];

const STORAGE_CLASSES = ["STANDARD", "STANDARD_IA", "GLACIER", "GLACIER_IR", "DEEP_ARCHIVE"] as const;
const Host = z
  .string()
  .min(1)
  .max(253)
  .regex(/^[A-Za-z0-9.:\-[\]]+$/, "invalid host name");
const Port = z.number().int().min(1).max(65535);
const RemotePath = z.string().min(1).max(1024).startsWith("/", "path must be absolute");
const HttpUrl = z
  .string()
  .max(2048)
  .refine(
    (s) => /^https?:\/\/[^/?#@\s]+(\/[^?#\s]*)?$/.test(s),
    "must be an http(s) URL without credentials",
  );

export const S3Config = z.strictObject({
  bucket: z.string().regex(/^[a-z0-9][a-z0-9.\-_]{1,221}[a-z0-9]$/, "invalid bucket name"),
  prefix: z
    .string()
    .max(512)
    .refine((p) => !p.split("/").includes(".."), "prefix must not contain ..")
    .default(""),
  endpoint: HttpUrl.optional(),
  region: z.string().min(1).max(64).optional(),
  pathStyle: z.boolean().default(false),
  storageClass: z.enum(STORAGE_CLASSES).optional(),
  sse: z.enum(["AES256", "aws:kms"]).optional(),
  sseKmsKeyId: z.string().max(2048).optional(),
});
export const S3Credentials = z.strictObject({
  accessKeyId: z.string().min(1).max(256),
  secretAccessKey: z.string().min(1).max(256),
  sessionToken: z.string().min(1).max(4096).optional(),
});

export const SftpConfig = z.strictObject({
  host: Host,
  port: Port.default(22),
  user: z.string().min(1).max(128),
  path: RemotePath,
  /** OpenSSH known_hosts lines for this host; absent = trust on first use, recorded by the runner. */
  knownHosts: z
    .string()
    .max(16 * 1024)
    .optional(),
});
export const SftpCredentials = z
  .strictObject({
    password: z.string().min(1).max(1024).optional(),
    privateKey: z
      .string()
      .min(1)
      .max(16 * 1024)
      .optional(),
    passphrase: z.string().max(1024).optional(),
  })
  .refine(
    (c) => c.password !== undefined || c.privateKey !== undefined,
    "sftp needs a password or a privateKey",
  );

export const FtpConfig = z.strictObject({
  host: Host,
  port: Port.default(21),
  user: z.string().min(1).max(128).default("anonymous"),
  path: RemotePath,
  /** Extra CA certificate (PEM) to trust for FTPS. */
  ca: z
    .string()
    .max(16 * 1024)
    .optional(),
});
export const FtpCredentials = z.strictObject({ password: z.string().max(1024).default("") });

export const GdriveConfig = z.strictObject({
  folderId: z.string().regex(/^[A-Za-z0-9_-]{1,256}$/, "invalid folder id"),
  /** Overridable for tests against a local Drive v3 server. */
  apiBase: HttpUrl.optional(),
  uploadBase: HttpUrl.optional(),
  tokenUrl: HttpUrl.optional(),
  /** Authorization endpoint the console sends the user to (default Google's); overridable for tests. */
  authUrl: HttpUrl.optional(),
});
export const GdriveCredentials = z.strictObject({
  clientId: z.string().min(1).max(512),
  clientSecret: z.string().min(1).max(512),
  /** Absent until the authorization-code flow started from the console has completed. */
  refreshToken: z.string().min(1).max(4096).optional(),
});

export const CONFIG_SCHEMAS = {
  s3: S3Config,
  gcs: S3Config,
  sftp: SftpConfig,
  ftp: FtpConfig,
  ftps: FtpConfig,
  gdrive: GdriveConfig,
} as const;

export const CREDENTIAL_SCHEMAS = {
  s3: S3Credentials,
  gcs: S3Credentials,
  sftp: SftpCredentials,
  ftp: FtpCredentials,
  ftps: FtpCredentials,
  gdrive: GdriveCredentials,
} as const;

/** The non-secret part of a destination as a job carries it (signed, never encrypted). */
export const RemoteDestinationSpec = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("s3"), config: S3Config }),
  z.object({ kind: z.literal("gcs"), config: S3Config }),
  z.object({ kind: z.literal("sftp"), config: SftpConfig }),
  z.object({ kind: z.literal("ftp"), config: FtpConfig }),
  z.object({ kind: z.literal("ftps"), config: FtpConfig }),
  z.object({ kind: z.literal("gdrive"), config: GdriveConfig }),
]);
export type RemoteDestinationSpec = z.infer<typeof RemoteDestinationSpec>;

/** Credentials of any kind, as they travel inside a job's JWE (checked per kind by the runner). */
export const AnyDestinationCredentials = z.record(z.string(), z.unknown());
export type AnyDestinationCredentials = z.infer<typeof AnyDestinationCredentials>;

export function parseDestinationConfig(
  kind: DestinationKind,
  config: unknown,
): { ok: true; value: Record<string, unknown> } | { ok: false; message: string } {
  const r = CONFIG_SCHEMAS[kind].safeParse(config ?? {});
  return r.success ? { ok: true, value: r.data } : { ok: false, message: issues("config", r.error) };
}

export function parseDestinationCredentials(
  kind: DestinationKind,
  credentials: unknown,
): { ok: true; value: Record<string, unknown> } | { ok: false; message: string } {
  const r = CREDENTIAL_SCHEMAS[kind].safeParse(credentials ?? {});
  // Messages name the field, never its value: credentials must not leak through an error.
  return r.success ? { ok: true, value: r.data } : { ok: false, message: issues("credentials", r.error) };
}

function issues(prefix: string, e: z.ZodError): string {
  return e.issues.map((i) => `${[prefix, ...i.path].join(".")}: ${i.message}`).join("; ");
}

/** Copy states of a backup on one destination. */
export const COPY_STATUSES = ["pending", "running", "paused", "completed", "failed"] as const;
export type CopyStatus = (typeof COPY_STATUSES)[number];

/** One copy's outcome as a runner reports it in a backup or sync job's result. */
export const CopyResult = z.object({
  destinationId: z.string().min(1).max(64),
  status: z.enum(["completed", "failed"]),
  objectName: z.string().max(1024).optional(),
  size: z.number().int().nonnegative().optional(),
  sha256: z
    .string()
    .regex(/^[0-9a-f]{64}$/)
    .optional(),
  error: z.object({ code: z.string().max(64), message: z.string().max(4096) }).optional(),
});
export type CopyResult = z.infer<typeof CopyResult>;

/** Default downloads per user per hour (setting `download.perHour`). */
export const DEFAULT_DOWNLOADS_PER_HOUR = 20;
/** Lifetime of a presigned download URL. */
export const DOWNLOAD_URL_TTL_SECONDS = 300;
