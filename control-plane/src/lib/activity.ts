import type { Context, MiddlewareHandler } from "hono";
import { db } from "../db/client";
import { activityLog } from "../db/schema";
import type { AppEnv, ActivityDraft, Env } from "../env";
import { newId } from "./ids";

export interface ActivityRow {
  tenantId: string | null;
  actorType: "user" | "runner" | "system" | "anonymous";
  actorId: string | null;
  operation: string;
  status: "success" | "failure";
  targetType?: string | null;
  targetId?: string | null;
  details?: Record<string, unknown> | null;
  ip?: string | null;
}

export async function writeActivity(env: Env, row: ActivityRow): Promise<void> {
  await db(env.DB)
    .insert(activityLog)
    .values({
      id: newId("act"),
      tenantId: row.tenantId,
      actorType: row.actorType,
      actorId: row.actorId,
      operation: row.operation,
      status: row.status,
      targetType: row.targetType ?? null,
      targetId: row.targetId ?? null,
      details: row.details ? JSON.stringify(row.details) : null,
      ip: row.ip ?? null,
      createdAt: Date.now(),
    });
}

export const clientIp = (c: Context) => c.req.header("cf-connecting-ip") ?? null;

/** Adds fields (target, details) to the activity row of the current request. */
export function noteActivity(c: Context<AppEnv>, patch: Partial<ActivityDraft>): void {
  const cur = c.get("activity");
  if (cur) c.set("activity", { ...cur, ...patch, details: { ...cur.details, ...patch.details } });
}

/**
 * Names the operation of a route and writes its activity row once the response is known,
 * failures included (the error handler has already turned thrown errors into a response).
 */
export function activity(operation: string): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    c.set("activity", { operation });
    await next();
    const a = c.get("activity") ?? { operation };
    const user = c.get("user");
    const failed = c.res.status >= 400;
    const details = { ...a.details } as Record<string, unknown>;
    if (failed) {
      details.httpStatus = c.res.status;
      if (c.error) details.error = c.error.message;
    }
    try {
      await writeActivity(c.env, {
        tenantId: a.tenantId !== undefined ? a.tenantId : (user?.tenantId ?? null),
        actorType: a.actorType ?? (user ? "user" : "anonymous"),
        actorId: a.actorId !== undefined ? a.actorId : (user?.id ?? null),
        operation: a.operation,
        status: failed ? "failure" : "success",
        targetType: a.targetType,
        targetId: a.targetId,
        details: Object.keys(details).length ? details : null,
        ip: clientIp(c),
      });
    } catch (e) {
      console.error("activity: write failed", operation, (e as Error).message);
    }
  };
}
