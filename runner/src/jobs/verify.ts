import { JobRejectCode } from "../../../shared/errors";
import type { JobClaims, VerifyJobParams } from "../../../shared/protocol/job-claims";
import type { ArchiveSource, VerifyResult } from "../archive";
import { checkArchiveLocation, openArchiveLocation } from "./archive-location";
import type { ArchiveBinding, DecryptionKey, Progress } from "../archive/types";
import { JobRejection } from "../daemon/job-verifier";
import { decryptionKey } from "./encryption";
import type { JobHandler } from "./types";

export type VerifyArchive = (o: {
  source: ArchiveSource;
  fileName?: string;
  key: DecryptionKey;
  binding?: ArchiveBinding;
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
}) => Promise<VerifyResult>;

function verifyParams(claims: JobClaims): VerifyJobParams {
  if (claims.job.type !== "verify") throw new JobRejection(JobRejectCode.UnsupportedJob, "not a verify job");
  return claims.job.params;
}

/** Verify executor: a full end-to-end check bound to the job's backup/tenant/chain; writes nothing. */
export function verifyHandler(loadEngine: () => Promise<VerifyArchive>): JobHandler {
  return {
    validate(claims, secrets, config) {
      const p = verifyParams(claims);
      checkArchiveLocation(p.destination, p.fileName, secrets, config);
      decryptionKey(p.encryption, secrets);
    },
    async run(ctx) {
      const p = verifyParams(ctx.claims);
      const verifyArchive = await loadEngine();
      const loc = await openArchiveLocation(p.destination, p.fileName, ctx.secrets, ctx.config);
      const r = await verifyArchive({
        source: loc.source,
        fileName: loc.fileName,
        key: decryptionKey(p.encryption, ctx.secrets),
        binding: p.binding,
        signal: ctx.signal,
        onProgress: ctx.progress,
      }).finally(() => loc.close());
      return {
        result: { fileName: r.fileName, mode: r.mode, entries: r.entries, bytes: r.bytes, frames: r.frames },
        warnings: r.warnings.length ? r.warnings : undefined,
      };
    },
  };
}
