import { z } from "zod";

export const JOB_STATES = [
  "PENDING",
  "DELIVERED",
  "RUNNING",
  "SUCCEEDED",
  "FAILED",
  "CANCELLED",
  "INTERRUPTED",
] as const;
export const JobState = z.enum(JOB_STATES);
export type JobState = z.infer<typeof JobState>;

export const TERMINAL_JOB_STATES: readonly JobState[] = ["SUCCEEDED", "FAILED", "CANCELLED", "INTERRUPTED"];
export const isTerminalJobState = (s: string): boolean =>
  (TERMINAL_JOB_STATES as readonly string[]).includes(s);

/** Job types a runner may be asked to run. The job token's `job.type` claim is one of these. */
export const JOB_TYPES = ["backup", "restore", "verify", "test-destination", "sync", "relay-upload"] as const;
export const JobType = z.enum(JOB_TYPES);
export type JobType = z.infer<typeof JobType>;

export const BACKUP_STATUSES = ["queued", "running", "completed", "partial", "failed"] as const;
export const BackupStatus = z.enum(BACKUP_STATUSES);
export type BackupStatus = z.infer<typeof BackupStatus>;

export const BackupKind = z.enum(["full", "incremental"]);
export type BackupKind = z.infer<typeof BackupKind>;

/** How long a delivered job's lease lasts without a sign of life from its runner. */
export const DEFAULT_JOB_LEASE_MS = 60_000;
/** Lifetime of one signed delivery of a job (re-signed on every delivery). */
export const JOB_TOKEN_TTL_SECONDS = 300;
/** Runners report progress at most this often. */
export const PROGRESS_MIN_INTERVAL_MS = 500;
