import { JobRejectCode } from "../../../shared/errors";
import type { JobClaims, RestoreJobParams } from "../../../shared/protocol/job-claims";
import type { RestoreOptions, RestoreResult } from "../archive";
import { JobRejection } from "../daemon/job-verifier";
import { resolveAllowedTarget } from "./allowed-roots";
import { localArchivePath } from "./archive-file";
import { checkArchiveLocation, openArchiveLocation } from "./archive-location";
import { decryptionKey } from "./encryption";
import { JobFailure, type JobHandler } from "./types";
import {
  engineRestoreSource,
  restoreHosting,
  type RestorePhase,
  type RestoreSource,
} from "../hosting-restore";
import { isHostRoot, loadHost } from "./hosting-host";
import { RangeSpool, sweepStaleSpools } from "../hosting-restore/range-spool";
import type { Destination } from "../destinations";
import path from "node:path";

export type RestoreArchive = (o: RestoreOptions) => Promise<RestoreResult>;

function restoreParams(claims: JobClaims): RestoreJobParams {
  if (claims.job.type !== "restore")
    throw new JobRejection(JobRejectCode.UnsupportedJob, "not a restore job");
  return claims.job.params;
}

/** Restore executor: the target must lie inside the allowed roots, like backup sources. */
export function restoreHandler(loadEngine: () => Promise<RestoreArchive>): JobHandler {
  return {
    async validate(claims, secrets, config) {
      const p = restoreParams(claims);
      checkArchiveLocation(p.destination, p.fileName, secrets, config);
      decryptionKey(p.encryption, secrets);
      await resolveAllowedTarget(p.target, config.allowedRoots);
    },
    async run(ctx) {
      const p = restoreParams(ctx.claims);
      const target = await resolveAllowedTarget(p.target, ctx.config.allowedRoots);
      if (p.hosting) return runHostingRestore(ctx, p, p.hosting, target);
      const restoreArchive = await loadEngine();
      const loc = await openArchiveLocation(p.destination, p.fileName, ctx.secrets, ctx.config);
      const r = await restoreArchive({
        source: loc.source,
        fileName: loc.fileName,
        target,
        key: decryptionKey(p.encryption, ctx.secrets),
        binding: p.binding,
        only: p.only,
        conflict: p.conflict,
        signal: ctx.signal,
        onProgress: ctx.progress,
      }).finally(() => loc.close());
      return {
        result: {
          target: r.target,
          entries: r.entries,
          files: r.files,
          bytes: r.bytes,
          skipped: r.skipped.length,
          renamed: r.renamed.length,
        },
        warnings: r.warnings.length ? r.warnings : undefined,
      };
    },
  };
}

/** A spool nothing wrote to for this long was left by a runner that died mid-restore. */
const STALE_SPOOL_MS = 24 * 3600_000;

/** Tests inject a source (e.g. a plain tar); production reads the Cairn archive through the engine. */
export type HostingSourceFactory = (
  p: RestoreJobParams,
  ctx: Parameters<JobHandler["run"]>[0],
) => Promise<OpenedHostingSource>;

export interface OpenedHostingSource {
  source: RestoreSource;
  /** Remote copies: what was read over the network (result field `remote`). */
  stats?: () => Record<string, unknown>;
  close(): Promise<void>;
}

/**
 * The archive in the backup directory, or a remote copy (the server's disk may be gone: 3-2-1). A remote
 * copy is read through a spool in the backup directory: the selection is fetched once with ranged reads
 * and authenticated before anything is written, then restored from the spool, which is removed at the end.
 */
const engineSource: HostingSourceFactory = async (p, ctx) => {
  const key = decryptionKey(p.encryption, ctx.secrets);
  const base = { key, binding: p.binding, signal: ctx.signal };
  if (p.destination.kind === "local")
    return {
      source: engineRestoreSource({ ...base, source: localArchivePath(ctx.config.backupDir, p.fileName) }),
      close: async () => {},
    };
  const spools = path.join(ctx.config.backupDir, "restore-spool");
  const stale = await sweepStaleSpools(spools, STALE_SPOOL_MS).catch(() => []);
  if (stale.length) ctx.log.info("removed stale restore spools", { count: stale.length });
  const loc = await openArchiveLocation(p.destination, p.fileName, ctx.secrets, ctx.config);
  const spool = new RangeSpool(
    loc.source as Destination,
    path.join(spools, ctx.jobId.replace(/[^A-Za-z0-9_-]/g, "_")),
  );
  return {
    source: engineRestoreSource({ ...base, source: spool, fileName: p.fileName, checkFirst: true }),
    stats: () => ({
      url: spool.url,
      bytesFetched: spool.bytesFetched,
      archiveBytes: spool.archiveBytes(p.fileName),
    }),
    close: async () => {
      await spool.close().catch(() => {});
      await loc.close();
    },
  };
};

/**
 * Phased hosting restore (docs/HOSTING.md). `target` equal to the host's layout root restores in place
 * (where this host keeps each domain); any other target gets the conventional layout under it.
 * Phases, percent, "n of m domains", ETA, warnings and errors go out as job progress as they happen.
 */
export async function runHostingRestore(
  ctx: Parameters<JobHandler["run"]>[0],
  p: RestoreJobParams,
  sel: NonNullable<RestoreJobParams["hosting"]>,
  target: string,
  source: HostingSourceFactory = engineSource,
) {
  const host = await loadHost(ctx.config);
  const inPlace = await isHostRoot(target, host);
  const warnings: string[] = [];
  const errors: string[] = [];
  const phases: { phase: RestorePhase; at: string }[] = [];
  const opened = await source(p, ctx);
  const r = await restoreHosting({
    source: opened.source,
    domains: sel.domains,
    components: sel.components,
    conflict: p.conflict,
    config: host?.config ?? { domains: {}, databaseServers: [], databaseNaming: [], routers: [] },
    ...(inPlace ? { inventory: host!.inventory } : { targetRoot: target }),
    routerDir: path.join(target, "router"),
    safetyBackup: sel.safetyBackup,
    safetyDir: path.join(ctx.config.backupDir, "pre-restore"),
    onProgress: (e) => {
      if (ctx.signal.aborted) return;
      if (phases[phases.length - 1]?.phase !== e.phase)
        phases.push({ phase: e.phase, at: new Date().toISOString() });
      if (e.warning) warnings.push(e.warning);
      if (e.error) errors.push(e.error);
      ctx.progress({
        bytes: e.bytesDone,
        files: 0,
        totalBytes: e.bytesTotal,
        phase: e.phase,
        percent: e.percent,
        domainsText: e.domainsText,
        ...(e.etaSeconds !== undefined && { etaSeconds: e.etaSeconds }),
        ...(e.message && { message: e.message }),
        ...(warnings.length && { warnings }),
        ...(errors.length && { errors }),
        ...(e.phase === "completed" && { final: true }),
      });
    },
  }).finally(() => opened.close());
  if (ctx.signal.aborted) throw new JobFailure("CANCELLED", "restore cancelled");
  // A restore with any error is not a success, even when other components went back fine.
  if (r.status !== "completed") {
    const head = r.errors.slice(0, 5).join("; ");
    throw new JobFailure(
      // An archive that failed its checks (CORRUPT, WRONG_KEY, NOT_FOUND, ...) says so in the job's code.
      r.status === "partial" ? "RESTORE_PARTIAL" : (r.code ?? "RESTORE_FAILED"),
      `${r.status === "partial" ? "restore partly failed" : "restore failed"} (${r.errors.length} error(s)): ${head}`,
    );
  }
  return {
    result: {
      status: r.status,
      target: inPlace ? "in place" : target,
      phases,
      restored: r.restored.slice(0, 500),
      renamed: r.renamed,
      safetyBackup: r.safetyBackup,
      ...(opened.stats && { remote: opened.stats() }),
    },
    warnings: r.warnings.length ? r.warnings : undefined,
  };
}
