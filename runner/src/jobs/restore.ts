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
      if (p.hosting && p.destination.kind === "remote")
        throw new JobRejection(
          JobRejectCode.InvalidParams,
          "hosting restores read the local archive; restore a remote copy with the CLI",
        );
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

/** Tests inject a source (e.g. a plain tar); production reads the Cairn archive through the engine. */
export type HostingSourceFactory = (
  p: RestoreJobParams,
  ctx: Parameters<JobHandler["run"]>[0],
) => RestoreSource;

const engineSource: HostingSourceFactory = (p, ctx) =>
  engineRestoreSource({
    source: localArchivePath(ctx.config.backupDir, p.fileName),
    fileName: p.fileName,
    key: decryptionKey(p.encryption, ctx.secrets),
    binding: p.binding,
    signal: ctx.signal,
  });

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
  const r = await restoreHosting({
    source: source(p, ctx),
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
  });
  if (ctx.signal.aborted) throw new JobFailure("CANCELLED", "restore cancelled");
  // A restore with any error is not a success, even when other components went back fine.
  if (r.status !== "completed") {
    const head = r.errors.slice(0, 5).join("; ");
    throw new JobFailure(
      r.status === "partial" ? "RESTORE_PARTIAL" : "RESTORE_FAILED",
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
    },
    warnings: r.warnings.length ? r.warnings : undefined,
  };
}
