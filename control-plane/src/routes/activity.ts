import { Hono } from "hono";
import { and, desc, eq, lt } from "drizzle-orm";
import { z } from "zod";
import { db } from "../db/client";
import { activityLog } from "../db/schema";
import type { AppEnv } from "../env";
import { currentUser, requireAuth, tenantScope } from "../lib/auth";
import { parseWith } from "../lib/validate";

const Query = z.object({
  limit: z.coerce.number().int().min(1).max(500).default(50),
  /** Opaque cursor from the previous page's `nextCursor`. */
  before: z.coerce.number().int().positive().optional(),
  operation: z.string().max(64).optional(),
});

export const activityRoutes = new Hono<AppEnv>();

activityRoutes.get("/", requireAuth("activity.read"), async (c) => {
  const q = parseWith(Query, c.req.query());
  const scope = tenantScope(currentUser(c));
  const rows = await db(c.env.DB)
    .select()
    .from(activityLog)
    .where(
      and(
        scope ? eq(activityLog.tenantId, scope) : undefined,
        q.before ? lt(activityLog.createdAt, q.before) : undefined,
        q.operation ? eq(activityLog.operation, q.operation) : undefined,
      ),
    )
    .orderBy(desc(activityLog.createdAt))
    .limit(q.limit + 1)
    .all();
  const page = rows.slice(0, q.limit);
  return c.json({
    items: page.map((r) => ({
      id: r.id,
      tenantId: r.tenantId,
      actor: { type: r.actorType, id: r.actorId },
      operation: r.operation,
      status: r.status,
      target: r.targetType ? { type: r.targetType, id: r.targetId } : null,
      details: r.details ? JSON.parse(r.details) : null,
      ip: r.ip,
      createdAt: new Date(r.createdAt).toISOString(),
    })),
    nextCursor: rows.length > q.limit ? page[page.length - 1]!.createdAt : null,
  });
});
