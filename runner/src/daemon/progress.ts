import { PROGRESS_MIN_INTERVAL_MS } from "../../../shared/jobs";
import type { JobProgress } from "../../../shared/protocol/runner-messages";
import type { Progress } from "../archive/types";

/** Engine progress plus what phased (hosting) restores report: percent, ETA, domains, warnings, errors. */
export type ProgressUpdate = Progress & {
  percent?: number;
  message?: string;
  etaSeconds?: number;
  domainsText?: string;
  warnings?: string[];
  errors?: string[];
  /** Sent at once, past the throttle: a job's last state (phase "completed") must not be coalesced away. */
  final?: boolean;
  /** Auto-sync: archive bytes each remote copy's server acknowledged (runner/src/jobs/copies.ts). */
  copies?: Record<string, number>;
  /**
   * What the rate is measured on when not `bytes`: a resumed sync counts the bytes an earlier job left
   * on the server in `bytes` (percent) but not here, or they would show as a burst of speed.
   */
  rateBytes?: number;
};

/**
 * Turns the engine's progress callbacks (possibly thousands a second) into at most one
 * `job.progress` per PROGRESS_MIN_INTERVAL_MS per job: the first goes out at once, later ones
 * are coalesced and the latest is sent when the interval ends. Rate is bytes/s over a sliding window.
 */
export interface ProgressReporterOptions {
  now?: () => number;
  minIntervalMs?: number;
  windowMs?: number;
  setTimer?: (fn: () => void, ms: number) => unknown;
  clearTimer?: (t: unknown) => void;
}

export class ProgressReporter {
  private lastSentAt = -Infinity;
  private pending?: ProgressUpdate;
  private timer?: unknown;
  private samples: { t: number; bytes: number }[] = [];
  private stopped = false;
  private last?: JobProgress;
  private readonly now: () => number;
  private readonly minIntervalMs: number;
  private readonly windowMs: number;

  constructor(
    private readonly jobId: string,
    private readonly send: (m: JobProgress) => void,
    private readonly opts: ProgressReporterOptions = {},
  ) {
    this.now = opts.now ?? Date.now;
    this.minIntervalMs = opts.minIntervalMs ?? PROGRESS_MIN_INTERVAL_MS;
    this.windowMs = opts.windowMs ?? 5000;
  }

  update(p: ProgressUpdate): void {
    if (this.stopped) return;
    const t = this.now();
    this.samples.push({ t, bytes: p.rateBytes ?? p.bytes });
    while (this.samples.length > 2 && this.samples[0]!.t < t - this.windowMs) this.samples.shift();
    this.pending = p;
    const wait = p.final ? 0 : this.lastSentAt + this.minIntervalMs - t;
    if (wait <= 0) {
      this.flush();
    } else if (this.timer === undefined) {
      this.timer = (this.opts.setTimer ?? setTimeout)(() => {
        this.timer = undefined;
        this.flush();
      }, wait);
    }
  }

  /**
   * Re-sends the latest state even when nothing changed: a long quiet phase (a big database dump)
   * must still renew the job's lease on the control plane.
   */
  keepalive(): void {
    if (this.stopped) return;
    if (this.pending) return this.flush();
    this.lastSentAt = this.now();
    this.send({
      ...(this.last ?? { type: "job.progress", jobId: this.jobId, bytes: 0, files: 0 }),
      rate: this.rate(),
    });
  }

  /** No more progress after this (the result supersedes it). */
  stop(): void {
    this.stopped = true;
    this.pending = undefined;
    if (this.timer !== undefined)
      (this.opts.clearTimer ?? ((x) => clearTimeout(x as NodeJS.Timeout)))(this.timer);
    this.timer = undefined;
  }

  rate(): number {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || !last || last.t <= first.t) return 0;
    return Math.max(0, ((last.bytes - first.bytes) * 1000) / (last.t - first.t));
  }

  private flush(): void {
    const p = this.pending;
    if (!p || this.stopped) return;
    this.pending = undefined;
    this.lastSentAt = this.now();
    const msg: JobProgress = {
      type: "job.progress",
      jobId: this.jobId,
      bytes: p.bytes,
      files: p.files,
      rate: this.rate(),
    };
    if (p.totalBytes !== undefined && p.totalBytes > 0) {
      msg.totalBytes = p.totalBytes;
      msg.percent = Math.min(100, (p.bytes / p.totalBytes) * 100);
    }
    if (p.phase) msg.phase = p.phase.slice(0, 64);
    if (p.percent !== undefined) msg.percent = Math.max(0, Math.min(100, p.percent));
    if (p.message) msg.message = p.message.slice(0, 1024);
    if (p.etaSeconds !== undefined) msg.etaSeconds = Math.max(0, p.etaSeconds);
    if (p.copies) msg.copies = p.copies;
    if (p.domainsText) msg.domainsText = p.domainsText.slice(0, 64);
    // The latest 50: the job result carries them all.
    if (p.warnings?.length) msg.warnings = p.warnings.slice(-50).map((w) => w.slice(0, 1024));
    if (p.errors?.length) msg.errors = p.errors.slice(-50).map((w) => w.slice(0, 1024));
    this.last = msg;
    this.send(msg);
  }
}
