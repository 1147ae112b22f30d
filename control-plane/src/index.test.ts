import {
  createExecutionContext,
  createScheduledController,
  env,
  waitOnExecutionContext,
} from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { eq } from "drizzle-orm";
import worker from "./index";
import { db } from "./db/client";
import { enrollmentTokens, sessions } from "./db/schema";
import { call, createTenantUser } from "../test/helpers";

describe("scheduled sweep", () => {
  it("drops enrollment tokens expired for over a day and expired sessions, keeps live ones", async () => {
    const u = await createTenantUser();
    const live = await call("/api/v1/runners/enrollment-tokens", { body: {}, token: u.token });
    const old = await call("/api/v1/runners/enrollment-tokens", { body: {}, token: u.token });
    expect(old.status).toBe(201);
    const rows = await db(env.DB)
      .select()
      .from(enrollmentTokens)
      .where(eq(enrollmentTokens.tenantId, u.tenantId))
      .all();
    expect(rows).toHaveLength(2);
    const now = Date.now();
    await db(env.DB)
      .update(enrollmentTokens)
      .set({ expiresAt: now - 2 * 24 * 3600 * 1000 })
      .where(eq(enrollmentTokens.id, rows[1]!.id));
    const other = await createTenantUser();
    await db(env.DB)
      .update(sessions)
      .set({ expiresAt: now - 1 })
      .where(eq(sessions.userId, other.userId));

    const ctx = createExecutionContext();
    await worker.scheduled(createScheduledController({ scheduledTime: now, cron: "* * * * *" }), env, ctx);
    await waitOnExecutionContext(ctx);

    const left = await db(env.DB)
      .select()
      .from(enrollmentTokens)
      .where(eq(enrollmentTokens.tenantId, u.tenantId))
      .all();
    expect(left.map((r) => r.id)).toEqual([rows[0]!.id]);
    expect(
      await db(env.DB).select().from(sessions).where(eq(sessions.userId, other.userId)).all(),
    ).toHaveLength(0);
    expect((await call("/api/v1/auth/me", { token: u.token })).status).toBe(200);
    expect(live.status).toBe(201);
  });
});
