import { Hono, type Context } from "hono";
import { and, eq, inArray } from "drizzle-orm";
import { z } from "zod";
import {
  DOWNLOAD_URL_TTL_SECONDS,
  PRESIGNABLE_KINDS,
  S3Config,
  S3Credentials,
  type DestinationKind,
} from "../../../shared/destinations";
import { ApiErrorCode } from "../../../shared/errors";
import { isTerminalJobState } from "../../../shared/jobs";
import type { JobDestination, JobSecrets, JobSpec } from "../../../shared/protocol/job-claims";
import { randomToken, sha256Hex } from "../crypto/random";
import { db } from "../db/client";
import { backupCopies, jobs, type runners } from "../db/schema";
import type { AppEnv } from "../env";
import { ApiError, conflict } from "../errors";
import { activity, noteActivity } from "../lib/activity";
import { currentUser, requireAuth, tenantScope } from "../lib/auth";
import { findCopy } from "../lib/backup-copies";
import { openCredentials } from "../lib/destination-credentials";
import { findDestination, jobCredentials, jobDestination, type DestinationRow } from "../lib/destinations";
import { dispatchJob } from "../lib/dispatch";
import { newId } from "../lib/ids";
import { pendingJobRow } from "../lib/pending-job";
import { takeRateLimit } from "../lib/rate-limit";
import { getSetting } from "../lib/settings";
import { presignGetUrl } from "../lib/s3-presign";
import { readJson } from "../lib/validate";
import { relayStub } from "./relay";
import { runnerStub } from "../lib/runner-stub";
import { archiveBinding, findBackup, type BackupRow } from "./backups";
import { findRunner } from "./runners";

type RunnerRow = typeof runners.$inferSelect;

/** Copies of a backup on remote destinations: sync later (and retry), download. Mounted under /api/v1/backups. */

const SyncBody = z.object({
  destinationId: z.string().min(1).max(64),
  /** Read from this completed copy instead of the runner's local archive. */
  sourceDestinationId: z.string().min(1).max(64).optional(),
  /** Retry from zero: the runner aborts what a paused or failed attempt kept instead of resuming it. */
  restart: z.boolean().optional(),
});
/** destinationId absent: the archive in the runner's own backup directory (always relayed). */
const DownloadBody = z.object({ destinationId: z.string().min(1).max(64).optional() });

export const backupCopyRoutes = new Hono<AppEnv>();

backupCopyRoutes.post("/:id/sync", activity("backup.sync"), requireAuth("backups.create"), async (c) => {
  const id = c.req.param("id");
  noteActivity(c, { targetType: "backup", targetId: id });
  return startSync(c, id, await readJson(c, SyncBody));
});

/** The backup's archive on the runner's disk; only a finished backup has one. */
function completedArchive(b: BackupRow): { fileName: string; size: number; sha256: string } {
  if (b.status !== "completed" && b.status !== "partial")
    throw conflict(`backup is ${b.status}, not completed`);
  if (!b.fileName || b.size === null || !b.sha256) throw conflict("backup has no archive file");
  return { fileName: b.fileName, size: b.size, sha256: b.sha256 };
}

/** The job of a copy's latest attempt (sync, or the backup job for an auto-sync copy). */
async function lastAttemptJob(env: AppEnv["Bindings"], copy: { jobId: string | null }) {
  return copy.jobId ? await db(env.DB).select().from(jobs).where(eq(jobs.id, copy.jobId)).get() : undefined;
}

/** Two attempts must never write the same upload: a paused job has to have stopped first. */
function refuseWhilePausing(job: { state: string } | undefined) {
  if (job && !isTerminalJobState(job.state))
    throw conflict("the copy is still pausing; try again in a moment");
}

/** A sync job: the backup's identity and expected bytes (checked after upload), where to read, where to write. */
function syncJobSpec(
  b: BackupRow,
  archive: { fileName: string; size: number; sha256: string },
  source: JobDestination,
  target: Parameters<typeof jobDestination>[0],
  mode: { restart?: true; discard?: true },
): Extract<JobSpec, { type: "sync" }> {
  return {
    type: "sync",
    params: {
      binding: archiveBinding(b),
      ...archive,
      source,
      target: jobDestination(target),
      ...mode,
    },
  };
}

/**
 * Sync, retry and resume: one job per attempt on the backup's runner. A failed or paused copy is
 * retried in place; the runner resumes what the previous attempt kept unless `restart` is set.
 */
async function startSync(c: Context<AppEnv>, id: string, body: z.infer<typeof SyncBody>) {
  const user = currentUser(c);
  const b = await findBackup(c, id, tenantScope(user));
  noteActivity(c, { tenantId: b.tenantId, details: { destinationId: body.destinationId } });
  const archive = completedArchive(b);
  const target = await findDestination(c.env, body.destinationId, b.tenantId);
  const runner = await findRunner(c, b.runnerId, b.tenantId);
  if (runner.revokedAt) throw conflict("runner is revoked");
  const credRows = [target];
  let source: JobDestination = { kind: "local" };
  if (body.sourceDestinationId) {
    const from = await findCopy(c.env, b.id, body.sourceDestinationId);
    if (from.status !== "completed") throw conflict("the source copy is not completed");
    const fromDest = await findDestination(c.env, body.sourceDestinationId, b.tenantId);
    source = jobDestination(fromDest);
    credRows.push(fromDest);
  }
  const existing = await db(c.env.DB)
    .select()
    .from(backupCopies)
    .where(and(eq(backupCopies.backupId, b.id), eq(backupCopies.destinationId, target.id)))
    .get();
  if (existing?.status === "completed") throw conflict("this backup already has a completed copy there");
  if (existing && existing.status !== "failed" && existing.status !== "paused")
    throw conflict(`a copy to this destination is ${existing.status}`);
  if (existing?.status === "paused") refuseWhilePausing(await lastAttemptJob(c.env, existing));
  const spec = syncJobSpec(b, archive, source, target, { ...(body.restart && { restart: true }) });
  const secrets = { destinations: await jobCredentials(c.env, credRows) };
  const jobId = newId("job");
  const now = Date.now();
  const d = db(c.env.DB);
  const jobInsert = d.insert(jobs).values(
    pendingJobRow({
      id: jobId,
      tenantId: b.tenantId,
      runnerId: runner.id,
      backupId: b.id,
      spec,
      createdBy: user.id,
      now,
    }),
  );
  // Retry reuses the failed row: one row per (backup, destination), its history is in the jobs.
  const copyWrite = existing
    ? d
        .update(backupCopies)
        .set({ status: "pending", jobId, bytesDone: 0, errorCode: null, errorMessage: null, updatedAt: now })
        .where(and(eq(backupCopies.id, existing.id), inArray(backupCopies.status, ["failed", "paused"])))
    : d.insert(backupCopies).values({
        id: newId("cpy"),
        tenantId: b.tenantId,
        backupId: b.id,
        destinationId: target.id,
        jobId,
        status: "pending",
        objectName: archive.fileName,
        bytesDone: 0,
        createdAt: now,
        updatedAt: now,
      });
  await d.batch([jobInsert, copyWrite]);
  noteActivity(c, { details: { jobId } });
  await dispatchJob(c.env, runner, { jobId, spec, secrets, backupId: b.id });
  return c.json({ job: { id: jobId, state: "PENDING" } }, 202);
}

/**
 * Download: a presigned GET URL (S3, S3-compatible, GCS over HMAC) valid DOWNLOAD_URL_TTL_SECONDS; bytes go
 * straight from storage to the user. Other destinations and the runner's local archive are relayed: a
 * `relay-upload` job makes the runner stream the object through the control plane (routes/relay.ts).
 * Rate-limited per user either way (setting `download.perHour`).
 */
backupCopyRoutes.post(
  "/:id/download",
  activity("backup.download"),
  requireAuth("backups.download"),
  async (c) => {
    const id = c.req.param("id");
    noteActivity(c, { targetType: "backup", targetId: id });
    const body = await readJson(c, DownloadBody);
    const user = currentUser(c);
    const b = await findBackup(c, id, tenantScope(user));
    noteActivity(c, { tenantId: b.tenantId, details: { destinationId: body.destinationId ?? "local" } });
    const takeDownload = async () =>
      takeRateLimit(c.env, {
        operation: "download",
        scopeId: user.id,
        limit: await getSetting(c.env, b.tenantId, "download.perHour"),
        windowMs: 3600_000,
        what: "downloads",
      });
    const relay = async (from: RelaySource) => {
      const runner = await onlineRunner(c, b.runnerId, b.tenantId);
      await takeDownload();
      return c.json(await startRelay(c, runner, b.id, from));
    };
    if (!body.destinationId)
      return relay({ ...completedArchive(b), source: { kind: "local" }, secrets: null });
    const copy = await findCopy(c.env, b.id, body.destinationId);
    if (copy.status !== "completed" || !copy.objectName)
      throw conflict(`the copy is ${copy.status}, not completed`);
    const dest = await findDestination(c.env, body.destinationId, b.tenantId);
    if (PRESIGNABLE_KINDS.includes(dest.kind as DestinationKind)) {
      await takeDownload();
      return c.json(await presignedDownload(c.env, dest, { ...copy, objectName: copy.objectName }));
    }
    if (copy.size === null || !copy.sha256) throw conflict("the copy has no recorded size and checksum");
    return relay({
      fileName: copy.objectName,
      size: copy.size,
      sha256: copy.sha256,
      source: jobDestination(dest),
      secrets: { destinations: await jobCredentials(c.env, [dest]) },
    });
  },
);

/** A GET URL signed with the destination's own keys, valid DOWNLOAD_URL_TTL_SECONDS. */
async function presignedDownload(
  env: AppEnv["Bindings"],
  dest: DestinationRow,
  copy: { objectName: string; size: number | null; sha256: string | null },
) {
  if (!dest.encryptedCredentials) throw conflict("destination has no credentials");
  const config = S3Config.parse(JSON.parse(dest.config));
  const creds = S3Credentials.parse(
    await openCredentials(env, dest.tenantId, dest.id, dest.encryptedCredentials),
  );
  const gcs = dest.kind === "gcs";
  const region = config.region ?? (gcs ? "auto" : "us-east-1");
  const prefix = config.prefix.replace(/^\/+/, "").replace(/\/+$/, "");
  const url = await presignGetUrl({
    endpoint:
      config.endpoint ?? (gcs ? "https://storage.googleapis.com" : `https://s3.${region}.amazonaws.com`),
    bucket: config.bucket,
    key: prefix ? `${prefix}/${copy.objectName}` : copy.objectName,
    region,
    pathStyle: config.pathStyle,
    accessKeyId: creds.accessKeyId,
    secretAccessKey: creds.secretAccessKey,
    sessionToken: creds.sessionToken,
    expiresSeconds: DOWNLOAD_URL_TTL_SECONDS,
  });
  return {
    url,
    expiresAt: new Date(Date.now() + DOWNLOAD_URL_TTL_SECONDS * 1000).toISOString(),
    fileName: copy.objectName,
    size: copy.size,
    sha256: copy.sha256,
  };
}

/** A relay needs the runner now: refuse at once (409 RUNNER_OFFLINE) rather than leave a download hanging. */
async function onlineRunner(c: Context<AppEnv>, runnerId: string, tenantId: string) {
  const runner = await findRunner(c, runnerId, tenantId);
  if (runner.revokedAt) throw conflict("runner is revoked");
  if (runner.status !== "online")
    throw new ApiError(
      409,
      ApiErrorCode.RunnerOffline,
      "the runner holding this archive is offline; try again later",
    );
  return runner;
}

/** What a relay streams: an archive on the runner's disk or a remote copy the runner reads. */
interface RelaySource {
  fileName: string;
  size: number;
  sha256: string;
  source: JobDestination;
  secrets: JobSecrets | null;
}

async function startRelay(c: Context<AppEnv>, runner: RunnerRow, backupId: string, a: RelaySource) {
  const relayId = newId("rly");
  const key = randomToken();
  const expiresAt = Date.now() + DOWNLOAD_URL_TTL_SECONDS * 1000;
  await relayStub(c.env, relayId).open({
    keyHash: await sha256Hex(key),
    runnerId: runner.id,
    fileName: a.fileName,
    size: a.size,
    expiresAt,
    waitMs: Number(c.env.RELAY_WAIT_MS) || undefined,
  });
  const spec: JobSpec = {
    type: "relay-upload",
    params: { relayId, fileName: a.fileName, size: a.size, sha256: a.sha256, source: a.source },
  };
  const jobId = newId("job");
  const now = Date.now();
  await db(c.env.DB)
    .insert(jobs)
    .values(
      pendingJobRow({
        id: jobId,
        tenantId: runner.tenantId,
        runnerId: runner.id,
        backupId,
        spec,
        createdBy: currentUser(c).id,
        now,
      }),
    );
  noteActivity(c, { details: { jobId, relayId } });
  await dispatchJob(c.env, runner, { jobId, spec, secrets: a.secrets, backupId });
  return {
    url: new URL(`/api/v1/relay/${relayId}?key=${key}`, c.req.url).toString(),
    relayed: true,
    jobId,
    expiresAt: new Date(expiresAt).toISOString(),
    fileName: a.fileName,
    size: a.size,
    sha256: a.sha256,
  };
}

/** The copy named by `/:id/copies/:destinationId`, in the caller's tenant. */
async function requestedCopy(c: Context<AppEnv>) {
  const id = c.req.param("id")!;
  const destinationId = c.req.param("destinationId")!;
  noteActivity(c, { targetType: "backup", targetId: id, details: { destinationId } });
  const b = await findBackup(c, id, tenantScope(currentUser(c)));
  noteActivity(c, { tenantId: b.tenantId });
  return { b, copy: await findCopy(c.env, b.id, destinationId), destinationId };
}

/**
 * Pause a running sync: the copy becomes `paused` at once (never completed, never failed) and the
 * runner stops the job keeping what it uploaded. Copies made by a backup job (auto-sync) cannot be
 * paused on their own: that would stop the backup.
 */
backupCopyRoutes.post(
  "/:id/copies/:destinationId/pause",
  activity("backup.copy.pause"),
  requireAuth("backups.create"),
  async (c) => {
    const { b, copy, destinationId } = await requestedCopy(c);
    if (copy.status !== "pending" && copy.status !== "running")
      throw conflict(`the copy is ${copy.status}, not running`);
    const job = await lastAttemptJob(c.env, copy);
    if (!job || job.type !== "sync")
      throw conflict("only a sync job can be paused; a copy made during a backup can be retried later");
    // Keep the last progress the monitor saw, so a paused copy shows how far it got.
    const live = (await runnerStub(c.env, job.runnerId)
      .progress(job.id)
      .catch(() => undefined)) as { bytes?: unknown } | undefined;
    const bytesDone = typeof live?.bytes === "number" ? live.bytes : copy.bytesDone;
    await db(c.env.DB)
      .update(backupCopies)
      .set({ status: "paused", bytesDone, updatedAt: Date.now() })
      .where(and(eq(backupCopies.id, copy.id), inArray(backupCopies.status, ["pending", "running"])));
    noteActivity(c, { details: { jobId: job.id } });
    await runnerStub(c.env, job.runnerId).cancel(job.id, "pause");
    const row = await findCopy(c.env, b.id, destinationId);
    return c.json(
      { copy: { destinationId, status: row.status, bytesDone: row.bytesDone, jobId: job.id } },
      202,
    );
  },
);

/** Resume a paused copy (or retry a failed one): a new sync job that continues where the last stopped. */
backupCopyRoutes.post(
  "/:id/copies/:destinationId/resume",
  activity("backup.copy.resume"),
  requireAuth("backups.create"),
  async (c) => {
    const { b, copy, destinationId } = await requestedCopy(c);
    if (copy.status !== "paused" && copy.status !== "failed")
      throw conflict(`the copy is ${copy.status}, not paused or failed`);
    // Read from the same place as the attempt being resumed.
    const prev = await lastAttemptJob(c.env, copy);
    const source =
      prev?.type === "sync"
        ? (JSON.parse(prev.params) as { source?: { kind?: string; destinationId?: string } }).source
        : undefined;
    return startSync(c, b.id, {
      destinationId,
      ...(source?.kind === "remote" && source.destinationId && { sourceDestinationId: source.destinationId }),
    });
  },
);

/**
 * Delete a paused or failed copy. Its row goes at once; when the last attempt was a sync job, a
 * `sync` job with `discard` makes the runner abort the multipart upload it kept, so no orphaned parts
 * are left to bill.
 */
backupCopyRoutes.delete(
  "/:id/copies/:destinationId",
  activity("backup.copy.delete"),
  requireAuth("backups.create"),
  async (c) => {
    const { b, copy, destinationId } = await requestedCopy(c);
    if (copy.status !== "paused" && copy.status !== "failed")
      throw conflict(`the copy is ${copy.status}; only a paused or failed copy can be deleted`);
    const prev = await lastAttemptJob(c.env, copy);
    refuseWhilePausing(prev);
    const d = db(c.env.DB);
    if (prev?.type !== "sync" || !b.fileName || b.size === null || !b.sha256) {
      await d.delete(backupCopies).where(eq(backupCopies.id, copy.id));
      return c.json({ deleted: true, job: null });
    }
    const target = await findDestination(c.env, destinationId, b.tenantId);
    const runner = await findRunner(c, b.runnerId, b.tenantId);
    const archive = { fileName: b.fileName, size: b.size, sha256: b.sha256 };
    const spec = syncJobSpec(b, archive, { kind: "local" }, target, { discard: true });
    const jobId = newId("job");
    const now = Date.now();
    await d.batch([
      d.delete(backupCopies).where(eq(backupCopies.id, copy.id)),
      d.insert(jobs).values(
        pendingJobRow({
          id: jobId,
          tenantId: b.tenantId,
          runnerId: runner.id,
          backupId: b.id,
          spec,
          createdBy: currentUser(c).id,
          now,
        }),
      ),
    ]);
    noteActivity(c, { details: { jobId } });
    const secrets = { destinations: await jobCredentials(c.env, [target]) };
    await dispatchJob(c.env, runner, { jobId, spec, secrets, backupId: b.id });
    return c.json({ deleted: true, job: { id: jobId, state: "PENDING" } }, 202);
  },
);
