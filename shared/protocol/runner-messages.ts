import { z } from "zod";
import { JobRejectCode } from "../errors";

/**
 * Catalogue of messages the runner sends to the control plane (v1).
 * Parsed at the boundary (the RunnerSession Durable Object); anything else closes the socket.
 * The heartbeat is not here: it is the exact string HEARTBEAT_PING (see version.ts).
 */

const JobId = z.string().min(1).max(64);
const rejectCodes = Object.values(JobRejectCode) as [JobRejectCode, ...JobRejectCode[]];

export const RunnerHello = z.object({
  type: z.literal("hello"),
  protocol: z.number().int(),
  runnerVersion: z.string().max(64),
  hostname: z.string().max(255),
  platform: z.string().max(64),
  /** Jobs the runner is running right now (their leases continue across a reconnect). */
  activeJobIds: z.array(JobId).max(256),
});

/** The job verified and will run (or is already running, when redelivered). */
export const JobAccepted = z.object({ type: z.literal("job.accepted"), jobId: JobId });

/** The job failed verification; it was not and will never be executed. `jobId` is null when unreadable. */
export const JobRejected = z.object({
  type: z.literal("job.rejected"),
  jobId: JobId.nullable(),
  code: z.enum(rejectCodes),
  reason: z.string().max(1024),
});

export const JobProgress = z.object({
  type: z.literal("job.progress"),
  jobId: JobId,
  bytes: z.number().nonnegative(),
  files: z.number().int().nonnegative(),
  /** bytes per second */
  rate: z.number().nonnegative(),
  totalBytes: z.number().nonnegative().optional(),
  percent: z.number().min(0).max(100).optional(),
  phase: z.string().max(64).optional(),
  message: z.string().max(1024).optional(),
  /** Auto-sync: archive bytes written so far to each remote copy, by destination id. */
  copies: z
    .record(z.string().max(64), z.number().nonnegative())
    .refine((r) => Object.keys(r).length <= 16, "at most 16 copies")
    .optional(),
  /** Hosting restores: seconds left at the current rate, "2 of 5 domains", warnings/errors so far. */
  etaSeconds: z.number().nonnegative().optional(),
  domainsText: z.string().max(64).optional(),
  warnings: z.array(z.string().max(1024)).max(50).optional(),
  errors: z.array(z.string().max(1024)).max(50).optional(),
});

export const JobError = z.object({ code: z.string().max(64), message: z.string().max(4096) });

export const JobResult = z.object({
  type: z.literal("job.result"),
  jobId: JobId,
  status: z.enum(["SUCCEEDED", "FAILED", "CANCELLED"]),
  /** Job-type specific result, e.g. for backup: fileName, size, sha256, fileCount, durationMs. */
  result: z.record(z.string(), z.unknown()).optional(),
  error: JobError.optional(),
  warnings: z.array(z.string().max(1024)).max(1000).optional(),
});

/** What the host holds (hosting inventory): sent after `welcome` and on `inventory.request`. */
export const InventoryDomain = z.object({
  domain: z.string().min(1).max(253),
  components: z.array(z.enum(["web", "db", "mail", "dns", "ssl"])).max(5),
  databases: z
    .array(z.object({ engine: z.enum(["mysql", "postgres"]), name: z.string().min(1).max(64) }))
    .max(256),
  details: z.record(z.string(), z.unknown()).optional(),
});
export type InventoryDomain = z.infer<typeof InventoryDomain>;
export const InventoryReport = z.object({
  type: z.literal("inventory"),
  domains: z.array(InventoryDomain).max(2000),
  collectedAt: z.number().int().nonnegative(),
});
export type InventoryReport = z.infer<typeof InventoryReport>;

export const RunnerMessage = z.discriminatedUnion("type", [
  InventoryReport,
  RunnerHello,
  JobAccepted,
  JobRejected,
  JobProgress,
  JobResult,
]);
export type RunnerMessage = z.infer<typeof RunnerMessage>;
export type RunnerHello = z.infer<typeof RunnerHello>;
export type JobProgress = z.infer<typeof JobProgress>;
export type JobResult = z.infer<typeof JobResult>;
export type JobRejected = z.infer<typeof JobRejected>;

/** Result payload of a backup job. */
export const BackupJobResult = z.object({
  fileName: z.string(),
  size: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  fileCount: z.number().int().nonnegative(),
  durationMs: z.number().nonnegative(),
  bytesIn: z.number().nonnegative().optional(),
  manifestFileName: z.string().optional(),
  /** Hosting backups: "partial" when a component failed (one warning per failure). */
  status: z.enum(["complete", "partial"]).optional(),
});
export type BackupJobResult = z.infer<typeof BackupJobResult>;
