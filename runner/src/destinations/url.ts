/**
 * Destination URLs (`file:///p`, `s3://b/p`, `gs://b/p`, `sftp://u@h:port/p`, `ftp(s)://u@h:port/p`,
 * `gdrive://FOLDER`) plus their options → one typed spec. Secrets come from options, files or the
 * environment, never from the URL itself, so the URL can be printed, logged and stored as is.
 */
import { readFileSync } from "node:fs";
import { z } from "zod";
import { DestinationError } from "./types";

const retrySchema = z
  .object({
    attempts: z.number().int().min(1).max(20),
    baseDelayMs: z.number().int().min(0),
    maxDelayMs: z.number().int().min(0),
  })
  .optional();

export const STORAGE_CLASSES = ["STANDARD", "STANDARD_IA", "GLACIER", "GLACIER_IR", "DEEP_ARCHIVE"] as const;

const s3Credentials = z.object({
  accessKeyId: z.string().min(1),
  secretAccessKey: z.string().min(1),
  sessionToken: z.string().min(1).optional(),
});

export const fileSpecSchema = z.object({ type: z.literal("file"), path: z.string().startsWith("/") });

export const s3SpecSchema = z.object({
  type: z.enum(["s3", "gcs"]),
  bucket: z.string().regex(/^[a-z0-9][a-z0-9.\-_]{1,221}[a-z0-9]$/, "invalid bucket name"),
  prefix: z.string(),
  endpoint: z.url().optional(),
  region: z.string().min(1).default("us-east-1"),
  pathStyle: z.boolean().default(false),
  storageClass: z.enum(STORAGE_CLASSES).optional(),
  sse: z.enum(["AES256", "aws:kms"]).optional(),
  sseKmsKeyId: z.string().optional(),
  credentials: s3Credentials,
  /**
   * Memory bound of one upload is partSize x (queueSize + 1) (S3 requires parts >= 5 MiB except the
   * last). 5 MiB x 4, the AWS SDK's own upload defaults: 8 MiB parts took a 1 GiB backup to S3 over
   * the 256 MiB budget (and an auto-sync to two buckets pays it twice); larger objects get larger
   * parts by themselves (size hint, growth every 1,000 parts).
   */
  partSize: z
    .number()
    .int()
    .min(5 * 1024 * 1024)
    .max(5 * 1024 * 1024 * 1024)
    .default(5 * 1024 * 1024),
  queueSize: z.number().int().min(1).max(16).default(4),
  retry: retrySchema,
});

export const sftpSpecSchema = z
  .object({
    type: z.literal("sftp"),
    host: z.string().min(1),
    port: z.number().int().min(1).max(65535).default(22),
    user: z.string().min(1),
    path: z.string().min(1),
    privateKey: z.string().optional(),
    passphrase: z.string().optional(),
    password: z.string().optional(),
    /** OpenSSH known_hosts file; when absent, trust on first use recorded in `tofuStorePath`. */
    knownHostsFile: z.string().optional(),
    tofuStorePath: z.string().optional(),
    retry: retrySchema,
  })
  .refine(
    (s) => s.privateKey !== undefined || s.password !== undefined,
    "sftp needs an SSH key or a password",
  )
  .refine(
    (s) => s.knownHostsFile !== undefined || s.tofuStorePath !== undefined,
    "sftp needs a known_hosts file or a TOFU store path",
  );

export const ftpSpecSchema = z.object({
  type: z.literal("ftp"),
  secure: z.boolean(),
  host: z.string().min(1),
  port: z.number().int().min(1).max(65535).default(21),
  user: z.string().min(1).default("anonymous"),
  password: z.string().default(""),
  path: z.string().min(1),
  /** Extra CA certificates (PEM) to trust for FTPS, e.g. a self-signed server certificate. */
  ca: z.string().optional(),
  retry: retrySchema,
});

export const gdriveTokensSchema = z.object({
  clientId: z.string().min(1),
  clientSecret: z.string().min(1),
  refreshToken: z.string().min(1),
});

export const gdriveSpecSchema = z.object({
  type: z.literal("gdrive"),
  folderId: z.string().regex(/^[A-Za-z0-9_-]+$/, "invalid folder id"),
  tokens: gdriveTokensSchema,
  apiBase: z.url().default("https://www.googleapis.com/drive/v3"),
  uploadBase: z.url().default("https://www.googleapis.com/upload/drive/v3"),
  tokenUrl: z.url().default("https://oauth2.googleapis.com/token"),
  /** Upload chunk; Drive requires multiples of 256 KiB. */
  chunkSize: z
    .number()
    .int()
    .refine((n) => n > 0 && n % (256 * 1024) === 0, "chunkSize must be a multiple of 256 KiB")
    .default(8 * 1024 * 1024),
  retry: retrySchema,
});

export const destinationSpecSchema = z.union([
  fileSpecSchema,
  s3SpecSchema,
  sftpSpecSchema,
  ftpSpecSchema,
  gdriveSpecSchema,
]);

export type FileSpec = z.infer<typeof fileSpecSchema>;
export type S3Spec = z.infer<typeof s3SpecSchema>;
export type SftpSpec = z.infer<typeof sftpSpecSchema>;
export type FtpSpec = z.infer<typeof ftpSpecSchema>;
export type GdriveSpec = z.infer<typeof gdriveSpecSchema>;
export type DestinationSpec = z.infer<typeof destinationSpecSchema>;

/** What the CLI flags (or a job's decrypted params) add to a URL. File options name files to read. */
export interface DestinationOptions {
  s3Endpoint?: string;
  s3Region?: string;
  s3PathStyle?: boolean;
  s3StorageClass?: string;
  s3Sse?: string;
  s3Credentials?: { accessKeyId: string; secretAccessKey: string; sessionToken?: string };
  sshKeyFile?: string;
  sshKeyPassphrase?: string;
  passwordFile?: string;
  password?: string;
  sshKnownHostsFile?: string;
  /** Where TOFU host keys are recorded (the runner's state directory). */
  sshTofuStore?: string;
  ftpCaFile?: string;
  gdriveTokenFile?: string;
  gdriveApiBase?: string;
  gdriveUploadBase?: string;
  gdriveTokenUrl?: string;
}

const GCS_ENDPOINT = "https://storage.googleapis.com";

function fail(url: string, message: string): never {
  throw new DestinationError("PROTOCOL_ERROR", url, message);
}

function readSecretFile(url: string, path: string, what: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (err) {
    // Name the file, never its content.
    throw new DestinationError(
      "NOT_FOUND",
      url,
      `cannot read ${what} file ${path}: ${(err as NodeJS.ErrnoException).code ?? "error"}`,
    );
  }
}

/** The URL as printed: scheme, user, host, port, path; never a password or query. */
export function redactUrl(raw: string): string {
  try {
    const u = new URL(raw);
    u.password = "";
    u.search = "";
    u.hash = "";
    return u.toString();
  } catch {
    return raw.replace(/\/\/[^/@]*@/, "//***@").replace(/\?.*$/, "");
  }
}

function parseOrFail<T>(url: string, schema: z.ZodType<T>, value: unknown): T {
  const r = schema.safeParse(value);
  if (!r.success)
    fail(url, r.error.issues.map((i) => `${i.path.join(".") || "url"}: ${i.message}`).join("; "));
  return r.data;
}

export function parseDestinationUrl(
  raw: string,
  opts: DestinationOptions = {},
  env: NodeJS.ProcessEnv = process.env,
): DestinationSpec {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    return fail(
      redactUrl(raw),
      "not a destination URL (file://, s3://, gs://, sftp://, ftp://, ftps://, gdrive://)",
    );
  }
  const shown = redactUrl(raw);
  // Passwords in URLs end up in shell history, process lists and logs: refuse them outright.
  if (u.password !== "") fail(shown, "do not put a password in the URL; use --password-file");
  const path = decodeURIComponent(u.pathname);
  const password =
    opts.password ??
    (opts.passwordFile
      ? readSecretFile(shown, opts.passwordFile, "password").replace(/\r?\n$/, "")
      : undefined);

  switch (u.protocol) {
    case "file:":
      if (u.host !== "") fail(shown, "file URLs take no host: file:///absolute/path");
      return parseOrFail(shown, fileSpecSchema, { type: "file", path });
    case "s3:":
    case "gs:": {
      const gcs = u.protocol === "gs:";
      const envCreds =
        env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY
          ? {
              accessKeyId: env.AWS_ACCESS_KEY_ID,
              secretAccessKey: env.AWS_SECRET_ACCESS_KEY,
              sessionToken: env.AWS_SESSION_TOKEN || undefined,
            }
          : undefined;
      const credentials = opts.s3Credentials ?? envCreds;
      if (!credentials)
        fail(shown, "no credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (HMAC keys for gs://)");
      return parseOrFail(shown, s3SpecSchema, {
        type: gcs ? "gcs" : "s3",
        bucket: u.hostname,
        prefix: path.replace(/^\/+/, ""),
        endpoint: opts.s3Endpoint ?? (gcs ? GCS_ENDPOINT : undefined),
        region: opts.s3Region ?? (gcs ? "auto" : env.AWS_REGION || env.AWS_DEFAULT_REGION || undefined),
        pathStyle: opts.s3PathStyle ?? false,
        storageClass: opts.s3StorageClass,
        sse: opts.s3Sse,
        credentials,
      });
    }
    case "sftp:":
      return parseOrFail(shown, sftpSpecSchema, {
        type: "sftp",
        host: u.hostname,
        port: u.port ? Number(u.port) : 22,
        user: decodeURIComponent(u.username),
        path: path || "/",
        privateKey: opts.sshKeyFile ? readSecretFile(shown, opts.sshKeyFile, "SSH key") : undefined,
        passphrase: opts.sshKeyPassphrase,
        password,
        knownHostsFile: opts.sshKnownHostsFile,
        tofuStorePath: opts.sshTofuStore,
      });
    case "ftp:":
    case "ftps:":
      return parseOrFail(shown, ftpSpecSchema, {
        type: "ftp",
        secure: u.protocol === "ftps:",
        host: u.hostname,
        port: u.port ? Number(u.port) : 21,
        user: u.username ? decodeURIComponent(u.username) : "anonymous",
        password: password ?? "",
        path: path || "/",
        ca: opts.ftpCaFile ? readSecretFile(shown, opts.ftpCaFile, "CA certificate") : undefined,
      });
    case "gdrive:": {
      if (!opts.gdriveTokenFile) fail(shown, "gdrive needs --gdrive-token-file");
      let tokens: unknown;
      try {
        tokens = JSON.parse(readSecretFile(shown, opts.gdriveTokenFile, "token"));
      } catch (err) {
        if (err instanceof DestinationError) throw err;
        fail(shown, `token file ${opts.gdriveTokenFile} is not JSON`);
      }
      return parseOrFail(shown, gdriveSpecSchema, {
        type: "gdrive",
        folderId: u.hostname || path.replace(/^\/+/, ""),
        tokens,
        apiBase: opts.gdriveApiBase,
        uploadBase: opts.gdriveUploadBase,
        tokenUrl: opts.gdriveTokenUrl,
      });
    }
    default:
      return fail(shown, `unsupported scheme ${u.protocol}`);
  }
}

/** The printable URL of a spec (no secrets). */
export function specUrl(spec: DestinationSpec): string {
  const enc = (p: string) => p.split("/").map(encodeURIComponent).join("/");
  switch (spec.type) {
    case "file":
      return `file://${enc(spec.path)}`;
    case "s3":
    case "gcs":
      return `${spec.type === "gcs" ? "gs" : "s3"}://${spec.bucket}${spec.prefix ? `/${enc(spec.prefix.replace(/^\/+/, ""))}` : ""}`;
    case "sftp":
      return `sftp://${encodeURIComponent(spec.user)}@${spec.host}:${spec.port}${enc(spec.path.startsWith("/") ? spec.path : `/${spec.path}`)}`;
    case "ftp":
      return `${spec.secure ? "ftps" : "ftp"}://${encodeURIComponent(spec.user)}@${spec.host}:${spec.port}${enc(spec.path.startsWith("/") ? spec.path : `/${spec.path}`)}`;
    case "gdrive":
      return `gdrive://${spec.folderId}`;
  }
}
