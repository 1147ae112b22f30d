import type { JobType } from "../../../shared/jobs";
import type { JobClaims, JobSecrets } from "../../../shared/protocol/job-claims";
import type { ProgressUpdate } from "../daemon/progress";
import type { RunnerConfig } from "../config";
import type { Logger } from "../util/log";

/** What a job executor gets: verified claims, opened secrets, and a signal that fires on cancel/stop. */
export interface JobContext {
  jobId: string;
  claims: JobClaims;
  secrets: JobSecrets;
  config: RunnerConfig;
  signal: AbortSignal;
  progress: (p: ProgressUpdate) => void;
  log: Logger;
}

export interface JobOutcome {
  result?: Record<string, unknown>;
  warnings?: string[];
}

export interface JobHandler {
  /**
   * Checks the job against this runner's local policy before it is accepted (e.g. allowed roots).
   * Throws a JobRejection; the job is then reported `job.rejected` and never runs.
   */
  validate?(claims: JobClaims, secrets: JobSecrets, config: RunnerConfig): Promise<void> | void;
  run(ctx: JobContext): Promise<JobOutcome>;
}

/** The daemon takes its executors as a map, so tests inject fakes and production wires the engine. */
export type JobHandlers = Partial<Record<JobType, JobHandler>>;

/** A job that ran and failed. `code` goes into the result's `error.code`. */
export class JobFailure extends Error {
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "JobFailure";
  }
}
