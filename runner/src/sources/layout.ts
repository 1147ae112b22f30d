/**
 * Archive paths of hosting components (docs/HOSTING.md, "Archive layout"). Restores find a
 * domain's and a component's entries from these paths alone, so they never depend on manifest tags.
 */
export const COMPONENTS = ["web", "db", "mail", "dns", "ssl", "router"] as const;
export type Component = (typeof COMPONENTS)[number];
export const DOMAIN_COMPONENTS = ["web", "db", "mail", "dns", "ssl"] as const;

export const PART_SIZE = 16 * 1024 * 1024;

export const domainMetaPath = (domain: string) => `${domain}/domain.json`;
export const webPath = (domain: string, rel: string) => join(`${domain}/web`, rel);
export const mailboxPath = (domain: string, rel: string) => join(`${domain}/mail/boxes`, rel);
export const mailConfigPath = (domain: string, index: number, rel: string) =>
  join(`${domain}/mail/config/${index}`, rel);
export const dnsPath = (domain: string, rel: string) => join(`${domain}/dns`, rel);
export const sslPath = (domain: string, rel: string) => join(`${domain}/ssl`, rel);
export const dbDir = (domain: string, engine: string, name: string) => `${domain}/db/${engine}/${name}`;
export const dumpPartName = (dir: string, n: number) => `${dir}/dump.part-${String(n).padStart(6, "0")}`;
export const dumpInfoName = (dir: string) => `${dir}/dump.json`;
export const routerPath = (name: string) => `router/${name}/export.rsc`;

function join(base: string, rel: string): string {
  return rel === "" || rel === "." ? base : `${base}/${rel}`;
}

export interface ParsedPath {
  domain?: string;
  component: Component | "meta";
  /** Path below the component's prefix. */
  rest: string;
}

/** Splits an archive path back into domain, component and the rest; undefined if it is not ours. */
export function parseArchivePath(name: string): ParsedPath | undefined {
  const parts = name.replace(/\/+$/, "").split("/");
  if (parts[0] === "router" && parts.length >= 2)
    return { component: "router", rest: parts.slice(1).join("/") };
  const [domain, comp, ...rest] = parts;
  if (!domain) return undefined;
  if (comp === "domain.json" && rest.length === 0) return { domain, component: "meta", rest: "" };
  if (!comp || !(DOMAIN_COMPONENTS as readonly string[]).includes(comp)) return undefined;
  return { domain, component: comp as Component, rest: rest.join("/") };
}

/** What a dump's `dump.json` records; restores refuse a dump whose parts do not match it. */
export interface DumpInfo {
  engine: "mysql" | "postgres";
  database: string;
  server: string;
  format: "mariadb-dump-sql" | "pg_dump-custom";
  parts: number;
  bytes: number;
  sha256: string;
  partSize: number;
  tool: string;
  finishedAt: string;
}

/** What `domain.json` records: where things lived, so a restore can put them back or remap them. */
export interface DomainMeta {
  domain: string;
  user?: string;
  webRoot?: string;
  mailDir?: string;
  mailConfig: string[];
  dnsZone?: string;
  sslDir?: string;
  databases: { engine: "mysql" | "postgres"; name: string; server: string }[];
  components: string[];
}
