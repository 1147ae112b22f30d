import { JobRejectCode } from "../../../shared/errors";
import type { JobClaims, TestDestinationJobParams } from "../../../shared/protocol/job-claims";
import { JobRejection } from "../daemon/job-verifier";
import { openRemote, remoteSpec } from "./remote-destination";
import type { JobHandler } from "./types";

function params(claims: JobClaims): TestDestinationJobParams {
  if (claims.job.type !== "test-destination")
    throw new JobRejection(JobRejectCode.UnsupportedJob, "not a test-destination job");
  return claims.job.params;
}

/** Test Connection: write, read back and delete a probe object. A DestinationError's code (AUTH_FAILED, ...) is the job's error code. */
export function testDestinationHandler(): JobHandler {
  return {
    validate(claims, secrets, config) {
      remoteSpec(params(claims).target, secrets, config);
    },
    async run(ctx) {
      const p = params(ctx.claims);
      const dest = await openRemote(p.target, ctx.secrets, ctx.config);
      try {
        ctx.progress({ bytes: 0, files: 0, phase: "test" });
        await dest.test();
        return { result: { destinationId: p.target.destinationId, url: dest.url } };
      } finally {
        await dest.close().catch(() => {});
      }
    },
  };
}
