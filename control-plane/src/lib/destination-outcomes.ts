import { and, eq, inArray } from "drizzle-orm";
import { CopyResult } from "../../../shared/destinations";
import { db } from "../db/client";
import { activityLog, backupCopies, destinations, jobs } from "../db/schema";
import type { Env } from "../env";
import { newId } from "./ids";
import { jobFailure, type JobOutcome } from "./job-outcome";
import { relayOutcome } from "../durable-objects/download-relay-outcome";

/**
 * What a finished job means for destinations: Test Connection updates the destination's last status;
 * backup (auto-sync) and sync jobs settle their copy rows. A copy is `completed` only when the runner
 * reported it completed with size and sha256; anything else (job failed, cancelled, interrupted,
 * copy missing from the result) leaves it `failed`, never completed. A failed relay-upload ends its
 * waiting download at once (durable-objects/download-relay-outcome.ts).
 */
export async function applyDestinationOutcome(env: Env, a: JobOutcome & { type: string }): Promise<void> {
  if (a.type === "test-destination") return testOutcome(env, a);
  if (a.type === "backup" || a.type === "sync") return copyOutcome(env, a);
  if (a.type === "relay-upload") return relayOutcome(env, a);
}

async function testOutcome(env: Env, a: JobOutcome) {
  const d = db(env.DB);
  const job = await d.select({ params: jobs.params }).from(jobs).where(eq(jobs.id, a.jobId)).get();
  const destinationId = job
    ? (JSON.parse(job.params) as { target?: { destinationId?: string } }).target?.destinationId
    : undefined;
  if (!destinationId) return;
  const ok = a.state === "SUCCEEDED";
  const now = Date.now();
  const failure = jobFailure(a);
  const error = ok ? null : `${failure.code}: ${failure.message}`;
  await d.batch([
    d
      .update(destinations)
      .set({ lastTestStatus: ok ? "ok" : "failed", lastTestAt: now, lastTestError: error })
      .where(eq(destinations.id, destinationId)),
    d.insert(activityLog).values({
      id: newId("act"),
      tenantId: a.tenantId,
      actorType: "runner",
      actorId: a.runnerId,
      operation: "destination.test.finish",
      status: ok ? "success" : "failure",
      targetType: "destination",
      targetId: destinationId,
      details: JSON.stringify({
        jobId: a.jobId,
        ...(!ok && { error: a.error?.code ?? a.state, message: a.error?.message }),
      }),
      ip: null,
      createdAt: now,
    }),
  ]);
}

async function copyOutcome(env: Env, a: JobOutcome) {
  const d = db(env.DB);
  const rows = await d
    .select()
    .from(backupCopies)
    .where(
      and(eq(backupCopies.jobId, a.jobId), inArray(backupCopies.status, ["pending", "running", "paused"])),
    )
    .all();
  if (rows.length === 0) return;
  const reported = new Map<string, CopyResult>();
  const list = a.result?.copies ?? (a.result && "destinationId" in a.result ? [a.result] : []);
  if (Array.isArray(list)) {
    for (const item of list) {
      const p = CopyResult.safeParse(item);
      if (p.success) reported.set(p.data.destinationId, p.data);
    }
  }
  const now = Date.now();
  const stmts = rows.map((row) => {
    const r = reported.get(row.destinationId);
    const done =
      a.state === "SUCCEEDED" && r?.status === "completed" && r.size !== undefined && r.sha256 !== undefined;
    // Paused by the user (the job ended because of it): stays paused, resumable, never completed.
    if (!done && row.status === "paused")
      return d
        .update(backupCopies)
        .set({ errorCode: null, errorMessage: null, updatedAt: now })
        .where(eq(backupCopies.id, row.id));
    const error = done
      ? null
      : (r?.error ??
        a.error ?? {
          code: a.state === "SUCCEEDED" ? "NOT_REPORTED" : a.state,
          message: "copy did not complete",
        });
    return d
      .update(backupCopies)
      .set(
        done
          ? {
              status: "completed",
              objectName: r!.objectName ?? row.objectName,
              size: r!.size,
              sha256: r!.sha256,
              bytesDone: r!.size!,
              errorCode: null,
              errorMessage: null,
              updatedAt: now,
            }
          : { status: "failed", errorCode: error!.code, errorMessage: error!.message, updatedAt: now },
      )
      .where(eq(backupCopies.id, row.id));
  });
  const failed = rows.filter((row) => {
    const r = reported.get(row.destinationId);
    if (row.status === "paused") return false;
    return !(a.state === "SUCCEEDED" && r?.status === "completed");
  });
  const activity = failed.map((row) =>
    d.insert(activityLog).values({
      id: newId("act"),
      tenantId: a.tenantId,
      actorType: "runner",
      actorId: a.runnerId,
      operation: "backup.copy.finish",
      status: "failure",
      targetType: "backup",
      targetId: row.backupId,
      details: JSON.stringify({
        jobId: a.jobId,
        destinationId: row.destinationId,
        error: reported.get(row.destinationId)?.error?.code ?? a.error?.code ?? a.state,
      }),
      ip: null,
      createdAt: now,
    }),
  );
  const [first, ...rest] = [...stmts, ...activity];
  if (first) await d.batch([first, ...rest]);
}
