import { eq, sql } from "drizzle-orm";
import { db } from "../db/client";
import { rateLimitBuckets } from "../db/schema";
import type { Env } from "../env";
import { ApiError } from "../errors";
import { ApiErrorCode } from "../../../shared/errors";

/**
 * Sliding-window limit from fixed-window counters in D1 (`rate_limit_buckets`): one row per operation,
 * scope and window. The previous window's count is weighted by how much of it still overlaps the last
 * `windowMs`, so a burst cannot take the whole limit twice across a window boundary.
 * The increment is a single upsert, so two concurrent requests cannot both take the last slot.
 */
export async function takeRateLimit(
  env: Env,
  a: { operation: string; scopeId: string; limit: number; windowMs: number; now?: number; what: string },
): Promise<{ remaining: number }> {
  const now = a.now ?? Date.now();
  const windowStart = Math.floor(now / a.windowMs) * a.windowMs;
  const key = `${a.operation}:${a.scopeId}:${windowStart}`;
  const row = await db(env.DB)
    .insert(rateLimitBuckets)
    // Kept one extra window: the next window still weighs this one in.
    .values({ key, count: 1, expiresAt: windowStart + 2 * a.windowMs })
    .onConflictDoUpdate({ target: rateLimitBuckets.key, set: { count: sql`${rateLimitBuckets.count} + 1` } })
    .returning({ count: rateLimitBuckets.count })
    .get();
  const previous = await db(env.DB)
    .select({ count: rateLimitBuckets.count })
    .from(rateLimitBuckets)
    .where(eq(rateLimitBuckets.key, `${a.operation}:${a.scopeId}:${windowStart - a.windowMs}`))
    .get();
  const overlap = 1 - (now - windowStart) / a.windowMs;
  const used = row.count + Math.ceil((previous?.count ?? 0) * overlap);
  if (used > a.limit) {
    const retryS = Math.ceil((windowStart + a.windowMs - now) / 1000);
    throw new ApiError(
      429,
      ApiErrorCode.RateLimited,
      `${a.what}: limit of ${a.limit} per ${Math.round(a.windowMs / 60000)} min reached; try again in ${retryS} s`,
    );
  }
  return { remaining: a.limit - used };
}
