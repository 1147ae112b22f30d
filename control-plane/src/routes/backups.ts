import { Hono, type Context } from "hono";
import { and, desc, eq, inArray } from "drizzle-orm";
import { z } from "zod";
import { isValidBackupName } from "../../../shared/naming";
import type { JobEncryption, JobSecrets, JobSpec } from "../../../shared/protocol/job-claims";
import { bytesToBase64 } from "../crypto/random";
import { db } from "../db/client";
import { backups, jobs } from "../db/schema";
import type { AppEnv } from "../env";
import { conflict, notFound, validationFailed } from "../errors";
import { activity, noteActivity } from "../lib/activity";
import { currentUser, requireAuth, tenantScope } from "../lib/auth";
import { dispatchJob } from "../lib/dispatch";
import { newId } from "../lib/ids";
import { pendingJobRow } from "../lib/pending-job";
import { newDataKey, unwrapDataKey } from "../lib/panel-keys";
import { readJson } from "../lib/validate";
import { findRunner } from "./runners";
import { archiveLocation, copyViews, planCopies } from "../lib/backup-copies";

/** Adds remote-destination credentials to a job's secrets (sealed to the runner with the rest). */
const withCredentials = (secrets: JobSecrets | null, creds?: Record<string, Record<string, unknown>>) =>
  creds ? { ...secrets, destinations: creds } : secrets;
import { ApiError } from "../errors";
import { ApiErrorCode } from "../../../shared/errors";
import { HostingComponent } from "../../../shared/protocol/job-claims";
import { backupCopies, runnerDomains } from "../db/schema";
import { insertRestoreJobWithinLimit } from "../lib/restore-limit";
import { getSetting } from "../lib/settings";

/** Hosting selection on the API: `domains` "all" or names, `components` any subset (docs/HOSTING.md). */
const DomainsField = z.union([z.literal("all"), z.array(z.string().min(1).max(253)).min(1).max(2000)]);
const ComponentsField = z.array(HostingComponent).min(1).max(6);
const DOMAIN_COMPONENTS_DEFAULT: HostingComponent[] = ["web", "db", "mail", "dns", "ssl"];

function hostingSelection(b: { domains?: z.infer<typeof DomainsField>; components?: HostingComponent[] }) {
  if (b.domains === undefined && b.components === undefined) return undefined;
  return {
    domains: b.domains ?? ("all" as const),
    components: [...new Set(b.components ?? DOMAIN_COMPONENTS_DEFAULT)],
  };
}

/** Named domains must be ones the runner reported; a typo is a 400 naming it, not a failed job later. */
async function checkDomainsKnown(
  c: { env: AppEnv["Bindings"] },
  tenantId: string,
  runnerId: string,
  domains: "all" | string[],
) {
  if (domains === "all") return;
  const known = new Set(
    (
      await db(c.env.DB)
        .select({ domain: runnerDomains.domain })
        .from(runnerDomains)
        .where(and(eq(runnerDomains.tenantId, tenantId), eq(runnerDomains.runnerId, runnerId)))
        .all()
    ).map((r) => r.domain),
  );
  const unknown = domains.filter((d) => !known.has(d));
  if (unknown.length)
    throw validationFailed(`domains: unknown domain(s) on this runner: ${unknown.join(", ")}`);
}

const Password = z.string().min(12, "password must be at least 12 characters").max(1024);

const CreateBackupBody = z.object({
  runnerId: z.string().min(1).max(64),
  name: z
    .string()
    .refine(isValidBackupName, "name must be 1-64 of A-Z a-z 0-9 . _ - starting with a letter or digit"),
  type: z.enum(["full", "incremental"]).default("full"),
  compressionLevel: z.number().int().min(1).max(9).default(3),
  sources: z
    .array(
      z
        .string()
        .min(1)
        .max(4096)
        .refine((p) => p.startsWith("/"), "sources must be absolute paths"),
    )
    .max(64)
    .optional(),
  encryption: z
    .discriminatedUnion("mode", [
      z.object({ mode: z.literal("none") }),
      z.object({ mode: z.literal("panel") }),
      z.object({ mode: z.literal("password"), password: Password }),
    ])
    .default({ mode: "none" }),
  domains: DomainsField.optional(),
  components: ComponentsField.optional(),
  /** Auto-sync: also stream the archive to these destinations (ids of the runner's tenant). */
  destinations: z.array(z.string().min(1).max(64)).max(8).optional(),
});

const RestoreBody = z.object({
  target: z
    .string()
    .min(1)
    .max(4096)
    .refine((p) => p.startsWith("/"), "target must be an absolute path"),
  only: z.array(z.string().min(1).max(1024)).max(64).optional(),
  conflict: z.enum(["skip", "overwrite", "rename"]).default("skip"),
  password: z.string().min(1).max(1024).optional(),
  domains: DomainsField.optional(),
  components: ComponentsField.optional(),
  safetyBackup: z.boolean().default(true),
  /** Restore onto another runner of the same tenant (cross-server). */
  runnerId: z.string().min(1).max(64).optional(),
  /** Read the archive from this completed remote copy instead of the runner's local disk. */
  destinationId: z.string().min(1).max(64).optional(),
});

const VerifyBody = z.object({
  password: z.string().min(1).max(1024).optional(),
  /** Verify this completed remote copy instead of the local archive. */
  destinationId: z.string().min(1).max(64).optional(),
});

const ListQuery = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(50),
  runnerId: z.string().max(64).optional(),
});

export type BackupRow = typeof backups.$inferSelect;

export function backupView(b: BackupRow) {
  return {
    id: b.id,
    tenantId: b.tenantId,
    runnerId: b.runnerId,
    jobId: b.jobId,
    name: b.name,
    kind: b.kind,
    status: b.status,
    fileName: b.fileName,
    size: b.size,
    sha256: b.sha256,
    fileCount: b.fileCount,
    encryption: b.encryptionMode,
    chainRootId: b.chainRootId,
    parentId: b.parentId,
    createdAt: new Date(b.createdAt).toISOString(),
    completedAt: b.completedAt ? new Date(b.completedAt).toISOString() : null,
    ...(b.errorCode && { error: { code: b.errorCode, message: b.errorMessage ?? "" } }),
  };
}

export const backupRoutes = new Hono<AppEnv>();

backupRoutes.post("/", activity("backup.create"), requireAuth("backups.create"), async (c) => {
  const body = await readJson(c, CreateBackupBody);
  const user = currentUser(c);
  const runner = await findRunner(c, body.runnerId, tenantScope(user));
  noteActivity(c, {
    tenantId: runner.tenantId,
    details: { runnerId: runner.id, name: body.name, kind: body.type, encryption: body.encryption.mode },
  });
  if (runner.revokedAt) throw conflict("runner is revoked");
  const hosting = hostingSelection(body);
  if (hosting && body.sources)
    throw validationFailed("sources: not allowed together with domains/components");
  if (hosting) await checkDomainsKnown(c, runner.tenantId, runner.id, hosting.domains);
  const d = db(c.env.DB);
  const backupId = newId("bkp");
  const jobId = newId("job");
  let chainRootId = backupId;
  let parentId: string | null = null;
  if (body.type === "incremental") {
    // An incremental extends the newest completed backup of the same runner and name.
    const parent = await d
      .select({ id: backups.id, chainRootId: backups.chainRootId })
      .from(backups)
      .where(
        and(
          eq(backups.runnerId, runner.id),
          eq(backups.name, body.name),
          inArray(backups.status, ["completed", "partial"]),
        ),
      )
      .orderBy(desc(backups.createdAt))
      .get();
    if (!parent)
      throw conflict(`no completed backup named ${body.name} on this runner to base an incremental on`);
    chainRootId = parent.chainRootId;
    parentId = parent.id;
  }
  let encryption: JobEncryption = { mode: "none" };
  let secrets: JobSecrets | null = null;
  let panelKeyId: string | null = null;
  let wrappedDataKey: string | null = null;
  if (body.encryption.mode === "panel") {
    const k = await newDataKey(c.env, runner.tenantId, backupId);
    encryption = { mode: "panel", keyId: k.keyId, wrappedKey: k.wrappedKey };
    secrets = { dataKey: bytesToBase64(k.dataKey) };
    panelKeyId = k.keyId;
    wrappedDataKey = k.wrappedKey;
  } else if (body.encryption.mode === "password") {
    encryption = { mode: "password" };
    secrets = { password: body.encryption.password };
  }
  const plan = await planCopies(c.env, {
    tenantId: runner.tenantId,
    backupId,
    jobId,
    destinationIds: body.destinations ?? [],
    now: Date.now(),
  });
  if (plan.copies.length) secrets = { ...secrets, destinations: plan.credentials };
  const spec: JobSpec = {
    type: "backup",
    params: {
      binding: { backupId, tenantId: runner.tenantId, chainRootId, parentId },
      name: body.name,
      kind: body.type,
      compressionLevel: body.compressionLevel,
      ...(body.sources && { sources: body.sources }),
      destination: { kind: "local" },
      encryption,
      ...(hosting && { hosting }),
      ...(plan.copies.length > 0 ? { copies: plan.copies } : {}),
    },
  };
  const now = Date.now();
  const backupRow: BackupRow = {
    id: backupId,
    tenantId: runner.tenantId,
    runnerId: runner.id,
    jobId,
    name: body.name,
    kind: body.type,
    status: "queued",
    fileName: null,
    size: null,
    sha256: null,
    fileCount: null,
    encryptionMode: body.encryption.mode,
    panelKeyId,
    wrappedDataKey,
    chainRootId,
    parentId,
    errorCode: null,
    errorMessage: null,
    createdAt: now,
    completedAt: null,
  };
  await d.batch([
    d.insert(jobs).values(
      pendingJobRow({
        id: jobId,
        tenantId: runner.tenantId,
        runnerId: runner.id,
        backupId,
        spec,
        createdBy: user.id,
        now,
      }),
    ),
    d.insert(backups).values(backupRow),
    ...plan.rows.map((r) => d.insert(backupCopies).values(r)),
  ]);
  noteActivity(c, { targetType: "backup", targetId: backupId, details: { jobId } });
  await dispatchJob(c.env, runner, { jobId, spec, secrets, backupId });
  return c.json({ backup: backupView(backupRow), job: { id: jobId, state: "PENDING" } }, 202);
});

backupRoutes.get("/", requireAuth("backups.read"), async (c) => {
  const q = ListQuery.safeParse(c.req.query());
  if (!q.success)
    throw validationFailed(q.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; "));
  const scope = tenantScope(currentUser(c));
  const rows = await db(c.env.DB)
    .select()
    .from(backups)
    .where(
      and(
        scope ? eq(backups.tenantId, scope) : undefined,
        q.data.runnerId ? eq(backups.runnerId, q.data.runnerId) : undefined,
      ),
    )
    .orderBy(desc(backups.createdAt))
    .limit(q.data.limit)
    .all();
  return c.json(rows.map(backupView));
});

/** A backup by id, 404 outside `scope` (the caller's tenant; null for ROOT). */
export async function findBackup(
  c: { env: AppEnv["Bindings"] },
  id: string,
  scope: string | null,
): Promise<BackupRow> {
  const row = await db(c.env.DB)
    .select()
    .from(backups)
    .where(and(eq(backups.id, id), scope ? eq(backups.tenantId, scope) : undefined))
    .get();
  if (!row) throw notFound("backup");
  return row;
}

backupRoutes.get("/:id", requireAuth("backups.read"), async (c) => {
  const b = await findBackup(c, c.req.param("id"), tenantScope(currentUser(c)));
  // Warnings (e.g. one per failed hosting component of a partial backup) live in the job's result.
  const job = await db(c.env.DB).select({ result: jobs.result }).from(jobs).where(eq(jobs.id, b.jobId)).get();
  let warnings: unknown;
  try {
    warnings = job?.result ? (JSON.parse(job.result) as { warnings?: unknown }).warnings : undefined;
  } catch {
    warnings = undefined;
  }
  return c.json({
    ...backupView(b),
    ...(Array.isArray(warnings) && { warnings }),
    copies: await copyViews(c.env, b.id),
  });
});

/** What an archive is bound to (its AEAD associated data): a job reading or copying it names the same. */
export function archiveBinding(b: BackupRow) {
  return { backupId: b.id, tenantId: b.tenantId, chainRootId: b.chainRootId, parentId: b.parentId };
}

/** Restore and verify read an existing archive: same binding, same key material as the backup. */
async function readJobFor(
  c: { env: AppEnv["Bindings"] },
  b: BackupRow,
  password: string | undefined,
): Promise<{ encryption: JobEncryption; secrets: JobSecrets | null }> {
  if (b.status !== "completed" && b.status !== "partial")
    throw conflict(`backup is ${b.status}, not completed`);
  if (!b.fileName) throw conflict("backup has no archive file");
  if (b.encryptionMode === "panel") {
    if (!b.panelKeyId || !b.wrappedDataKey) throw conflict("backup has no panel key record");
    const dataKey = await unwrapDataKey(c.env, {
      tenantId: b.tenantId,
      backupId: b.id,
      keyId: b.panelKeyId,
      wrappedKey: b.wrappedDataKey,
    });
    return {
      encryption: { mode: "panel", keyId: b.panelKeyId, wrappedKey: b.wrappedDataKey },
      secrets: { dataKey: bytesToBase64(dataKey) },
    };
  }
  if (b.encryptionMode === "password") {
    if (!password) throw validationFailed("password: required for a password-encrypted backup");
    return { encryption: { mode: "password" }, secrets: { password } };
  }
  return { encryption: { mode: "none" }, secrets: null };
}

async function startReadJob(
  c: Context<AppEnv, string>,
  kind: "restore" | "verify",
  b: BackupRow,
  spec: JobSpec,
  secrets: JobSecrets | null,
  targetRunnerId: string = b.runnerId,
) {
  const user = currentUser(c);
  // Same tenant as the backup, always: another tenant's runner id is a 404 like any foreign id.
  const runner = await findRunner(c, targetRunnerId, b.tenantId);
  if (runner.revokedAt) throw conflict("runner is revoked");
  const jobId = newId("job");
  const now = Date.now();
  if (kind === "restore") {
    const limit = await getSetting(c.env, b.tenantId, "restore.maxConcurrent");
    const ok = await insertRestoreJobWithinLimit(
      c.env,
      {
        id: jobId,
        tenantId: b.tenantId,
        runnerId: runner.id,
        backupId: b.id,
        params: JSON.stringify(spec.params),
        createdBy: user.id,
        now,
      },
      limit,
    );
    if (!ok)
      throw new ApiError(
        429,
        ApiErrorCode.RateLimited,
        `at most ${limit} restores may run at once for this tenant (setting restore.maxConcurrent); wait for one to finish`,
      );
    noteActivity(c, { details: { jobId, runnerId: runner.id } });
    await dispatchJob(c.env, runner, { jobId, spec, secrets, backupId: b.id });
    return c.json({ job: { id: jobId, state: "PENDING" } }, 202);
  }
  await db(c.env.DB)
    .insert(jobs)
    .values(
      pendingJobRow({
        id: jobId,
        tenantId: b.tenantId,
        runnerId: b.runnerId,
        backupId: b.id,
        spec,
        createdBy: user.id,
        now,
      }),
    );
  noteActivity(c, { details: { jobId } });
  await dispatchJob(c.env, runner, { jobId, spec, secrets, backupId: b.id });
  return c.json({ job: { id: jobId, state: "PENDING" } }, 202);
}

backupRoutes.post("/:id/restore", activity("backup.restore"), requireAuth("backups.restore"), async (c) => {
  const id = c.req.param("id");
  noteActivity(c, { targetType: "backup", targetId: id });
  const body = await readJson(c, RestoreBody);
  const b = await findBackup(c, id, tenantScope(currentUser(c)));
  const { encryption, secrets } = await readJobFor(c, b, body.password);
  const hosting = hostingSelection(body);
  const targetRunnerId = body.runnerId ?? b.runnerId;
  const from = await archiveLocation(c.env, b, body.destinationId);
  // A remote copy is readable from any runner of the tenant; a local archive only from its own runner.
  if (targetRunnerId !== b.runnerId && !body.destinationId) {
    await findRunner(c, targetRunnerId, b.tenantId);
    // Jobs name archives on the runner's local disk: another runner can only read a copy on shared storage.
    const copy = await db(c.env.DB)
      .select({ id: backupCopies.id })
      .from(backupCopies)
      .where(and(eq(backupCopies.backupId, b.id), eq(backupCopies.status, "completed")))
      .get();
    throw conflict(
      copy
        ? "restoring a remote copy onto another runner is not supported yet: restore on the original runner"
        : `the archive exists only on the local disk of runner ${b.runnerId}: it cannot be restored on runner ${targetRunnerId}`,
    );
  }
  const spec: JobSpec = {
    type: "restore",
    params: {
      binding: archiveBinding(b),
      fileName: b.fileName!,
      destination: from.destination,
      encryption,
      target: body.target,
      ...(body.only && { only: body.only }),
      conflict: body.conflict,
      ...(hosting && { hosting: { ...hosting, safetyBackup: body.safetyBackup } }),
    },
  };
  return startReadJob(c, "restore", b, spec, withCredentials(secrets, from.credentials), targetRunnerId);
});

backupRoutes.post("/:id/verify", activity("backup.verify"), requireAuth("backups.read"), async (c) => {
  const id = c.req.param("id");
  noteActivity(c, { targetType: "backup", targetId: id });
  const body = await readJson(c, VerifyBody);
  const b = await findBackup(c, id, tenantScope(currentUser(c)));
  const { encryption, secrets } = await readJobFor(c, b, body.password);
  const from = await archiveLocation(c.env, b, body.destinationId);
  const spec: JobSpec = {
    type: "verify",
    params: {
      binding: archiveBinding(b),
      fileName: b.fileName!,
      destination: from.destination,
      encryption,
    },
  };
  return startReadJob(c, "verify", b, spec, withCredentials(secrets, from.credentials));
});
