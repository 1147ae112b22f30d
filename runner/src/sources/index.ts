import type { ArchiveEntry, BackupResult } from "../archive/types";
import type { HostConfig } from "../inventory/config";
import type { DomainInventory, Inventory } from "../inventory/discover";
import { dnsEntries } from "./dns";
import { HostingError } from "./errors";
import { COMPONENTS, domainMetaPath, type Component, type DomainMeta } from "./layout";
import { mailEntries } from "./mail";
import { mysqlEntries } from "./mysql";
import { postgresEntries } from "./postgres";
import { routerEntries } from "./router";
import { sslEntries } from "./ssl";
import { webEntries } from "./web";

export { HostingError } from "./errors";
export * from "./layout";

export interface Selection {
  /** "all" or a list of domain names. */
  domains: "all" | string[];
  /** Any subset of web, db, mail, dns, ssl, router. */
  components: Component[];
}

export const ALL_COMPONENTS: Component[] = [...COMPONENTS];

export interface ComponentFailure {
  domain?: string;
  component: Component;
  /** Database or router name when the failure is about one of them. */
  item?: string;
  code: string;
  reason: string;
}

/** Filled while the entries are consumed; read it after the archive is finished. */
export interface SourceReport {
  failures: ComponentFailure[];
  /** One line per failure (what goes into BackupResult.warnings), plus notices such as skipped sockets. */
  warnings: string[];
  domains: string[];
  components: Component[];
}

// Names reach archive paths and client arguments; '=' would make pg_dump read a conninfo string.
const SAFE_DB = /^[A-Za-z0-9_][A-Za-z0-9_$.-]{0,63}$/;

export function parseSelection(domains: string | undefined, components: string | undefined): Selection {
  const comps =
    (components ?? "all") === "all"
      ? ALL_COMPONENTS
      : components!
          .split(",")
          .map((c) => c.trim())
          .filter(Boolean);
  for (const c of comps) {
    if (!(COMPONENTS as readonly string[]).includes(c)) {
      throw new HostingError(
        "CONFIG_INVALID",
        `unknown component ${JSON.stringify(c)} (expected ${COMPONENTS.join(",")})`,
      );
    }
  }
  const doms =
    (domains ?? "all") === "all"
      ? "all"
      : domains!
          .split(",")
          .map((d) => d.trim())
          .filter(Boolean);
  return { domains: doms, components: comps as Component[] };
}

export function selectDomains(inv: Inventory, sel: Selection): DomainInventory[] {
  if (sel.domains === "all") return inv.domains;
  const unknown = sel.domains.filter((d) => !inv.domains.some((x) => x.domain === d));
  if (unknown.length) throw new HostingError("CONFIG_INVALID", `unknown domain(s): ${unknown.join(", ")}`);
  return inv.domains.filter((d) => sel.domains.includes(d.domain));
}

function metaEntry(d: DomainInventory, components: Component[]): ArchiveEntry {
  const meta: DomainMeta = { ...d, components };
  const data = Buffer.from(JSON.stringify(meta, null, 2) + "\n");
  return {
    name: domainMetaPath(d.domain),
    type: "file",
    size: data.length,
    mode: 0o600,
    uid: process.getuid?.() ?? 0,
    gid: process.getgid?.() ?? 0,
    mtime: new Date(),
    component: "meta",
    domain: d.domain,
    body: { kind: "buffer", data },
  };
}

/**
 * The entry stream of a hosting backup: per selected domain its `domain.json` and then each selected
 * component; then routers. A component that fails is recorded in the report and the stream goes on
 * with the next one, so one dead database server never sinks the web files or mail.
 */
export function hostingEntries(opts: {
  inventory: Inventory;
  config: HostConfig;
  selection: Selection;
  partSize?: number;
}): { entries: AsyncIterable<ArchiveEntry>; report: SourceReport } {
  const { inventory, config, selection } = opts;
  const domains = selectDomains(inventory, selection);
  const want = new Set(selection.components);
  const report: SourceReport = {
    failures: [],
    warnings: [],
    domains: domains.map((d) => d.domain),
    components: [...want],
  };
  const notice = (m: string) => report.warnings.push(m);
  const fail = (f: Omit<ComponentFailure, "code" | "reason">, e: unknown) => {
    const code = e instanceof HostingError ? e.code : "SOURCE_FAILED";
    const reason = (e as Error).message ?? String(e);
    report.failures.push({ ...f, code, reason });
    const where = [f.domain, f.component, f.item].filter(Boolean).join(" ");
    report.warnings.push(`${where} failed (${code}): ${reason}`);
  };

  async function* guarded(
    gen: () => AsyncIterable<ArchiveEntry>,
    f: Omit<ComponentFailure, "code" | "reason">,
  ) {
    try {
      yield* gen();
    } catch (e) {
      fail(f, e);
    }
  }

  async function* run(): AsyncGenerator<ArchiveEntry> {
    const comps = selection.components.filter((c) => c !== "router");
    for (const d of comps.length ? domains : []) {
      yield metaEntry(d, comps);
      const domain = d.domain;
      if (want.has("web") && d.webRoot)
        yield* guarded(() => webEntries(d, notice), { domain, component: "web" });
      if (want.has("db")) {
        for (const ref of d.databases) {
          const item = `${ref.engine}/${ref.name}`;
          const server = config.databaseServers.find((s) => s.name === ref.server);
          if (!server) {
            fail(
              { domain, component: "db", item },
              new HostingError("CONFIG_INVALID", `no database server named ${ref.server}`),
            );
            continue;
          }
          if (!SAFE_DB.test(ref.name)) {
            fail(
              { domain, component: "db", item },
              new HostingError(
                "CONFIG_INVALID",
                `database name ${JSON.stringify(ref.name)} is not supported`,
              ),
            );
            continue;
          }
          const gen = () =>
            ref.engine === "mysql"
              ? mysqlEntries(server, domain, ref.name, { partSize: opts.partSize })
              : postgresEntries(server, domain, ref.name, { partSize: opts.partSize });
          yield* guarded(gen, { domain, component: "db", item });
        }
      }
      if (want.has("mail") && (d.mailDir || d.mailConfig.length))
        yield* guarded(() => mailEntries(d, notice), { domain, component: "mail" });
      if (want.has("dns") && d.dnsZone) yield* guarded(() => dnsEntries(d), { domain, component: "dns" });
      if (want.has("ssl") && d.sslDir) yield* guarded(() => sslEntries(d), { domain, component: "ssl" });
    }
    if (want.has("router")) {
      for (const r of config.routers)
        yield* guarded(() => routerEntries(r), { component: "router", item: r.name });
    }
  }
  return { entries: run(), report };
}

export type HostingBackupResult = BackupResult & Required<Pick<BackupResult, "status">>;

/**
 * Runs a hosting backup through an archive writer (the archive engine's `createBackup`, bound by the
 * caller to its destination and keys). The result is `partial` with one warning per failed component.
 */
export async function backupHosting(opts: {
  inventory: Inventory;
  config: HostConfig;
  selection: Selection;
  partSize?: number;
  write: (entries: AsyncIterable<ArchiveEntry>) => Promise<BackupResult>;
}): Promise<HostingBackupResult & { failures: ComponentFailure[] }> {
  const { entries, report } = hostingEntries(opts);
  const result = await opts.write(entries);
  const warnings = [...result.warnings, ...report.warnings];
  return {
    ...result,
    warnings,
    status: report.failures.length ? "partial" : "complete",
    failures: report.failures,
  };
}
