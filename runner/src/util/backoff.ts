/**
 * Exponential backoff with full jitter: the delay is uniform in [0, min(max, base * 2^attempt)],
 * so a fleet of runners reconnecting after an outage spreads out instead of stampeding.
 */
export interface BackoffOptions {
  baseMs: number;
  maxMs: number;
  random?: () => number;
}

export class Backoff {
  private attempt = 0;
  constructor(private readonly opts: BackoffOptions) {}

  /** Ceiling of the next delay (before jitter). */
  ceiling(): number {
    return Math.min(this.opts.maxMs, this.opts.baseMs * 2 ** Math.min(this.attempt, 30));
  }

  next(): number {
    const delay = Math.floor((this.opts.random ?? Math.random)() * this.ceiling());
    this.attempt++;
    return delay;
  }

  reset(): void {
    this.attempt = 0;
  }

  get attempts(): number {
    return this.attempt;
  }
}
