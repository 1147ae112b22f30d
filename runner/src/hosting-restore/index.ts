import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { lstat, mkdir } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import type { Readable, Writable } from "node:stream";
import type { ArchiveEntry } from "../archive/types";
import type { DatabaseServerConfig, HostConfig } from "../inventory/config";
import type { Inventory } from "../inventory/discover";
import { formatBackupTimestamp } from "../../../shared/naming";
import { HostingError } from "../sources/errors";
import {
  COMPONENTS,
  parseArchivePath,
  type Component,
  type DomainMeta,
  type DumpInfo,
} from "../sources/layout";
import {
  createDatabase,
  databaseExists,
  dropDatabase,
  dumpDatabaseToFile,
  startDbRestore,
  tableCount,
  type DbRestoreProcess,
} from "./databases";
import { createLink, fixDirTimes, safeJoin, writeEntry } from "./files";
import { ProgressTracker, type RestorePhase, type RestoreProgress } from "./progress";
import type { EntryHeader, RestoreSource } from "./source";
import { writeTarFile } from "./tar-io";

export { RESTORE_PHASES, type RestorePhase, type RestoreProgress } from "./progress";
export type { RestoreSource, EntryHeader } from "./source";
export { tarFileSource, writeTarFile } from "./tar-io";
export { engineRestoreSource } from "./engine-source";
export { formatRestoreProgress, restoreProgressFields, restoreSelectionFromFlags } from "./flags";

export type Conflict = "skip" | "overwrite" | "rename";

export interface HostingRestoreOptions {
  source: RestoreSource;
  domains?: "all" | string[];
  components?: Component[];
  /** Default action when a target file or database exists. */
  conflict?: Conflict;
  /** Per domain (`example.com`) or per database (`mysql/dbname`, `postgres/dbname`); wins over `conflict`. */
  conflictFor?: Record<string, Conflict>;
  /** This host's config: database servers to restore into. */
  config: HostConfig;
  /** This host's inventory: where it keeps each domain (restore onto another server). Default: the paths recorded at backup. */
  inventory?: Inventory;
  /** Put everything under this root in the conventional layout instead (home/<user>/domains/<d>/public_html, mail/, dns/, ssl/). */
  targetRoot?: string;
  /** Where router exports are written (`<routerDir>/<name>/export.rsc`). Default: `<targetRoot>/router`. */
  routerDir?: string;
  /** Copy what is about to be replaced first (default on). */
  safetyBackup?: boolean;
  safetyDir?: string;
  /** Archive writer for the safety copy (the archive engine); default a plain tar in `safetyDir`. */
  writeSafety?: (entries: AsyncIterable<ArchiveEntry>, name: string) => Promise<string>;
  onProgress?: (p: RestoreProgress) => void;
  now?: () => Date;
}

export interface HostingRestoreResult {
  status: "completed" | "partial" | "failed";
  warnings: string[];
  errors: string[];
  restored: { domain?: string; component: string; item?: string; target: string }[];
  renamed: { engine: string; from: string; to: string }[];
  /** Files of the pre-restore safety backup. */
  safetyBackup: string[];
  /** When the archive itself could not be read or failed its checks: its error code (CORRUPT, WRONG_KEY, ...). */
  code?: string;
}

/** An archive or destination error's code, when it has one of the usual shape. */
function errorCode(e: unknown): string | undefined {
  const c = (e as { code?: unknown } | null)?.code;
  return typeof c === "string" && /^[A-Z0-9_]{1,64}$/.test(c) ? c : undefined;
}

const FILE_PHASES: { component: Component; phase: RestorePhase }[] = [
  { component: "mail", phase: "restoring email" },
  { component: "dns", phase: "restoring DNS" },
  { component: "ssl", phase: "restoring SSL" },
];

interface DbPlan {
  dir: string;
  domain: string;
  info: DumpInfo;
  server: DatabaseServerConfig;
  conflict: Conflict;
  target: string;
  exists: boolean;
}

async function readJson<T>(body: Readable): Promise<T> {
  const chunks: Buffer[] = [];
  for await (const c of body) chunks.push(c as Buffer);
  return JSON.parse(Buffer.concat(chunks).toString("utf8")) as T;
}

async function writeAll(out: Writable, body: Readable, hash: ReturnType<typeof createHash>): Promise<number> {
  let n = 0;
  for await (const c of body) {
    const chunk = c as Buffer;
    hash.update(chunk);
    n += chunk.length;
    if (!out.write(chunk)) {
      await new Promise<void>((res, rej) => {
        const onErr = (e: Error) => rej(e);
        out.once("error", onErr);
        out.once("drain", () => {
          out.off("error", onErr);
          res();
        });
      });
    }
  }
  return n;
}

export async function restoreHosting(opts: HostingRestoreOptions): Promise<HostingRestoreResult> {
  const now = opts.now?.() ?? new Date();
  const stamp = formatBackupTimestamp(now);
  const components = new Set<Component>(opts.components ?? [...COMPONENTS]);
  const p = new ProgressTracker(opts.onProgress);
  const result: HostingRestoreResult = {
    status: "completed",
    warnings: [],
    errors: [],
    restored: [],
    renamed: [],
    safetyBackup: [],
  };
  const warn = (m: string) => {
    result.warnings.push(m);
    p.emit({ warning: m });
  };
  const error = (m: string) => {
    result.errors.push(m);
    p.emit({ error: m });
  };
  const conflictOf = (key: string, domain: string): Conflict =>
    opts.conflictFor?.[key] ?? opts.conflictFor?.[domain] ?? opts.conflict ?? "skip";

  // ---- validating: what is in the archive, what was asked for, is every dump complete
  p.enter("validating", 0);
  let listing: EntryHeader[];
  try {
    listing = await opts.source.list();
  } catch (e) {
    // Encrypted archives keep their manifest sealed: a wrong key surfaces here, before anything is written.
    error(`cannot open archive: ${(e as Error).message}`);
    p.enter("completed", 0);
    return { ...result, status: "failed", code: errorCode(e) };
  }
  const inArchive = new Set<string>();
  for (const e of listing) {
    const d = parseArchivePath(e.name)?.domain;
    if (d) inArchive.add(d);
  }
  const domains = opts.domains === undefined || opts.domains === "all" ? [...inArchive].sort() : opts.domains;
  const missing = domains.filter((d) => !inArchive.has(d));
  if (missing.length) {
    const m = `domain(s) not in this archive: ${missing.join(", ")}`;
    error(m);
    p.enter("completed", 0);
    return { ...result, status: "failed" };
  }
  const selected = (name: string): ReturnType<typeof parseArchivePath> => {
    const pp = parseArchivePath(name);
    if (!pp) return undefined;
    if (pp.component === "router") return components.has("router") ? pp : undefined;
    if (!pp.domain || !domains.includes(pp.domain)) return undefined;
    if (pp.component === "meta") return pp;
    return components.has(pp.component) ? pp : undefined;
  };
  p.bytesTotal = listing.filter((e) => e.type === "file" && selected(e.name)).reduce((a, e) => a + e.size, 0);

  const metas = new Map<string, DomainMeta>();
  const dumps = new Map<string, DumpInfo>();
  try {
    for await (const { entry, body } of opts.source.read((n) => {
      const pp = selected(n);
      return !!pp && (pp.component === "meta" || (pp.component === "db" && n.endsWith("/dump.json")));
    })) {
      const pp = parseArchivePath(entry.name)!;
      if (pp.component === "meta") metas.set(pp.domain!, await readJson<DomainMeta>(body));
      else dumps.set(dirname(entry.name), await readJson<DumpInfo>(body));
    }
  } catch (e) {
    error(`cannot read the archive's domain records: ${(e as Error).message}`);
    p.enter("completed", 0);
    return { ...result, status: "failed", code: errorCode(e) };
  }
  const dbPlans = new Map<string, DbPlan>();
  if (components.has("db")) {
    const partsByDir = new Map<string, number>();
    for (const e of listing) {
      const pp = selected(e.name);
      if (pp?.component === "db" && /\/dump\.part-\d{6}$/.test(e.name))
        partsByDir.set(dirname(e.name), (partsByDir.get(dirname(e.name)) ?? 0) + 1);
    }
    for (const [dir, parts] of partsByDir) {
      const info = dumps.get(dir);
      const domain = dir.split("/")[0]!;
      if (!info) {
        error(`${dir}: incomplete dump (the dump failed during backup, no dump.json): not restored`);
        continue;
      }
      if (info.parts !== parts) {
        error(`${dir}: dump has ${parts} parts, dump.json says ${info.parts}: not restored`);
        continue;
      }
      const server =
        opts.config.databaseServers.find((s) => s.name === info.server && s.engine === info.engine) ??
        opts.config.databaseServers.find((s) => s.engine === info.engine);
      if (!server) {
        error(`${dir}: no ${info.engine} server configured on this host`);
        continue;
      }
      const conflict = conflictOf(`${info.engine}/${info.database}`, domain);
      let target = info.database;
      let ex: boolean;
      try {
        ex = await databaseExists(server, target);
        if (ex && conflict === "rename") {
          target = `${info.database}_restored_${stamp}`.slice(0, 63);
          if (await databaseExists(server, target))
            throw new HostingError("RESTORE_FAILED", `rename target ${target} exists too`);
          result.renamed.push({ engine: info.engine, from: info.database, to: target });
          ex = false;
        }
      } catch (e) {
        error(`${dir}: ${(e as Error).message}`);
        continue;
      }
      if (ex && conflict === "skip") {
        warn(`${info.engine}/${info.database} exists on ${server.name}: skipped (conflict=skip)`);
        continue;
      }
      dbPlans.set(dir, { dir, domain, info, server, conflict, target, exists: ex });
    }
  }

  // Where each domain's component goes on this host.
  const renamedRoots = new Map<string, string>();
  const targetOf = (
    domain: string,
    comp: Component,
    rest: string,
  ): { root: string; rel: string } | undefined => {
    const meta = metas.get(domain);
    const inv = opts.inventory?.domains.find((d) => d.domain === domain);
    const t = opts.targetRoot;
    // rename: only when something is there, restore beside it; an empty place is restored in place.
    // Decided once per root, before its first entry is written.
    const rename = (root: string) => {
      if (conflictOf(domain, domain) !== "rename") return root;
      let r = renamedRoots.get(root);
      if (r === undefined)
        renamedRoots.set(root, (r = existsSync(root) ? `${root}.restored-${stamp}` : root));
      return r;
    };
    if (comp === "web") {
      const root = t
        ? join(t, "home", meta?.user ?? inv?.user ?? "restored", "domains", domain, "public_html")
        : (inv?.webRoot ?? meta?.webRoot);
      return root ? { root: rename(root), rel: rest } : undefined;
    }
    if (comp === "mail") {
      if (rest.startsWith("boxes")) {
        const root = t ? join(t, "mail", domain) : (inv?.mailDir ?? meta?.mailDir);
        return root ? { root: rename(root), rel: rest.slice("boxes".length).replace(/^\//, "") } : undefined;
      }
      const m = /^config\/(\d+)(?:\/(.*))?$/.exec(rest);
      const orig = m ? meta?.mailConfig[Number(m[1])] : undefined;
      if (!m || !orig) return undefined;
      return { root: rename(t ? join(t, orig) : orig), rel: m[2] ?? "" };
    }
    if (comp === "dns") {
      const zone = t ? join(t, "dns", `${domain}.zone`) : (inv?.dnsZone ?? meta?.dnsZone);
      return zone ? { root: rename(dirname(zone)), rel: rest } : undefined;
    }
    if (comp === "ssl") {
      const root = t ? join(t, "ssl", domain) : (inv?.sslDir ?? meta?.sslDir);
      return root ? { root: rename(root), rel: rest } : undefined;
    }
    return undefined;
  };
  const fileMode = (domain: string): "skip" | "overwrite" =>
    conflictOf(domain, domain) === "overwrite" ? "overwrite" : "skip";

  // ---- decrypting: the key is checked before anything is written
  p.enter("decrypting", 0);
  try {
    await opts.source.unlock?.();
  } catch (e) {
    error(`cannot decrypt: ${(e as Error).message}`);
    p.enter("completed", 0);
    return { ...result, status: "failed", code: errorCode(e) };
  }
  // Sources that can (remote copies) read and authenticate the whole selection first: a damaged or
  // tampered archive then fails here, with the live files and databases untouched.
  if (opts.source.check) {
    const total = p.bytesTotal;
    let checked = 0;
    let shown = 0;
    p.emit({ message: `checking the selected archive entries (${total} bytes) before anything is written` });
    try {
      await opts.source.check(
        (n) => !!selected(n),
        (b) => {
          checked += b;
          if (checked - shown >= 8 * 1024 * 1024) {
            shown = checked;
            p.emit({ message: `checked ${checked} of ${total} bytes` });
          }
        },
      );
    } catch (e) {
      error(`archive check failed, nothing was restored: ${(e as Error).message}`);
      p.enter("completed", 0);
      return { ...result, status: "failed", code: errorCode(e) };
    }
  }

  // ---- pre-restore safety backup of whatever overwrite would replace
  if (opts.safetyBackup !== false) {
    const safetyDir = opts.safetyDir ?? join(tmpdir(), "cairn-safety");
    const replaced: ArchiveEntry[] = [];
    for (const e of listing) {
      const pp = selected(e.name);
      if (!pp?.domain || e.type !== "file" || !["web", "mail", "dns", "ssl"].includes(pp.component)) continue;
      if (fileMode(pp.domain) !== "overwrite") continue;
      const t = targetOf(pp.domain, pp.component as Component, pp.rest);
      if (!t) continue;
      let abs: string;
      try {
        abs = safeJoin(t.root, t.rel);
      } catch {
        continue;
      }
      const st = await lstat(abs).catch(() => null);
      if (st?.isFile()) {
        replaced.push({
          name: `files/${e.name}`,
          type: "file",
          size: st.size,
          mode: st.mode & 0o7777,
          uid: st.uid,
          gid: st.gid,
          mtime: st.mtime,
          body: { kind: "file", absPath: abs },
        });
      }
    }
    const dbsToReplace = [...dbPlans.values()].filter((d) => d.exists && d.conflict === "overwrite");
    if (replaced.length || dbsToReplace.length) {
      p.emit({
        message: `pre-restore safety backup: ${replaced.length} files, ${dbsToReplace.length} databases`,
      });
      try {
        await mkdir(safetyDir, { recursive: true, mode: 0o700 });
        if (replaced.length) {
          const name = `pre-restore_${stamp}`;
          const write =
            opts.writeSafety ??
            (async (entries: AsyncIterable<ArchiveEntry>, n: string) => {
              const path = join(safetyDir, `${n}.tar`);
              await writeTarFile(entries, path);
              return path;
            });
          result.safetyBackup.push(
            await write(
              (async function* () {
                yield* replaced;
              })(),
              name,
            ),
          );
        }
        for (const d of dbsToReplace) {
          const path = join(
            safetyDir,
            `pre-restore_${stamp}_${d.info.engine}_${d.target}.${d.info.engine === "mysql" ? "sql" : "dump"}`,
          );
          await dumpDatabaseToFile(d.server, d.target, path);
          result.safetyBackup.push(path);
        }
      } catch (e) {
        // Without the safety copy nothing is replaced: the restore stops here.
        error(`pre-restore safety backup failed, nothing was restored: ${(e as Error).message}`);
        p.enter("completed", 0);
        return { ...result, status: "failed" };
      }
    }
  }

  const written: { abs: string; size: number }[] = [];
  const failed = new Set<string>();

  // ---- file components, one phase each (web is "extracting files", routers ride along with it)
  async function restoreFiles(comps: Component[], phase: RestorePhase): Promise<void> {
    const doms = domains.filter((d) =>
      listing.some((e) => {
        const pp = parseArchivePath(e.name);
        return pp?.domain === d && comps.includes(pp.component as Component);
      }),
    );
    p.enter(phase, doms.length);
    if (!comps.some((c) => components.has(c))) return;
    const links: { abs: string; entry: EntryHeader; mode: "skip" | "overwrite" }[] = [];
    const kept = new Map<string, number>();
    const dirs: { abs: string; mtime: Date }[] = [];
    let current: string | undefined;
    const done = new Set<string>();
    for await (const { entry, body } of opts.source.read((n) => {
      const pp = selected(n);
      return !!pp && comps.includes(pp.component as Component);
    })) {
      const pp = parseArchivePath(entry.name)!;
      const key = `${pp.domain ?? "router"} ${pp.component}`;
      if (pp.domain && pp.domain !== current) {
        if (current) {
          done.add(current);
          p.domainsDone = done.size;
        }
        current = pp.domain;
        p.emit({ message: `${phase}: ${pp.domain}` });
      }
      if (failed.has(key)) {
        body.resume();
        continue;
      }
      try {
        let t: { root: string; rel: string } | undefined;
        if (pp.component === "router") {
          const dir = opts.routerDir ?? (opts.targetRoot ? join(opts.targetRoot, "router") : undefined);
          if (!dir)
            throw new HostingError(
              "RESTORE_FAILED",
              "router exports need routerDir or targetRoot (they are never pushed to a router)",
            );
          t = { root: dir, rel: pp.rest };
        } else t = targetOf(pp.domain!, pp.component as Component, pp.rest);
        if (!t)
          throw new HostingError(
            "RESTORE_FAILED",
            `no target location for ${pp.component} of ${pp.domain} on this host`,
          );
        const mode = pp.domain ? fileMode(pp.domain) : "overwrite";
        const r = await writeEntry(t.root, t.rel, entry, body, mode);
        if (!r.written && entry.type === "file") kept.set(key, (kept.get(key) ?? 0) + 1);
        if (r.deferredLink) links.push({ ...r.deferredLink, mode });
        if (entry.type === "directory") dirs.push({ abs: safeJoin(t.root, t.rel), mtime: entry.mtime });
        if (r.written && entry.type === "file")
          written.push({ abs: safeJoin(t.root, t.rel), size: entry.size });
        if (!result.restored.some((x) => x.domain === pp.domain && x.component === pp.component)) {
          result.restored.push({ domain: pp.domain, component: pp.component, target: t.root });
        }
      } catch (e) {
        failed.add(key);
        body.resume();
        error(`${key}: ${(e as Error).message}`);
      }
      if (entry.type === "file") {
        p.bytesDone += entry.size;
        p.emit();
      }
    }
    for (const l of links) {
      try {
        await createLink(l.abs, l.entry, l.mode);
      } catch (e) {
        error(`symlink ${l.abs}: ${(e as Error).message}`);
      }
    }
    await fixDirTimes(dirs);
    for (const [key, n] of kept) warn(`${key}: ${n} existing file(s) kept (conflict=skip)`);
    if (current) done.add(current);
    p.domainsDone = done.size;
    p.emit();
  }

  await restoreFiles(["web", "router"], "extracting files");

  // ---- databases: parts streamed in order into the client, checked against dump.json
  {
    const doms = new Set([...dbPlans.values()].map((d) => d.domain));
    p.enter("restoring databases", doms.size);
    const doneDomains = new Set<string>();
    let cur:
      | {
          plan: DbPlan;
          proc?: DbRestoreProcess;
          hash: ReturnType<typeof createHash>;
          parts: number;
          bytes: number;
          created: boolean;
          failed?: string;
        }
      | undefined;
    const finish = async () => {
      if (!cur) return;
      const c = cur;
      cur = undefined;
      const { plan } = c;
      const label = `${plan.info.engine}/${plan.info.database}${plan.target !== plan.info.database ? ` -> ${plan.target}` : ""}`;
      if (!c.failed && c.proc) {
        c.proc.input.end();
        try {
          await c.proc.done;
          if (
            c.parts !== plan.info.parts ||
            c.bytes !== plan.info.bytes ||
            c.hash.digest("hex") !== plan.info.sha256
          ) {
            throw new HostingError("INCOMPLETE_DUMP", "dump bytes do not match dump.json");
          }
        } catch (e) {
          c.failed = (e as Error).message;
        }
      } else c.proc?.abort();
      if (c.failed) {
        error(`${plan.domain} db ${label}: ${c.failed}`);
        // A half-loaded database we created is removed; an overwritten one is in the safety backup.
        if (c.created && !plan.exists) await dropDatabase(plan.server, plan.target).catch(() => {});
      } else {
        result.restored.push({
          domain: plan.domain,
          component: "db",
          item: `${plan.info.engine}/${plan.target}`,
          target: `${plan.server.name}/${plan.target}`,
        });
      }
      doneDomains.add(plan.domain);
      p.domainsDone = doneDomains.size;
      p.emit({ message: `${label} ${c.failed ? "failed" : "restored"}` });
    };
    if (dbPlans.size) {
      for await (const { entry, body } of opts.source.read(
        (n) => dbPlans.has(dirname(n)) && /\/dump\.part-\d{6}$/.test(n),
      )) {
        const dir = dirname(entry.name);
        if (cur?.plan.dir !== dir) {
          await finish();
          const plan = dbPlans.get(dir)!;
          cur = { plan, hash: createHash("sha256"), parts: 0, bytes: 0, created: false };
          p.emit({
            message: `restoring ${plan.info.engine}/${plan.info.database} into ${plan.server.name}/${plan.target}`,
          });
          try {
            if (plan.exists) await dropDatabase(plan.server, plan.target);
            await createDatabase(plan.server, plan.target);
            cur.created = true;
            cur.proc = await startDbRestore(plan.server, plan.target);
          } catch (e) {
            cur.failed = (e as Error).message;
          }
        }
        const expected = cur.parts + 1;
        if (!entry.name.endsWith(`dump.part-${String(expected).padStart(6, "0")}`) && !cur.failed) {
          cur.failed = `part ${expected} missing or out of order`;
          cur.proc?.abort();
        }
        if (cur.failed || !cur.proc) body.resume();
        else {
          try {
            cur.bytes += await writeAll(cur.proc.input, body, cur.hash);
          } catch (e) {
            cur.failed = (e as Error).message;
            cur.proc.abort();
            body.resume();
          }
        }
        cur.parts++;
        p.bytesDone += entry.size;
        p.emit();
      }
      await finish();
    }
  }

  for (const f of FILE_PHASES) await restoreFiles([f.component], f.phase);

  // ---- verifying: every written file has its size, every restored database answers
  p.enter("verifying", 0);
  for (const w of written) {
    const st = await lstat(w.abs).catch(() => null);
    if (!st || st.size !== w.size)
      error(`verify: ${w.abs} is ${st ? `${st.size} bytes, expected ${w.size}` : "missing"}`);
  }
  for (const r of result.restored.filter((x) => x.component === "db")) {
    const plan = [...dbPlans.values()].find((d) => `${d.info.engine}/${d.target}` === r.item)!;
    try {
      const n = await tableCount(plan.server, plan.target);
      p.emit({ message: `verified ${r.item}: ${n} tables` });
    } catch (e) {
      error(`verify ${r.item}: ${(e as Error).message}`);
    }
  }

  result.status = result.errors.length === 0 ? "completed" : result.restored.length ? "partial" : "failed";
  p.bytesDone = p.bytesTotal;
  // The final count is the domains that actually had something restored, not the number attempted.
  const restoredDomains = new Set(result.restored.map((x) => x.domain).filter((d) => d !== undefined));
  p.phase = "completed";
  p.domainsTotal = domains.length;
  p.domainsDone = restoredDomains.size;
  p.emit({ message: `restore ${result.status}` });
  return result;
}
