import { JobRejectCode } from "../../../shared/errors";
import type { JobClaims, RestoreJobParams } from "../../../shared/protocol/job-claims";
import type { RestoreOptions, RestoreResult } from "../archive";
import { JobRejection } from "../daemon/job-verifier";
import { resolveAllowedTarget } from "./allowed-roots";
import { localArchivePath } from "./archive-file";
import { decryptionKey } from "./encryption";
import type { JobHandler } from "./types";

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
      localArchivePath(config.backupDir, p.fileName);
      decryptionKey(p.encryption, secrets);
      await resolveAllowedTarget(p.target, config.allowedRoots);
    },
    async run(ctx) {
      const p = restoreParams(ctx.claims);
      const target = await resolveAllowedTarget(p.target, ctx.config.allowedRoots);
      const restoreArchive = await loadEngine();
      const r = await restoreArchive({
        source: localArchivePath(ctx.config.backupDir, p.fileName),
        target,
        key: decryptionKey(p.encryption, ctx.secrets),
        binding: p.binding,
        only: p.only,
        conflict: p.conflict,
        signal: ctx.signal,
        onProgress: ctx.progress,
      });
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
