import type { Context, MiddlewareHandler } from "hono";
import { getCookie } from "hono/cookie";
import { and, eq, gt } from "drizzle-orm";
import { hasPermission, type Permission, type Role } from "../../../shared/rbac";
import { db } from "../db/client";
import { sessions, users } from "../db/schema";
import type { AppEnv, AuthUser } from "../env";
import { forbidden, unauthorized } from "../errors";
import { sha256Hex } from "../crypto/random";

export const SESSION_COOKIE = "cairn_session";
export const SESSION_TTL_MS = 12 * 60 * 60 * 1000;

export function sessionToken(c: Context): string | undefined {
  const h = c.req.header("authorization");
  if (h?.startsWith("Bearer ")) return h.slice(7).trim();
  return getCookie(c, SESSION_COOKIE);
}

async function loadUser(c: Context<AppEnv>): Promise<AuthUser | undefined> {
  const token = sessionToken(c);
  if (!token || token.length > 256) return undefined;
  // Looked up by hash: the index match is on a digest, so the lookup leaks nothing useful about the token.
  const hash = await sha256Hex(token);
  const row = await db(c.env.DB)
    .select({ user: users })
    .from(sessions)
    .innerJoin(users, eq(users.id, sessions.userId))
    .where(and(eq(sessions.tokenHash, hash), gt(sessions.expiresAt, Date.now())))
    .get();
  if (!row || row.user.disabled) return undefined;
  let permissions: AuthUser["permissions"] = {};
  try {
    permissions = JSON.parse(row.user.permissions) as AuthUser["permissions"];
  } catch {
    permissions = {};
  }
  return {
    id: row.user.id,
    tenantId: row.user.tenantId,
    email: row.user.email,
    role: row.user.role,
    permissions,
  };
}

/** Requires a valid session (cookie or bearer) and, if given, a permission. */
export function requireAuth(permission?: Permission): MiddlewareHandler<AppEnv> {
  return async (c, next) => {
    const user = c.get("user") ?? (await loadUser(c));
    if (!user) throw unauthorized();
    c.set("user", user);
    if (
      permission &&
      !hasPermission(
        user.role as Role,
        permission,
        user.permissions as { grant?: Permission[]; revoke?: Permission[] },
      )
    ) {
      throw forbidden(`missing permission ${permission}`);
    }
    await next();
  };
}

export function currentUser(c: Context<AppEnv>): AuthUser {
  const u = c.get("user");
  if (!u) throw unauthorized();
  return u;
}

/** The tenant filter for queries: ROOT sees every tenant (null = no filter). */
export function tenantScope(user: AuthUser): string | null {
  return user.role === "ROOT" ? null : user.tenantId;
}
