export const RESTORE_PHASES = [
  "validating",
  "decrypting",
  "extracting files",
  "restoring databases",
  "restoring email",
  "restoring DNS",
  "restoring SSL",
  "verifying",
  "completed",
] as const;
export type RestorePhase = (typeof RESTORE_PHASES)[number];

export interface RestoreProgress {
  phase: RestorePhase;
  /** 0..100 over the bytes of the selected entries. */
  percent: number;
  bytesDone: number;
  bytesTotal: number;
  /** Domains finished in the current phase, e.g. "2 of 5 domains". */
  domainsDone: number;
  domainsTotal: number;
  domainsText: string;
  etaSeconds?: number;
  message?: string;
  warning?: string;
  error?: string;
}

/** Keeps the counters and turns them into progress events; ETA from the byte rate so far. */
export class ProgressTracker {
  phase: RestorePhase = "validating";
  bytesDone = 0;
  bytesTotal = 0;
  domainsDone = 0;
  domainsTotal = 0;
  private readonly started = Date.now();

  constructor(private readonly cb?: (p: RestoreProgress) => void) {}

  emit(extra: Partial<Pick<RestoreProgress, "message" | "warning" | "error">> = {}): void {
    if (!this.cb) return;
    const elapsed = (Date.now() - this.started) / 1000;
    const percent =
      this.phase === "completed"
        ? 100
        : this.bytesTotal
          ? Math.min(99, Math.floor((this.bytesDone / this.bytesTotal) * 100))
          : 0;
    const eta =
      this.bytesDone > 0 && this.bytesTotal > this.bytesDone
        ? Math.round((elapsed / this.bytesDone) * (this.bytesTotal - this.bytesDone))
        : undefined;
    this.cb({
      phase: this.phase,
      percent,
      bytesDone: this.bytesDone,
      bytesTotal: this.bytesTotal,
      domainsDone: this.domainsDone,
      domainsTotal: this.domainsTotal,
      domainsText: `${this.domainsDone} of ${this.domainsTotal} domains`,
      ...(eta !== undefined ? { etaSeconds: eta } : {}),
      ...extra,
    });
  }

  enter(phase: RestorePhase, domainsTotal: number, message?: string): void {
    this.phase = phase;
    this.domainsDone = 0;
    this.domainsTotal = domainsTotal;
    this.emit(message ? { message } : {});
  }
}
