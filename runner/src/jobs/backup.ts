import { JobRejectCode } from "../../../shared/errors";
import { isValidBackupName } from "../../../shared/naming";
import { BackupJobResult } from "../../../shared/protocol/runner-messages";
import type { BackupJobParams, JobClaims } from "../../../shared/protocol/job-claims";
import type { BackupOptions, BackupResult } from "../archive/types";
import type { RunnerConfig } from "../config";
import { JobRejection } from "../daemon/job-verifier";
import { resolveAllowedSource } from "./allowed-roots";
import { encryptionSpec } from "./encryption";
import { JobFailure, type JobHandler } from "./types";
import type { Destination } from "../destinations";
import { checkCopies, withCopies } from "./copies";
import { hostingEntries } from "../sources";
import { loadHost } from "./hosting-host";

/** `destination`: auto-sync writes through a FanoutDestination (local + remote copies). */
export type CreateBackup = (opts: BackupOptions & { destination?: Destination }) => Promise<BackupResult>;

function backupParams(claims: JobClaims): BackupJobParams {
  if (claims.job.type !== "backup") throw new JobRejection(JobRejectCode.UnsupportedJob, "not a backup job");
  return claims.job.params;
}

async function resolveSources(params: BackupJobParams, config: RunnerConfig): Promise<string[]> {
  const requested = params.sources ?? config.defaultSources;
  if (requested.length === 0)
    throw new JobRejection(JobRejectCode.InvalidParams, "no sources requested and none configured");
  const out: string[] = [];
  for (const s of requested) out.push(await resolveAllowedSource(s, config.allowedRoots));
  return out;
}

/** Backup executor. `loadEngine` is the archive engine's `createBackup` (injected in tests). */
export function backupHandler(loadEngine: () => Promise<CreateBackup>): JobHandler {
  return {
    async validate(claims, secrets, config) {
      const params = backupParams(claims);
      if (!isValidBackupName(params.name))
        throw new JobRejection(JobRejectCode.InvalidParams, "invalid backup name");
      encryptionSpec(params.encryption, secrets);
      checkCopies(params, secrets, config);
      if (params.hosting) {
        if (!config.hosting)
          throw new JobRejection(
            JobRejectCode.InvalidParams,
            "hosting backup, but this runner has no hosting config",
          );
        if (params.sources)
          throw new JobRejection(JobRejectCode.InvalidParams, "hosting backups take no sources");
        return;
      }
      await resolveSources(params, config);
    },
    async run(ctx) {
      const params = backupParams(ctx.claims);
      if (params.hosting) return runHostingBackup(ctx, params, params.hosting, await loadEngine());
      // Re-resolved at run time: the job may have queued while the disk changed.
      const sources = await resolveSources(params, ctx.config);
      const createBackup = await loadEngine();
      const { r, copies } = await withCopies(ctx, params, (destination, onProgress) =>
        createBackup({ sources, ...engineOptions(ctx, params, onProgress, destination) }),
      );
      const result = BackupJobResult.parse(writtenArchive(r));
      return {
        result: { ...result, ...(copies && { copies }) },
        warnings: r.warnings.length ? r.warnings : undefined,
      };
    },
  };
}

/** What every backup hands the engine, wherever its entries come from. */
function engineOptions(
  ctx: Parameters<JobHandler["run"]>[0],
  params: BackupJobParams,
  onProgress: BackupOptions["onProgress"],
  destination: Destination | undefined,
): Omit<Parameters<CreateBackup>[0], "sources" | "entries"> {
  return {
    outDir: ctx.config.backupDir,
    name: params.name,
    kind: params.kind,
    level: params.compressionLevel,
    encryption: encryptionSpec(params.encryption, ctx.secrets),
    binding: params.binding,
    signal: ctx.signal,
    onProgress,
    ...(destination && { destination }),
  };
}

/** The archive the engine wrote, as a backup job's result reports it. */
function writtenArchive(r: BackupResult) {
  return {
    fileName: r.fileName,
    size: r.size,
    sha256: r.sha256,
    fileCount: r.fileCount,
    durationMs: r.durationMs,
    bytesIn: r.bytesIn,
    ...(r.manifestFileName ? { manifestFileName: r.manifestFileName } : {}),
  };
}

/**
 * Hosting backup: the entry stream comes from the host inventory (domains x components). A component
 * that fails is one warning and makes the result `partial`; the archive still holds everything else.
 */
async function runHostingBackup(
  ctx: Parameters<JobHandler["run"]>[0],
  params: BackupJobParams,
  selection: NonNullable<BackupJobParams["hosting"]>,
  createBackup: CreateBackup,
) {
  const host = await loadHost(ctx.config);
  if (!host) throw new JobFailure("CONFIG_INVALID", "this runner has no hosting config");
  const { entries, report } = hostingEntries({ inventory: host.inventory, config: host.config, selection });
  const { r, copies } = await withCopies(ctx, params, (destination, onProgress) =>
    createBackup({ entries, ...engineOptions(ctx, params, onProgress, destination) }),
  );
  const partial = report.failures.length > 0 || r.status === "partial";
  const result = BackupJobResult.parse({
    ...writtenArchive(r),
    status: partial ? "partial" : "complete",
  });
  const warnings = [...r.warnings, ...report.warnings];
  return {
    result: {
      ...result,
      domains: report.domains,
      components: report.components,
      failures: report.failures,
      ...(copies && { copies }),
    },
    warnings: warnings.length ? warnings : undefined,
  };
}
