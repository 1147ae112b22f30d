/** Bounded retries with exponential backoff for transient faults (resets, timeouts, 5xx). */
import { DestinationError } from "./types";

export interface RetryPolicy {
  /** Total tries, first one included. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = { attempts: 4, baseDelayMs: 250, maxDelayMs: 8_000 };

const TRANSIENT_CODES = new Set([
  "ECONNRESET",
  "ECONNREFUSED",
  "EPIPE",
  "ETIMEDOUT",
  "ECONNABORTED",
  "EAI_AGAIN",
  "ENETUNREACH",
  "EHOSTUNREACH",
  "UND_ERR_SOCKET",
  "ERR_STREAM_PREMATURE_CLOSE",
]);

/** True for faults a later try may not see again. Auth, not-found and integrity errors are final. */
export function isTransient(err: unknown): boolean {
  if (err instanceof DestinationError) return err.code === "CONNECTION_FAILED";
  const e = err as { code?: unknown; status?: unknown; cause?: unknown; message?: unknown } | null;
  if (!e || typeof e !== "object") return false;
  if (typeof e.code === "string" && TRANSIENT_CODES.has(e.code)) return true;
  if (typeof e.status === "number" && (e.status >= 500 || e.status === 429 || e.status === 408)) return true;
  // fetch's AbortSignal.timeout(): a stalled request, worth another try.
  if ((e as { name?: unknown }).name === "TimeoutError") return true;
  if (
    typeof e.message === "string" &&
    /socket hang up|other side closed|ECONNRESET|timed out/i.test(e.message)
  )
    return true;
  return e.cause !== undefined && e.cause !== err ? isTransient(e.cause) : false;
}

export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const t = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(signal?.reason);
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

export async function withRetry<T>(
  policy: RetryPolicy,
  fn: (attempt: number) => Promise<T>,
  opts: { signal?: AbortSignal; retryable?: (err: unknown) => boolean } = {},
): Promise<T> {
  const retryable = opts.retryable ?? isTransient;
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn(attempt);
    } catch (err) {
      if (attempt >= policy.attempts || !retryable(err) || opts.signal?.aborted) throw err;
      const delay = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
      // Full jitter: many runners retrying against one endpoint must not move in lockstep.
      await sleep(Math.round(delay / 2 + (Math.random() * delay) / 2), opts.signal);
    }
  }
}
