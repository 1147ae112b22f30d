import { and, asc, eq, inArray } from "drizzle-orm";
import type { JobDestination, RemoteJobDestination } from "../../../shared/protocol/job-claims";
import { db } from "../db/client";
import { backupCopies, destinations, jobs } from "../db/schema";
import type { Env } from "../env";
import { conflict, notFound, validationFailed } from "../errors";
import { findDestination, jobCredentials, jobDestination, type DestinationRow } from "./destinations";
import { newId } from "./ids";

export type CopyRow = typeof backupCopies.$inferSelect;

/** Auto-sync targets of a new backup: the backup's tenant's destinations, checked before the job exists. */
export async function planCopies(
  env: Env,
  a: { tenantId: string; backupId: string; jobId: string; destinationIds: string[]; now: number },
): Promise<{
  copies: RemoteJobDestination[];
  credentials: Record<string, Record<string, unknown>>;
  rows: (typeof backupCopies.$inferInsert)[];
}> {
  const ids = [...new Set(a.destinationIds)];
  if (ids.length === 0) return { copies: [], credentials: {}, rows: [] };
  const found = await db(env.DB)
    .select()
    .from(destinations)
    .where(and(inArray(destinations.id, ids), eq(destinations.tenantId, a.tenantId)))
    .all();
  const byId = new Map(found.map((d) => [d.id, d]));
  const missing = ids.filter((id) => !byId.has(id));
  // Another tenant's destination is as unknown as a made-up id.
  if (missing.length) throw validationFailed(`destinations: unknown destination(s): ${missing.join(", ")}`);
  const rows: DestinationRow[] = ids.map((id) => byId.get(id)!);
  return {
    copies: rows.map(jobDestination),
    credentials: await jobCredentials(env, rows),
    rows: rows.map((d) => ({
      id: newId("cpy"),
      tenantId: a.tenantId,
      backupId: a.backupId,
      destinationId: d.id,
      jobId: a.jobId,
      status: "pending" as const,
      objectName: null,
      size: null,
      sha256: null,
      bytesDone: 0,
      errorCode: null,
      errorMessage: null,
      createdAt: a.now,
      updatedAt: a.now,
    })),
  };
}

const parse = (s: string | null): Record<string, unknown> | undefined => {
  try {
    return s ? (JSON.parse(s) as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
};

/**
 * Copies of one backup. While its job runs, `bytesDone` is live: a sync job's bytes, or the
 * per-copy bytes an auto-sync backup reports in its progress (`copies`).
 */
export async function copyViews(env: Env, backupId: string, live?: Map<string, unknown>) {
  const d = db(env.DB);
  const rows = await d
    .select()
    .from(backupCopies)
    .where(eq(backupCopies.backupId, backupId))
    .orderBy(asc(backupCopies.createdAt))
    .all();
  const active = rows.filter((r) => r.jobId && (r.status === "pending" || r.status === "running"));
  const progress = new Map<string, Record<string, unknown> | undefined>();
  const syncJobs = new Set<string>();
  if (active.length) {
    const js = await d
      .select({ id: jobs.id, type: jobs.type, state: jobs.state, progress: jobs.progress })
      .from(jobs)
      .where(inArray(jobs.id, [...new Set(active.map((r) => r.jobId!))]))
      .all();
    for (const j of js) if (j.type === "sync") syncJobs.add(j.id);
    for (const j of js) progress.set(j.id, (live?.get(j.id) as Record<string, unknown>) ?? parse(j.progress));
  }
  return rows.map((r) => {
    let bytesDone = r.bytesDone;
    let status = r.status;
    let monitor: Record<string, unknown> | undefined;
    const p = r.jobId ? progress.get(r.jobId) : undefined;
    if (p && (r.status === "pending" || r.status === "running")) {
      status = "running";
      // Sync: the job's bytes are the copy's. Auto-sync: per-copy bytes (a backup's own bytes count sources read).
      const per = p.copies as Record<string, unknown> | undefined;
      const v =
        per && typeof per === "object"
          ? per[r.destinationId]
          : r.jobId && syncJobs.has(r.jobId)
            ? p.bytes
            : undefined;
      if (typeof v === "number") bytesDone = v;
      // Sync monitor: the job's own rate, ETA, percent and current file are the copy's.
      if (r.jobId && syncJobs.has(r.jobId)) {
        monitor = {
          ...(typeof p.percent === "number" && { percent: p.percent }),
          ...(typeof p.rate === "number" && { bytesPerSecond: p.rate }),
          ...(typeof p.etaSeconds === "number" && { etaSeconds: p.etaSeconds }),
          ...(typeof p.message === "string" && { currentFile: p.message }),
        };
      }
    }
    return {
      id: r.id,
      destinationId: r.destinationId,
      jobId: r.jobId,
      status,
      objectName: r.objectName,
      size: r.size,
      sha256: r.sha256,
      bytesDone,
      ...(monitor && { monitor }),
      ...(r.errorCode && { error: { code: r.errorCode, message: r.errorMessage ?? "" } }),
      createdAt: new Date(r.createdAt).toISOString(),
      updatedAt: new Date(r.updatedAt).toISOString(),
    };
  });
}

export async function findCopy(env: Env, backupId: string, destinationId: string): Promise<CopyRow> {
  const row = await db(env.DB)
    .select()
    .from(backupCopies)
    .where(and(eq(backupCopies.backupId, backupId), eq(backupCopies.destinationId, destinationId)))
    .get();
  if (!row) throw notFound("copy of this backup on that destination");
  return row;
}

/**
 * Restore/verify source: the runner's local archive, or (with `destinationId`) that backup's completed
 * copy on a remote destination, whose credentials then travel in the job's JWE.
 */
export async function archiveLocation(
  env: Env,
  b: { id: string; tenantId: string },
  destinationId: string | undefined,
): Promise<{ destination: JobDestination; credentials?: Record<string, Record<string, unknown>> }> {
  if (!destinationId) return { destination: { kind: "local" } };
  const copy = await findCopy(env, b.id, destinationId);
  if (copy.status !== "completed")
    throw conflict(`the copy on that destination is ${copy.status}, not completed`);
  const dest = await findDestination(env, destinationId, b.tenantId);
  return { destination: jobDestination(dest), credentials: await jobCredentials(env, [dest]) };
}
