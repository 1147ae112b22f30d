import { JobRejectCode } from "../../../shared/errors";
import { isValidBackupName } from "../../../shared/naming";
import { BackupJobResult } from "../../../shared/protocol/runner-messages";
import type { BackupJobParams, JobClaims } from "../../../shared/protocol/job-claims";
import type { BackupOptions, BackupResult } from "../archive/types";
import type { RunnerConfig } from "../config";
import { JobRejection } from "../daemon/job-verifier";
import { resolveAllowedSource } from "./allowed-roots";
import { encryptionSpec } from "./encryption";
import type { JobHandler } from "./types";

export type CreateBackup = (opts: BackupOptions) => Promise<BackupResult>;

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
      await resolveSources(params, config);
    },
    async run(ctx) {
      const params = backupParams(ctx.claims);
      // Re-resolved at run time: the job may have queued while the disk changed.
      const sources = await resolveSources(params, ctx.config);
      const createBackup = await loadEngine();
      const r = await createBackup({
        sources,
        outDir: ctx.config.backupDir,
        name: params.name,
        kind: params.kind,
        level: params.compressionLevel,
        encryption: encryptionSpec(params.encryption, ctx.secrets),
        binding: params.binding,
        signal: ctx.signal,
        onProgress: ctx.progress,
      });
      const result = BackupJobResult.parse({
        fileName: r.fileName,
        size: r.size,
        sha256: r.sha256,
        fileCount: r.fileCount,
        durationMs: r.durationMs,
        bytesIn: r.bytesIn,
        ...(r.manifestFileName ? { manifestFileName: r.manifestFileName } : {}),
      });
      return { result, warnings: r.warnings.length ? r.warnings : undefined };
    },
  };
}
