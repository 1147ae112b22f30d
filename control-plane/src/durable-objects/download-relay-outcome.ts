import { and, eq } from "drizzle-orm";
import { db } from "../db/client";
import { jobs } from "../db/schema";
import type { Env } from "../env";
import { writeActivity } from "../lib/activity";
import { jobFailure, type JobOutcome } from "../lib/job-outcome";
import { relayStub } from "./download-relay";

/**
 * A relay-upload job that ended without success tells its relay at once: the waiting download gets a
 * 502 with the job's error instead of waiting for RELAY_TIMEOUT, and the activity log says why.
 * The message is the runner's job error (already shown by GET /jobs/:id); job params hold no secrets.
 */
export async function relayOutcome(env: Env, a: JobOutcome): Promise<void> {
  if (a.state === "SUCCEEDED") return;
  const job = await db(env.DB)
    .select({ params: jobs.params })
    .from(jobs)
    .where(and(eq(jobs.id, a.jobId), eq(jobs.tenantId, a.tenantId)))
    .get();
  const relayId = job ? (JSON.parse(job.params) as { relayId?: unknown }).relayId : undefined;
  if (typeof relayId !== "string") return;
  const { code, message } = jobFailure(a);
  await relayStub(env, relayId).fail({ jobId: a.jobId, code, message });
  await writeActivity(env, {
    tenantId: a.tenantId,
    actorType: "runner",
    actorId: a.runnerId,
    operation: "backup.download.relay",
    status: "failure",
    targetType: "relay",
    targetId: relayId,
    details: { jobId: a.jobId, error: code, message: message.slice(0, 500) },
  });
}
