import { Hono } from "hono";
import { and, eq } from "drizzle-orm";
import { db } from "../db/client";
import { jobs } from "../db/schema";
import type { AppEnv } from "../env";
import { notFound } from "../errors";
import { activity, noteActivity } from "../lib/activity";
import { currentUser, requireAuth, tenantScope } from "../lib/auth";
import { runnerStub } from "../lib/runner-stub";

type JobRow = typeof jobs.$inferSelect;

const parseJson = (s: string | null): unknown => {
  if (!s) return undefined;
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
};

export function jobView(j: JobRow, liveProgress?: unknown) {
  const p = (liveProgress ?? parseJson(j.progress) ?? {}) as Record<string, unknown>;
  return {
    id: j.id,
    type: j.type,
    state: j.state,
    runnerId: j.runnerId,
    backupId: j.backupId,
    progress: {
      bytes: typeof p.bytes === "number" ? p.bytes : 0,
      files: typeof p.files === "number" ? p.files : 0,
      rate: typeof p.rate === "number" ? p.rate : 0,
      ...(typeof p.percent === "number" && { percent: p.percent }),
      ...(typeof p.phase === "string" && { phase: p.phase }),
      ...(typeof p.totalBytes === "number" && { totalBytes: p.totalBytes }),
      ...(typeof p.message === "string" && { message: p.message }),
      ...(typeof p.etaSeconds === "number" && { etaSeconds: p.etaSeconds }),
      ...(typeof p.domainsText === "string" && { domainsText: p.domainsText }),
      ...(Array.isArray(p.warnings) && { warnings: p.warnings as unknown[] }),
      ...(Array.isArray(p.errors) && { errors: p.errors as unknown[] }),
    },
    ...(j.errorCode && { error: { code: j.errorCode, message: j.errorMessage ?? "" } }),
    ...(j.result && { result: parseJson(j.result) }),
    createdAt: new Date(j.createdAt).toISOString(),
    updatedAt: new Date(j.updatedAt).toISOString(),
    startedAt: j.startedAt ? new Date(j.startedAt).toISOString() : null,
    finishedAt: j.finishedAt ? new Date(j.finishedAt).toISOString() : null,
  };
}

async function findJob(c: { env: AppEnv["Bindings"] }, id: string, scope: string | null): Promise<JobRow> {
  const row = await db(c.env.DB)
    .select()
    .from(jobs)
    .where(and(eq(jobs.id, id), scope ? eq(jobs.tenantId, scope) : undefined))
    .get();
  if (!row) throw notFound("job");
  return row;
}

export const jobRoutes = new Hono<AppEnv>();

/** Running jobs report live progress from the runner's session (D1 keeps a copy written at most every 2 s). */
jobRoutes.get("/:id", requireAuth("backups.read"), async (c) => {
  const j = await findJob(c, c.req.param("id"), tenantScope(currentUser(c)));
  let live: unknown;
  if (j.state === "RUNNING" || j.state === "DELIVERED") {
    live = await runnerStub(c.env, j.runnerId)
      .progress(j.id)
      .catch(() => undefined);
  }
  return c.json(jobView(j, live ?? undefined));
});

jobRoutes.post("/:id/cancel", activity("job.cancel"), requireAuth("backups.create"), async (c) => {
  const id = c.req.param("id");
  noteActivity(c, { targetType: "job", targetId: id });
  const j = await findJob(c, id, tenantScope(currentUser(c)));
  await runnerStub(c.env, j.runnerId).cancel(j.id);
  return c.json({ job: jobView(await findJob(c, id, null)) }, 202);
});
