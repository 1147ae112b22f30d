import { and, eq, notInArray } from "drizzle-orm";
import { TERMINAL_JOB_STATES, type JobState } from "../../../shared/jobs";
import { BackupJobResult, type JobResult } from "../../../shared/protocol/runner-messages";
import { db } from "../db/client";
import { activityLog, backups, jobs, runners } from "../db/schema";
import { newId } from "../lib/ids";
import { applyDestinationOutcome } from "../lib/destination-outcomes";
import type { Env } from "../env";

/** D1 writes made by the RunnerSession: the API reads jobs, backups and runner status from D1. */

const notTerminal = notInArray(jobs.state, [...TERMINAL_JOB_STATES]);

/** Moves a job between non-terminal states, only from `from`, so a late write never undoes a later state. */
export async function moveJobState(env: Env, jobId: string, from: JobState, to: JobState) {
  await db(env.DB)
    .update(jobs)
    .set({ state: to, updatedAt: Date.now() })
    .where(and(eq(jobs.id, jobId), eq(jobs.state, from)));
}

export async function markJobRunning(env: Env, jobId: string, backupId: string | null) {
  const d = db(env.DB);
  const now = Date.now();
  const stmts = [
    d
      .update(jobs)
      .set({ state: "RUNNING", startedAt: now, updatedAt: now })
      .where(and(eq(jobs.id, jobId), notTerminal)),
  ] as const;
  if (backupId) {
    await d.batch([
      ...stmts,
      d
        .update(backups)
        .set({ status: "running" })
        .where(and(eq(backups.id, backupId), eq(backups.status, "queued"))),
    ]);
  } else {
    await d.batch(stmts);
  }
}

export async function writeProgress(env: Env, jobId: string, progress: unknown) {
  await db(env.DB)
    .update(jobs)
    .set({ progress: JSON.stringify(progress), updatedAt: Date.now() })
    .where(and(eq(jobs.id, jobId), notTerminal));
}

/** A job reached a terminal state: job row and (for backups) the backup row, in one batch. */
export async function finishJob(
  env: Env,
  a: {
    jobId: string;
    type: string;
    tenantId: string;
    runnerId: string;
    /** Who ended the job: the runner (result/reject) or the system (lease expiry, cancel before delivery). */
    actor: "runner" | "system";
    backupId: string | null;
    state: "SUCCEEDED" | "FAILED" | "CANCELLED" | "INTERRUPTED";
    result?: JobResult["result"];
    error?: { code: string; message: string };
    warnings?: string[];
    /** The ledger's latest progress (D1 only had a throttled copy). */
    progress?: string | null;
  },
): Promise<JobState> {
  const d = db(env.DB);
  const now = Date.now();
  let state = a.state;
  let error = a.error;
  let backupPatch: Partial<typeof backups.$inferInsert> | undefined;
  if (a.type === "backup" && a.backupId) {
    if (state === "SUCCEEDED") {
      const parsed = BackupJobResult.safeParse(a.result);
      if (parsed.success) {
        backupPatch = {
          // Never "completed" when a hosting component failed, even if no warning line made it through.
          status: a.warnings?.length || parsed.data.status === "partial" ? "partial" : "completed",
          fileName: parsed.data.fileName,
          size: parsed.data.size,
          sha256: parsed.data.sha256,
          fileCount: parsed.data.fileCount,
          completedAt: now,
        };
      } else {
        // A success without a usable result is not a success: nothing could be restored from it.
        state = "FAILED";
        error = { code: "BAD_RESULT", message: "runner reported success without a valid backup result" };
      }
    }
    backupPatch ??= {
      status: "failed",
      errorCode: error?.code ?? state,
      errorMessage: error?.message ?? `job ${state.toLowerCase()}`,
      completedAt: now,
    };
  }
  const jobPatch = {
    state,
    updatedAt: now,
    finishedAt: now,
    result: a.result
      ? JSON.stringify(a.warnings?.length ? { ...a.result, warnings: a.warnings } : a.result)
      : null,
    errorCode: error?.code ?? null,
    errorMessage: error?.message ?? null,
    ...(a.progress && { progress: a.progress }),
  };
  const jobStmt = d
    .update(jobs)
    .set(jobPatch)
    .where(and(eq(jobs.id, a.jobId), notTerminal));
  // The audit trail records how every job ended, in the same batch as the state change.
  const activityStmt = d.insert(activityLog).values({
    id: newId("act"),
    tenantId: a.tenantId,
    actorType: a.actor,
    actorId: a.actor === "runner" ? a.runnerId : null,
    operation: `job.${a.type}.finish`,
    status: state === "SUCCEEDED" ? "success" : "failure",
    targetType: "job",
    targetId: a.jobId,
    details: JSON.stringify({ state, backupId: a.backupId, ...(error && { error: error.code }) }),
    ip: null,
    createdAt: now,
  });
  if (backupPatch && a.backupId) {
    await d.batch([
      jobStmt,
      d
        .update(backups)
        .set(backupPatch)
        .where(
          and(eq(backups.id, a.backupId), notInArray(backups.status, ["completed", "partial", "failed"])),
        ),
      activityStmt,
    ]);
  } else {
    await d.batch([jobStmt, activityStmt]);
  }
  // Destination side effects (last test status, copy rows) follow the job's final state.
  await applyDestinationOutcome(env, { ...a, state, error }).catch((e) =>
    console.error("destinations: outcome write failed", (e as Error).message),
  );
  return state;
}

export async function setRunnerPresence(env: Env, runnerId: string, online: boolean) {
  await db(env.DB)
    .update(runners)
    .set({ status: online ? "online" : "offline", lastSeenAt: Date.now() })
    .where(eq(runners.id, runnerId));
}

/** Connect: presence and the audit row in one D1 round trip (the connect path must stay lean). */
export async function recordConnect(env: Env, a: { runnerId: string; tenantId: string; ip: string | null }) {
  const d = db(env.DB);
  const now = Date.now();
  await d.batch([
    d.update(runners).set({ status: "online", lastSeenAt: now }).where(eq(runners.id, a.runnerId)),
    d.insert(activityLog).values({
      id: newId("act"),
      tenantId: a.tenantId,
      actorType: "runner",
      actorId: a.runnerId,
      operation: "runner.connect",
      status: "success",
      targetType: "runner",
      targetId: a.runnerId,
      details: null,
      ip: a.ip,
      createdAt: now,
    }),
  ]);
}
