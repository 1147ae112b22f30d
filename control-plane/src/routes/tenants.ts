import { Hono } from "hono";
import { desc, eq } from "drizzle-orm";
import { z } from "zod";
import { db } from "../db/client";
import { tenants } from "../db/schema";
import type { AppEnv } from "../env";
import { forbidden, notFound } from "../errors";
import { activity, noteActivity } from "../lib/activity";
import { currentUser, requireAuth, tenantScope } from "../lib/auth";
import { newId } from "../lib/ids";
import { readJson } from "../lib/validate";

const CreateTenantBody = z.object({
  name: z.string().trim().min(1).max(128),
  /** Reseller trees: the parent tenant (ROOT only; defaults to none). */
  parentId: z.string().min(1).max(64).optional(),
});

type TenantRow = typeof tenants.$inferSelect;
const tenantView = (t: TenantRow) => ({
  id: t.id,
  name: t.name,
  parentId: t.parentId,
  createdAt: new Date(t.createdAt).toISOString(),
});

export const tenantRoutes = new Hono<AppEnv>();

/** Only ROOT creates tenants (installation-wide administration). */
tenantRoutes.post("/", activity("tenant.create"), requireAuth("users.manage"), async (c) => {
  const user = currentUser(c);
  if (user.role !== "ROOT") throw forbidden("only ROOT may create tenants");
  const body = await readJson(c, CreateTenantBody);
  const d = db(c.env.DB);
  if (
    body.parentId &&
    !(await d.select({ id: tenants.id }).from(tenants).where(eq(tenants.id, body.parentId)).get())
  ) {
    throw notFound("parent tenant");
  }
  const row: TenantRow = {
    id: newId("ten"),
    name: body.name,
    parentId: body.parentId ?? null,
    createdAt: Date.now(),
  };
  await d.insert(tenants).values(row);
  noteActivity(c, { targetType: "tenant", targetId: row.id, details: { name: row.name } });
  return c.json(tenantView(row), 201);
});

tenantRoutes.get("/", requireAuth("users.read"), async (c) => {
  const scope = tenantScope(currentUser(c));
  const rows = await db(c.env.DB)
    .select()
    .from(tenants)
    .where(scope ? eq(tenants.id, scope) : undefined)
    .orderBy(desc(tenants.createdAt))
    .limit(1000)
    .all();
  return c.json(rows.map(tenantView));
});
