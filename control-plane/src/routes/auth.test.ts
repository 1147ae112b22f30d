import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { and, eq } from "drizzle-orm";
import { db } from "../db/client";
import { activityLog, users } from "../db/schema";
import { ROLE_PERMISSIONS } from "../../../shared/rbac";
import { call, createTenantUser } from "../../test/helpers";

describe("auth", () => {
  it("logs in with the right password: cookie + token, and the token authenticates", async () => {
    const u = await createTenantUser();
    const r = await call("/api/v1/auth/login", { body: { email: u.email, password: u.password } });
    expect(r.status).toBe(200);
    expect(r.body.user).toMatchObject({ id: u.userId, email: u.email, role: "ADMIN", tenantId: u.tenantId });
    expect(r.body.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const cookie = r.res.headers.get("set-cookie")!;
    expect(cookie).toContain(`cairn_session=${r.body.token}`);
    expect(cookie).toMatch(/HttpOnly/i);
    expect(cookie).toMatch(/SameSite=Strict/i);
    expect(cookie).toMatch(/Secure/i); // the test origin is https
    expect(cookie).toMatch(/Path=\//);

    const me = await call("/api/v1/auth/me", { token: r.body.token });
    expect(me.status).toBe(200);
    expect(me.body.user.id).toBe(u.userId);
    const viaCookie = await call("/api/v1/auth/me", { headers: { cookie: `cairn_session=${r.body.token}` } });
    expect(viaCookie.status).toBe(200);
  });

  it("login and /me carry the effective permissions: role defaults with the user's grants and revocations", async () => {
    const admin = await createTenantUser("ADMIN");
    const login = await call("/api/v1/auth/login", {
      body: { email: admin.email, password: admin.password },
    });
    expect(login.body.user.permissions).toEqual([...ROLE_PERMISSIONS.ADMIN]);
    expect(login.body.user.permissions).toContain("destinations.read");

    const u = await createTenantUser("USER");
    const plain = await call("/api/v1/auth/me", { token: u.token });
    expect(plain.body.user).toMatchObject({ role: "USER", permissions: [...ROLE_PERMISSIONS.USER] });
    expect(plain.body.user.permissions).not.toContain("destinations.read");

    await db(env.DB)
      .update(users)
      .set({
        permissions: JSON.stringify({
          grant: ["destinations.read"],
          revoke: ["backups.delete", "backups.create"],
        }),
      })
      .where(eq(users.id, u.userId));
    const changed = await call("/api/v1/auth/me", { token: u.token });
    expect(changed.body.user.permissions).toContain("destinations.read");
    expect(changed.body.user.permissions).not.toContain("backups.create");
    const again = await call("/api/v1/auth/login", { body: { email: u.email, password: u.password } });
    expect(again.body.user.permissions).toEqual(changed.body.user.permissions);
  });

  it("refuses a wrong password with 401 and records the failure", async () => {
    const u = await createTenantUser();
    const r = await call("/api/v1/auth/login", { body: { email: u.email, password: "wrong password!!" } });
    expect(r.status).toBe(401);
    expect(r.body).toEqual({ error: { code: "UNAUTHORIZED", message: "invalid email or password" } });
    expect(r.res.headers.get("set-cookie")).toBeNull();
    const rows = await db(env.DB)
      .select()
      .from(activityLog)
      .where(
        and(
          eq(activityLog.tenantId, u.tenantId),
          eq(activityLog.operation, "auth.login"),
          eq(activityLog.status, "failure"),
        ),
      )
      .all();
    expect(rows).toHaveLength(1);
    expect(rows[0]!.details).not.toContain("wrong password");
  });

  it("refuses an unknown email the same way", async () => {
    const r = await call("/api/v1/auth/login", {
      body: { email: "nobody@example.test", password: "whatever-whatever" },
    });
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe("UNAUTHORIZED");
  });

  it("logout invalidates the session", async () => {
    const u = await createTenantUser();
    expect((await call("/api/v1/auth/logout", { method: "POST", token: u.token })).status).toBe(200);
    expect((await call("/api/v1/auth/me", { token: u.token })).status).toBe(401);
  });

  it("rejects malformed JSON and invalid bodies with 400, never 500", async () => {
    const bad = await call("/api/v1/auth/login", {
      method: "POST",
      rawBody: "{nope",
      headers: { "content-type": "application/json" },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe("BAD_REQUEST");
    const invalid = await call("/api/v1/auth/login", { body: { email: 5 } });
    expect(invalid.status).toBe(400);
    expect(invalid.body.error.code).toBe("VALIDATION_FAILED");
    expect(invalid.body.error.message).toMatch(/email/);
  });

  it("requires a session for /me", async () => {
    const r = await call("/api/v1/auth/me");
    expect(r.status).toBe(401);
    expect(r.body.error.code).toBe("UNAUTHORIZED");
  });
});
