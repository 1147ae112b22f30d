import { readdir, stat } from "node:fs/promises";
import { join } from "node:path";
import { listDatabases } from "../sources/db-client";
import type { DatabaseServerConfig, Engine, HostConfig, NamingRule } from "./config";

export interface DatabaseRef {
  engine: Engine;
  name: string;
  /** Name of the configured database server it lives on. */
  server: string;
}

export interface DomainInventory {
  domain: string;
  user?: string;
  webRoot?: string;
  mailDir?: string;
  mailConfig: string[];
  dnsZone?: string;
  sslDir?: string;
  databases: DatabaseRef[];
}

export interface ServerStatus {
  name: string;
  engine: Engine;
  reachable: boolean;
  databases: number;
  error?: string;
}

export interface Inventory {
  domains: DomainInventory[];
  servers: ServerStatus[];
  /** Databases found on a server that no config entry or naming rule maps to a domain. */
  unmapped: DatabaseRef[];
  routers: { name: string; host: string; port: number }[];
  warnings: string[];
}

async function isDir(p: string): Promise<boolean> {
  return (await stat(p).catch(() => null))?.isDirectory() ?? false;
}
async function isFile(p: string): Promise<boolean> {
  return (await stat(p).catch(() => null))?.isFile() ?? false;
}
async function dirNames(p: string): Promise<string[]> {
  const list = await readdir(p, { withFileTypes: true }).catch(() => []);
  return list
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .sort();
}

/** Conventional layout: home/<user>/domains/<domain>/public_html, mail/<domain>, dns/<domain>.zone, ssl/<domain>. */
async function discoverLayout(root: string): Promise<Map<string, DomainInventory>> {
  const found = new Map<string, DomainInventory>();
  const get = (domain: string) => {
    let d = found.get(domain);
    if (!d) found.set(domain, (d = { domain, mailConfig: [], databases: [] }));
    return d;
  };
  for (const user of await dirNames(join(root, "home"))) {
    for (const domain of await dirNames(join(root, "home", user, "domains"))) {
      const web = join(root, "home", user, "domains", domain, "public_html");
      if (await isDir(web)) Object.assign(get(domain), { user, webRoot: web });
    }
  }
  for (const domain of await dirNames(join(root, "mail"))) get(domain).mailDir = join(root, "mail", domain);
  const zones = await readdir(join(root, "dns")).catch(() => [] as string[]);
  for (const z of zones.sort()) {
    if (z.endsWith(".zone") && (await isFile(join(root, "dns", z))))
      get(z.slice(0, -5)).dnsZone = join(root, "dns", z);
  }
  for (const domain of await dirNames(join(root, "ssl"))) get(domain).sslDir = join(root, "ssl", domain);
  return found;
}

/** First matching naming rule decides; `$1`.. are replaced from the rule's capture groups. */
export function domainForDatabase(
  rules: NamingRule[],
  server: DatabaseServerConfig,
  db: string,
): string | undefined {
  for (const r of rules) {
    if (r.engine && r.engine !== server.engine) continue;
    if (r.server && r.server !== server.name) continue;
    const m = new RegExp(r.pattern).exec(db);
    if (m) return r.domain.replace(/\$(\d)/g, (_, i: string) => m[Number(i)] ?? "");
  }
  return undefined;
}

const validDomain = (d: string) =>
  /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)+$/.test(d);

export async function discoverInventory(opts: { root?: string; config: HostConfig }): Promise<Inventory> {
  const { config } = opts;
  const root = opts.root ?? config.root;
  const warnings: string[] = [];
  const domains = root ? await discoverLayout(root) : new Map<string, DomainInventory>();

  // Explicit config wins over discovery, field by field.
  for (const [domain, c] of Object.entries(config.domains)) {
    const d = domains.get(domain) ?? { domain, mailConfig: [], databases: [] };
    if (c.user) d.user = c.user;
    if (c.webRoot) d.webRoot = c.webRoot;
    if (c.mailDir) d.mailDir = c.mailDir;
    if (c.dnsZone) d.dnsZone = c.dnsZone;
    if (c.sslDir) d.sslDir = c.sslDir;
    d.mailConfig = [...d.mailConfig, ...c.mailConfig];
    for (const ref of c.databases) {
      const server = ref.server ?? config.databaseServers.find((s) => s.engine === ref.engine)?.name;
      if (!server) {
        warnings.push(`${domain}: database ${ref.engine}/${ref.name} has no configured ${ref.engine} server`);
        continue;
      }
      d.databases.push({ engine: ref.engine, name: ref.name, server });
    }
    domains.set(domain, d);
  }

  const servers: ServerStatus[] = [];
  const unmapped: DatabaseRef[] = [];
  for (const s of config.databaseServers) {
    let names: string[];
    try {
      names = await listDatabases(s);
    } catch (e) {
      const error = (e as Error).message;
      servers.push({ name: s.name, engine: s.engine, reachable: false, databases: 0, error });
      warnings.push(`database server ${s.name} (${s.engine}): ${error}`);
      continue;
    }
    servers.push({ name: s.name, engine: s.engine, reachable: true, databases: names.length });
    const claimed = new Set(
      [...domains.values()].flatMap((d) => d.databases.filter((r) => r.server === s.name).map((r) => r.name)),
    );
    for (const name of names) {
      if (claimed.has(name)) continue;
      const domain = domainForDatabase(config.databaseNaming, s, name);
      const ref = { engine: s.engine, name, server: s.name };
      if (!domain) {
        unmapped.push(ref);
        continue;
      }
      if (!validDomain(domain)) {
        warnings.push(`naming rule mapped ${s.name}/${name} to invalid domain ${JSON.stringify(domain)}`);
        unmapped.push(ref);
        continue;
      }
      const d = domains.get(domain) ?? { domain, mailConfig: [], databases: [] };
      d.databases.push(ref);
      domains.set(domain, d);
    }
  }
  return {
    domains: [...domains.values()].sort((a, b) => a.domain.localeCompare(b.domain)),
    servers,
    unmapped,
    routers: config.routers.map((r) => ({ name: r.name, host: r.host, port: r.port })),
    warnings,
  };
}
