import { readFile } from "node:fs/promises";
import { z } from "zod";
import { HostingError } from "../sources/errors";

/** Host inventory config: what a hosting server holds. Documented in docs/HOSTING.md. */

const Domain = z
  .string()
  .regex(
    /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$/,
    "not a domain name",
  );
export const Engine = z.enum(["mysql", "postgres"]);
export type Engine = z.infer<typeof Engine>;
const AbsPath = z
  .string()
  .min(1)
  .max(4096)
  .refine((p) => p.startsWith("/"), "must be an absolute path");
// Database and server names end up in archive paths and command arguments: keep them plain.
const DbName = z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_$-]{0,63}$/, "unsupported database name");
const Name = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/);

export const DatabaseRefConfig = z.object({ engine: Engine, name: DbName, server: Name.optional() });

export const DomainConfig = z.object({
  user: z.string().max(64).optional(),
  webRoot: AbsPath.optional(),
  /** Directory holding the domain's mailboxes (`<mailbox>/Maildir`). */
  mailDir: AbsPath.optional(),
  /** Mail account configuration files or directories (passwd files, aliases, quotas...). */
  mailConfig: z.array(AbsPath).default([]),
  dnsZone: AbsPath.optional(),
  sslDir: AbsPath.optional(),
  databases: z.array(DatabaseRefConfig).default([]),
});

export const DatabaseServerConfig = z
  .object({
    name: Name,
    engine: Engine,
    host: z.string().min(1).max(255).default("127.0.0.1"),
    port: z.number().int().min(1).max(65535).optional(),
    socket: AbsPath.optional(),
    user: z.string().min(1).max(64),
    /** File holding the password (first line). Never inline: configs get shared and logged. */
    passwordFile: AbsPath.optional(),
    /** PostgreSQL: `pg_dump --exclude-table-data` patterns (noisy log tables). */
    excludeTableData: z.array(z.string().min(1).max(255)).default([]),
    /**
     * PostgreSQL: `pg_dump -Z` level inside the custom-format dump. Default 0: the archive compresses
     * with zstd anyway, and pg_dump's single-threaded zlib is the slowest step of a dump.
     */
    pgDumpCompression: z.number().int().min(0).max(9).default(0),
    /** Databases never backed up (system schemas are always skipped). */
    ignore: z.array(z.string()).default([]),
  })
  .strict();
export type DatabaseServerConfig = z.infer<typeof DatabaseServerConfig>;

/** `pattern` is a regex over the database name; `domain` may use $1.. from its groups. */
export const NamingRule = z.object({
  pattern: z.string().min(1).max(255),
  domain: z.string().min(1).max(255),
  engine: Engine.optional(),
  server: Name.optional(),
});
export type NamingRule = z.infer<typeof NamingRule>;

export const RouterConfig = z
  .object({
    name: Name,
    host: z.string().min(1).max(255),
    port: z.number().int().min(1).max(65535).default(22),
    user: z.string().min(1).max(64),
    passwordFile: AbsPath.optional(),
    privateKeyFile: AbsPath.optional(),
    /** SHA-256 of the router's host key, base64 as OpenSSH prints it (with or without `SHA256:`). */
    hostKeySha256: z.string().min(43).max(60),
    /** RouterOS command whose output is stored. */
    command: z.string().default("/export"),
    timeoutMs: z.number().int().positive().default(30_000),
  })
  .strict()
  .refine((r) => r.passwordFile || r.privateKeyFile, "router needs passwordFile or privateKeyFile");
export type RouterConfig = z.infer<typeof RouterConfig>;

export const HostConfig = z
  .object({
    /** Root of the conventional layout (`home/`, `mail/`, `dns/`, `ssl/`); discovery runs when set. */
    root: AbsPath.optional(),
    domains: z.record(Domain, DomainConfig).default({}),
    databaseServers: z.array(DatabaseServerConfig).default([]),
    databaseNaming: z.array(NamingRule).default([]),
    routers: z.array(RouterConfig).default([]),
  })
  .strict();
export type HostConfig = z.infer<typeof HostConfig>;
export type HostConfigInput = z.input<typeof HostConfig>;

export function parseHostConfig(input: unknown): HostConfig {
  const r = HostConfig.safeParse(input);
  if (!r.success) {
    const msg = r.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
    throw new HostingError("CONFIG_INVALID", `invalid host config: ${msg}`);
  }
  return r.data;
}

export async function loadHostConfig(path: string): Promise<HostConfig> {
  let text: string;
  try {
    text = await readFile(path, "utf8");
  } catch (e) {
    throw new HostingError("CONFIG_INVALID", `cannot read host config ${path}: ${(e as Error).message}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new HostingError("CONFIG_INVALID", `host config ${path} is not JSON: ${(e as Error).message}`);
  }
  return parseHostConfig(json);
}
