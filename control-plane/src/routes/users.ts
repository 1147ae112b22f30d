import { Hono } from "hono";
import { and, desc, eq } from "drizzle-orm";
import { z } from "zod";
import { PERMISSIONS, ROLES, type Role } from "../../../shared/rbac";
import { db } from "../db/client";
import { tenants, users } from "../db/schema";
import type { AppEnv } from "../env";
import { conflict, forbidden, notFound } from "../errors";
import { activity, noteActivity } from "../lib/activity";
import { currentUser, requireAuth, tenantScope } from "../lib/auth";
import { newId } from "../lib/ids";
import { NewUserEmail, NewUserPassword } from "../lib/user-fields";
import { readJson } from "../lib/validate";
import { hashPassword } from "../crypto/password";

const CreateUserBody = z.object({
  email: NewUserEmail,
  password: NewUserPassword,
  role: z.enum(ROLES).default("USER"),
  /** ROOT may create users in any tenant; everyone else only in their own. */
  tenantId: z.string().min(1).max(64).optional(),
  permissions: z
    .object({
      grant: z.array(z.enum(PERMISSIONS)).optional(),
      revoke: z.array(z.enum(PERMISSIONS)).optional(),
    })
    .optional(),
});

/** Lower is more privileged (the order of ROLES). */
const rank = (r: Role) => ROLES.indexOf(r);

type UserRow = typeof users.$inferSelect;
const userView = (u: UserRow) => ({
  id: u.id,
  tenantId: u.tenantId,
  email: u.email,
  role: u.role,
  permissions: JSON.parse(u.permissions) as unknown,
  disabled: u.disabled,
  createdAt: new Date(u.createdAt).toISOString(),
});

export const userRoutes = new Hono<AppEnv>();

userRoutes.post("/", activity("user.create"), requireAuth("users.manage"), async (c) => {
  const caller = currentUser(c);
  const body = await readJson(c, CreateUserBody);
  const tenantId = body.tenantId ?? caller.tenantId;
  noteActivity(c, { details: { email: body.email, role: body.role, tenantId } });
  // Nobody hands out more privilege than they hold; only ROOT works across tenants.
  if (caller.role !== "ROOT" && (rank(body.role) < rank(caller.role) || body.role === "ROOT")) {
    throw forbidden(`a ${caller.role} may not create a ${body.role}`);
  }
  if (caller.role !== "ROOT" && body.permissions?.grant?.length)
    throw forbidden("only ROOT may grant extra permissions");
  const d = db(c.env.DB);
  const scope = tenantScope(caller);
  if (scope && tenantId !== scope) throw notFound("tenant");
  if (!(await d.select({ id: tenants.id }).from(tenants).where(eq(tenants.id, tenantId)).get()))
    throw notFound("tenant");
  if (await d.select({ id: users.id }).from(users).where(eq(users.email, body.email)).get()) {
    throw conflict("a user with this email exists");
  }
  const row: UserRow = {
    id: newId("usr"),
    tenantId,
    email: body.email,
    passwordHash: await hashPassword(body.password),
    role: body.role,
    permissions: JSON.stringify(body.permissions ?? {}),
    disabled: false,
    createdAt: Date.now(),
  };
  await d.insert(users).values(row);
  noteActivity(c, { tenantId, targetType: "user", targetId: row.id });
  return c.json(userView(row), 201);
});

userRoutes.get("/", requireAuth("users.read"), async (c) => {
  const scope = tenantScope(currentUser(c));
  const rows = await db(c.env.DB)
    .select()
    .from(users)
    .where(and(scope ? eq(users.tenantId, scope) : undefined))
    .orderBy(desc(users.createdAt))
    .limit(1000)
    .all();
  return c.json(rows.map(userView));
});
