import type { JobClaims, JobSecrets } from "../../../shared/protocol/job-claims";
import type { JobProgress, JobResult } from "../../../shared/protocol/runner-messages";
import type { RunnerConfig } from "../config";
import { JobFailure, type JobHandler } from "../jobs/types";
import { errorMessage, type Logger } from "../util/log";
import type { Journal } from "./journal";
import { ProgressReporter, type ProgressReporterOptions } from "./progress";

/**
 * A bounded pool: at most `concurrency` jobs run, the rest wait in order. Each job has its own
 * AbortController (job.cancel and shutdown abort it). The outcome is written to the journal before
 * it is sent, so a result survives a crash and goes out again until acked.
 */

interface QueuedJob {
  claims: JobClaims;
  secrets: JobSecrets;
  handler: JobHandler;
  controller: AbortController;
}

export interface JobRunnerOptions {
  concurrency: number;
  config: RunnerConfig;
  journal: Journal;
  log: Logger;
  sendProgress: (m: JobProgress) => void;
  sendResult: (m: JobResult) => void;
  progress?: ProgressReporterOptions;
}

export class JobRunner {
  private readonly queue: QueuedJob[] = [];
  private readonly running = new Map<string, { job: QueuedJob; done: Promise<void> }>();
  private readonly reporters = new Map<string, ProgressReporter>();

  constructor(private readonly opts: JobRunnerOptions) {}

  submit(claims: JobClaims, secrets: JobSecrets, handler: JobHandler): void {
    this.queue.push({ claims, secrets, handler, controller: new AbortController() });
    this.pump();
  }

  /** Aborts a running job or drops a queued one (which is then finished CANCELLED). */
  cancel(jobId: string, reason?: string, mode: "cancel" | "pause" = "cancel"): boolean {
    // A pause is a cancel whose reason the executor recognises (code PAUSED) to keep its progress.
    const code = mode === "pause" ? "PAUSED" : "CANCELLED";
    const why =
      reason ?? (mode === "pause" ? "paused by the control plane" : "cancelled by the control plane");
    const r = this.running.get(jobId);
    if (r) {
      r.job.controller.abort(new JobFailure(code, why));
      return true;
    }
    const i = this.queue.findIndex((q) => q.claims.jti === jobId);
    if (i === -1) return false;
    const [job] = this.queue.splice(i, 1);
    void this.finish(job!, { status: "CANCELLED", error: { code, message: why } });
    return true;
  }

  /** Shutdown: nothing new starts; queued and running jobs end CANCELLED; resolves when all are journaled. */
  async stopAll(reason = "runner shutting down"): Promise<void> {
    const queued = this.queue.splice(0);
    const finishing = queued.map((job) =>
      this.finish(job, { status: "CANCELLED", error: { code: "CANCELLED", message: reason } }),
    );
    for (const { job } of this.running.values()) job.controller.abort(new JobFailure("CANCELLED", reason));
    await Promise.all([...finishing, ...[...this.running.values()].map((r) => r.done)]);
  }

  /** Sends each running job's latest progress again, so its lease is renewed during quiet phases. */
  keepalive(): void {
    for (const r of this.reporters.values()) r.keepalive();
  }

  activeJobIds(): string[] {
    return [...this.running.keys(), ...this.queue.map((q) => q.claims.jti)];
  }

  idle(): boolean {
    return this.running.size === 0 && this.queue.length === 0;
  }

  private pump(): void {
    while (this.running.size < this.opts.concurrency && this.queue.length > 0) {
      const job = this.queue.shift()!;
      const done = this.execute(job).finally(() => {
        this.running.delete(job.claims.jti);
        this.pump();
      });
      this.running.set(job.claims.jti, { job, done });
    }
  }

  private async execute(job: QueuedJob): Promise<void> {
    const { claims } = job;
    const jobId = claims.jti;
    const log = this.opts.log;
    const reporter = new ProgressReporter(jobId, this.opts.sendProgress, this.opts.progress);
    this.reporters.set(jobId, reporter);
    const started = Date.now();
    let outcome: Pick<JobResult, "status" | "result" | "error" | "warnings">;
    try {
      await this.opts.journal.markRunning(jobId);
      log.info("job started", { jobId, type: claims.job.type });
      const r = await job.handler.run({
        jobId,
        claims,
        secrets: job.secrets,
        config: this.opts.config,
        signal: job.controller.signal,
        progress: (p) => reporter.update(p),
        log,
      });
      // An engine that ignored the signal and finished anyway still did the work: report it.
      outcome = {
        status: "SUCCEEDED",
        result: r.result,
        warnings: r.warnings?.slice(0, 1000).map((w) => w.slice(0, 1024)),
      };
    } catch (err) {
      const code = errorCode(err);
      if (job.controller.signal.aborted || code === "CANCELLED") {
        const reason = job.controller.signal.reason;
        outcome = {
          status: "CANCELLED",
          error: {
            code: reason instanceof JobFailure && reason.code === "PAUSED" ? "PAUSED" : "CANCELLED",
            message: reason instanceof Error ? reason.message : "cancelled",
          },
        };
      } else {
        outcome = { status: "FAILED", error: { code, message: errorMessage(err).slice(0, 4096) } };
      }
    } finally {
      reporter.stop();
      this.reporters.delete(jobId);
    }
    log.info("job finished", {
      jobId,
      status: outcome.status,
      code: outcome.error?.code,
      ms: Date.now() - started,
    });
    await this.finish(job, outcome);
  }

  private async finish(
    job: QueuedJob,
    outcome: Pick<JobResult, "status" | "result" | "error" | "warnings">,
  ): Promise<void> {
    const result: JobResult = { type: "job.result", jobId: job.claims.jti, ...stripUndefined(outcome) };
    try {
      const entry = await this.opts.journal.finish(job.claims.jti, result);
      this.opts.sendResult(entry.result ?? result);
    } catch (err) {
      // Not journaled means it cannot be re-sent later; still tell the control plane now.
      this.opts.log.error("cannot journal job result", { jobId: job.claims.jti, error: errorMessage(err) });
      this.opts.sendResult(result);
    }
  }
}

function errorCode(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === "string" && /^[A-Z0-9_]{1,64}$/.test(code) ? code : "INTERNAL";
}

function stripUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;
}
