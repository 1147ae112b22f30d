import { eq } from "drizzle-orm";
import type { JobSecrets, JobSpec } from "../../../shared/protocol/job-claims";
import { db } from "../db/client";
import { backups, jobs, runners } from "../db/schema";
import type { Env } from "../env";
import { encryptJobSecrets } from "../crypto/job-token";
import { runnerStub } from "./runner-stub";
import { applyDestinationOutcome } from "./destination-outcomes";

/**
 * Hands a job (already recorded in D1) to its runner's Durable Object. Secrets are sealed to the
 * runner's X25519 key here, once; only the JWE goes to the ledger. If the hand-off fails the job and
 * its backup are marked failed, so nothing waits forever for a job no one holds.
 */
export async function dispatchJob(
  env: Env,
  runner: typeof runners.$inferSelect,
  a: { jobId: string; spec: JobSpec; secrets: JobSecrets | null; backupId: string | null },
): Promise<{ delivered: boolean }> {
  try {
    const secrets = a.secrets
      ? await encryptJobSecrets(JSON.parse(runner.encryptionPublicKey), a.secrets)
      : null;
    return await runnerStub(env, runner.id).enqueue({
      jobId: a.jobId,
      tenantId: runner.tenantId,
      runnerId: runner.id,
      type: a.spec.type,
      spec: a.spec,
      secrets,
      backupId: a.backupId,
    });
  } catch (e) {
    const now = Date.now();
    const d = db(env.DB);
    const msg = `could not hand the job to the runner session: ${(e as Error).message}`;
    await d
      .update(jobs)
      .set({
        state: "FAILED",
        errorCode: "DISPATCH_FAILED",
        errorMessage: msg,
        updatedAt: now,
        finishedAt: now,
      })
      .where(eq(jobs.id, a.jobId));
    if (a.backupId && a.spec.type === "backup") {
      await d
        .update(backups)
        .set({ status: "failed", errorCode: "DISPATCH_FAILED", errorMessage: msg, completedAt: now })
        .where(eq(backups.id, a.backupId));
    }
    // Copies waiting on this job (auto-sync, sync) and a Test Connection's status fail with it.
    await applyDestinationOutcome(env, {
      jobId: a.jobId,
      type: a.spec.type,
      tenantId: runner.tenantId,
      runnerId: runner.id,
      state: "FAILED",
      error: { code: "DISPATCH_FAILED", message: msg },
    }).catch(() => {});
    throw e;
  }
}
