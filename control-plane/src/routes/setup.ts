import { Hono } from "hono";
import { z } from "zod";
import { db } from "../db/client";
import { users } from "../db/schema";
import type { AppEnv } from "../env";
import { conflict, unauthorized } from "../errors";
import { activity, noteActivity } from "../lib/activity";
import { newId } from "../lib/ids";
import { NewUserEmail, NewUserPassword } from "../lib/user-fields";
import { readJson } from "../lib/validate";
import { hashPassword } from "../crypto/password";
import { timingSafeEqualString } from "../crypto/random";

export const SetupBody = z.object({
  tenantName: z.string().trim().min(1).max(128),
  email: NewUserEmail,
  password: NewUserPassword,
});

export const setupRoutes = new Hono<AppEnv>();

/** First-run bootstrap: creates the first tenant and its ROOT user, only while no user exists. */
setupRoutes.post("/", activity("setup"), async (c) => {
  const given = c.req.header("x-setup-token") ?? "";
  if (!c.env.SETUP_TOKEN || !timingSafeEqualString(given, c.env.SETUP_TOKEN))
    throw unauthorized("bad setup token");
  const body = await readJson(c, SetupBody);
  const d = db(c.env.DB);
  if (await d.select({ id: users.id }).from(users).limit(1).get()) throw conflict("setup already done");
  const now = Date.now();
  const tenantId = newId("ten");
  const userId = newId("usr");
  const passwordHash = await hashPassword(body.password);
  // The user insert is conditional on the table still being empty, so two racing setups cannot both win;
  // the tenant insert is conditional on the user insert having happened (same batch = one transaction).
  const [inserted] = await c.env.DB.batch([
    c.env.DB.prepare(
      `INSERT INTO users (id, tenant_id, email, password_hash, role, permissions, disabled, created_at)
       SELECT ?, ?, ?, ?, 'ROOT', '{}', 0, ? WHERE NOT EXISTS (SELECT 1 FROM users)`,
    ).bind(userId, tenantId, body.email, passwordHash, now),
    c.env.DB.prepare(
      `INSERT INTO tenants (id, parent_id, name, created_at)
       SELECT ?, NULL, ?, ? WHERE EXISTS (SELECT 1 FROM users WHERE id = ?)`,
    ).bind(tenantId, body.tenantName, now, userId),
  ]);
  if (inserted?.meta.changes !== 1) throw conflict("setup already done");
  noteActivity(c, { tenantId, actorType: "system", actorId: null, targetType: "user", targetId: userId });
  return c.json(
    {
      tenant: { id: tenantId, name: body.tenantName },
      user: { id: userId, email: body.email, role: "ROOT", tenantId },
    },
    201,
  );
});
