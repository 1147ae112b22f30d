import { Hono } from "hono";
import { deleteCookie, setCookie } from "hono/cookie";
import { eq } from "drizzle-orm";
import { z } from "zod";
import { effectivePermissions, type Permission, type Role } from "../../../shared/rbac";
import { db } from "../db/client";
import { sessions, users } from "../db/schema";
import type { AppEnv } from "../env";
import { unauthorized } from "../errors";
import { activity, noteActivity } from "../lib/activity";
import { currentUser, requireAuth, SESSION_COOKIE, SESSION_TTL_MS, sessionToken } from "../lib/auth";
import { newId } from "../lib/ids";
import { readJson } from "../lib/validate";
import { dummyPasswordHash, verifyPassword } from "../crypto/password";
import { randomToken, sha256Hex } from "../crypto/random";

const LoginBody = z.object({
  email: z.string().trim().toLowerCase().min(1).max(254),
  password: z.string().min(1).max(1024),
});

export const authRoutes = new Hono<AppEnv>();

type Overrides = { grant?: Permission[]; revoke?: Permission[] };

/**
 * The signed-in user as the console sees it: with the effective permissions, so it can leave out the
 * views the user may not use without probing their APIs (each 403 would be a failed-read activity row).
 */
function publicUser(u: { id: string; email: string; role: string; tenantId: string }, overrides: Overrides) {
  return {
    id: u.id,
    email: u.email,
    role: u.role,
    tenantId: u.tenantId,
    permissions: effectivePermissions(u.role as Role, overrides),
  };
}

function parseOverrides(json: string): Overrides {
  try {
    return JSON.parse(json) as Overrides;
  } catch {
    return {};
  }
}

authRoutes.post("/login", activity("auth.login"), async (c) => {
  const body = await readJson(c, LoginBody);
  const d = db(c.env.DB);
  const user = await d.select().from(users).where(eq(users.email, body.email)).get();
  // Always run one PBKDF2 so an unknown email costs as much as a wrong password.
  const ok = await verifyPassword(body.password, user?.passwordHash ?? (await dummyPasswordHash()));
  if (!user || !ok || user.disabled) {
    noteActivity(c, {
      tenantId: user?.tenantId ?? null,
      actorId: user?.id ?? null,
      details: { email: body.email },
    });
    throw unauthorized("invalid email or password");
  }
  const token = randomToken();
  const now = Date.now();
  await d.insert(sessions).values({
    id: newId("ses"),
    tokenHash: await sha256Hex(token),
    userId: user.id,
    tenantId: user.tenantId,
    expiresAt: now + SESSION_TTL_MS,
    createdAt: now,
  });
  noteActivity(c, {
    tenantId: user.tenantId,
    actorType: "user",
    actorId: user.id,
    targetType: "user",
    targetId: user.id,
  });
  setCookie(c, SESSION_COOKIE, token, {
    httpOnly: true,
    sameSite: "Strict",
    secure: new URL(c.req.url).protocol === "https:",
    path: "/",
    maxAge: SESSION_TTL_MS / 1000,
  });
  return c.json({
    token,
    expiresAt: new Date(now + SESSION_TTL_MS).toISOString(),
    user: publicUser(user, parseOverrides(user.permissions)),
  });
});

authRoutes.post("/logout", activity("auth.logout"), requireAuth(), async (c) => {
  const token = sessionToken(c);
  if (token)
    await db(c.env.DB)
      .delete(sessions)
      .where(eq(sessions.tokenHash, await sha256Hex(token)));
  deleteCookie(c, SESSION_COOKIE, { path: "/" });
  return c.json({ ok: true });
});

authRoutes.get("/me", requireAuth(), (c) => {
  const u = currentUser(c);
  return c.json({ user: publicUser(u, u.permissions as Overrides) });
});
