import { and, eq, inArray, sql } from "drizzle-orm";
import { db } from "../db/client";
import { rateLimitBuckets, settings } from "../db/schema";
import type { Env } from "../env";
import { ApiError } from "../errors";
import { ApiErrorCode } from "../../../shared/errors";

/**
 * Fixed-window counters in D1 (`rate_limit_buckets`): one row per operation, scope and window.
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
    .values({ key, count: 1, expiresAt: windowStart + a.windowMs })
    .onConflictDoUpdate({ target: rateLimitBuckets.key, set: { count: sql`${rateLimitBuckets.count} + 1` } })
    .returning({ count: rateLimitBuckets.count })
    .get();
  if (row.count > a.limit) {
    const retryS = Math.ceil((windowStart + a.windowMs - now) / 1000);
    throw new ApiError(
      429,
      ApiErrorCode.RateLimited,
      `${a.what}: limit of ${a.limit} per ${Math.round(a.windowMs / 60000)} min reached; try again in ${retryS} s`,
    );
  }
  return { remaining: a.limit - row.count };
}

/**
 * A positive integer setting: the tenant's row, else the installation-wide "*" row (lib/settings.ts
 * convention), else `dflt`. A stored value that is not a positive integer is ignored.
 */
export async function numericSetting(env: Env, tenantId: string, key: string, dflt: number): Promise<number> {
  const rows = await db(env.DB)
    .select({ tenantId: settings.tenantId, value: settings.value })
    .from(settings)
    .where(and(eq(settings.key, key), inArray(settings.tenantId, [tenantId, "*"])))
    .all();
  for (const tid of [tenantId, "*"]) {
    const row = rows.find((r) => r.tenantId === tid);
    if (!row) continue;
    try {
      const v = JSON.parse(row.value) as unknown;
      if (typeof v === "number" && Number.isInteger(v) && v > 0) return v;
    } catch {
      // not JSON: next level
    }
  }
  return dflt;
}
