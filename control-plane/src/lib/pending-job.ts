import type { JobSpec } from "../../../shared/protocol/job-claims";
import type { jobs } from "../db/schema";

/**
 * The D1 row of a job the API has just created, written before `dispatchJob` hands it to the runner.
 * Params are the spec's as signed into the job token; secrets never go here.
 */
export function pendingJobRow(a: {
  id: string;
  tenantId: string;
  runnerId: string;
  backupId: string | null;
  spec: JobSpec;
  createdBy: string;
  now: number;
}): typeof jobs.$inferInsert {
  return {
    id: a.id,
    tenantId: a.tenantId,
    runnerId: a.runnerId,
    backupId: a.backupId,
    type: a.spec.type,
    state: "PENDING",
    params: JSON.stringify(a.spec.params),
    createdBy: a.createdBy,
    createdAt: a.now,
    updatedAt: a.now,
  };
}
