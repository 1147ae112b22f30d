import { TERMINAL_JOB_STATES } from "../../../shared/jobs";
import type { Env } from "../env";

/**
 * Inserts a restore job only while the tenant has fewer than `limit` restore jobs that are not
 * finished. Count and insert are one statement, so two requests racing cannot both take the last slot.
 * Returns false (nothing written) when the limit is reached.
 */
export async function insertRestoreJobWithinLimit(
  env: Env,
  job: {
    id: string;
    tenantId: string;
    runnerId: string;
    backupId: string;
    params: string;
    createdBy: string;
    now: number;
  },
  limit: number,
): Promise<boolean> {
  const terminal = TERMINAL_JOB_STATES.map(() => "?").join(",");
  const r = await env.DB.prepare(
    `INSERT INTO jobs (id, tenant_id, runner_id, backup_id, type, state, params, created_by, created_at, updated_at)
     SELECT ?, ?, ?, ?, 'restore', 'PENDING', ?, ?, ?, ?
     WHERE (SELECT COUNT(*) FROM jobs WHERE tenant_id = ? AND type = 'restore' AND state NOT IN (${terminal})) < ?`,
  )
    .bind(
      job.id,
      job.tenantId,
      job.runnerId,
      job.backupId,
      job.params,
      job.createdBy,
      job.now,
      job.now,
      job.tenantId,
      ...TERMINAL_JOB_STATES,
      limit,
    )
    .run();
  return (r.meta.changes ?? 0) > 0;
}
