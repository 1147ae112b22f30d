import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { and, eq } from "drizzle-orm";
import { db } from "../db/client";
import { activityLog, enrollmentTokens } from "../db/schema";
import { sha256Hex } from "../crypto/random";
import { call, createTenantUser, enrollRunner } from "../../test/helpers";

const keys = {
  signingPublicKey: { kty: "OKP", crv: "Ed25519", x: "k7A0gS2F_M0g69y0u0SRJqMXYFEu6_31h5k7cjm_MN4" },
  encryptionPublicKey: { kty: "OKP", crv: "X25519", x: "k7A0gS2F_M0g69y0u0SRJqMXYFEu6_31h5k7cjm_MN4" },
};

async function failedEnrollRows() {
  return db(env.DB)
    .select()
    .from(activityLog)
    .where(and(eq(activityLog.operation, "runner.enroll"), eq(activityLog.status, "failure")))
    .all();
}

describe("enrollment", () => {
  it("issues a single-use token (stored hashed) and enrolls a runner with the JWKS", async () => {
    const u = await createTenantUser();
    const t = await call("/api/v1/runners/enrollment-tokens", { body: {}, token: u.token });
    expect(t.status).toBe(201);
    expect(t.body.token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const ttl = Date.parse(t.body.expiresAt) - Date.now();
    expect(ttl).toBeGreaterThan(3500_000);
    expect(ttl).toBeLessThanOrEqual(3600_000);
    const stored = await db(env.DB)
      .select()
      .from(enrollmentTokens)
      .where(eq(enrollmentTokens.tenantId, u.tenantId))
      .all();
    expect(stored).toHaveLength(1);
    expect(stored[0]!.tokenHash).toBe(await sha256Hex(t.body.token));
    expect(JSON.stringify(stored)).not.toContain(t.body.token);

    const r = await call("/api/v1/runners/enroll", {
      body: { token: t.body.token, name: "web-01", hostname: "web-01.example.net", ...keys },
    });
    expect(r.status).toBe(201);
    expect(r.body.tenantId).toBe(u.tenantId);
    expect(r.body.runnerId).toMatch(/^run_/);
    expect(r.body.jwks.keys.map((k: { kid: string }) => k.kid)).toEqual(["test-1", "test-2"]);

    const before = (await failedEnrollRows()).length;
    const reused = await call("/api/v1/runners/enroll", {
      body: { token: t.body.token, name: "web-02", hostname: "x", ...keys },
    });
    expect(reused.status).toBe(401);
    expect(reused.body.error.code).toBe("UNAUTHORIZED");
    expect((await failedEnrollRows()).length).toBe(before + 1);
  });

  it("refuses expired and random tokens with 401 and an activity row", async () => {
    const u = await createTenantUser();
    const t = await call("/api/v1/runners/enrollment-tokens", { body: { ttlSeconds: 60 }, token: u.token });
    await db(env.DB)
      .update(enrollmentTokens)
      .set({ expiresAt: Date.now() - 1 })
      .where(eq(enrollmentTokens.tenantId, u.tenantId));
    const before = (await failedEnrollRows()).length;
    const expired = await call("/api/v1/runners/enroll", {
      body: { token: t.body.token, name: "a", hostname: "a", ...keys },
    });
    expect(expired.status).toBe(401);
    const random = await call("/api/v1/runners/enroll", {
      body: { token: "x".repeat(43), name: "a", hostname: "a", ...keys },
    });
    expect(random.status).toBe(401);
    expect((await failedEnrollRows()).length).toBe(before + 2);
  });

  it("validates enrollment bodies (400) and token ttl caps", async () => {
    const u = await createTenantUser();
    const bad = await call("/api/v1/runners/enroll", {
      body: { token: "t", name: "a", hostname: "a", signingPublicKey: { kty: "RSA" } },
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error.code).toBe("VALIDATION_FAILED");
    const tooLong = await call("/api/v1/runners/enrollment-tokens", {
      body: { ttlSeconds: 10 ** 9 },
      token: u.token,
    });
    expect(tooLong.status).toBe(400);
    const anon = await call("/api/v1/runners/enrollment-tokens", { body: {} });
    expect(anon.status).toBe(401);
  });

  it("a USER may not create enrollment tokens (403)", async () => {
    const u = await createTenantUser("USER");
    const r = await call("/api/v1/runners/enrollment-tokens", { body: {}, token: u.token });
    expect(r.status).toBe(403);
    expect(r.body.error.code).toBe("FORBIDDEN");
  });

  it("a USER in the same tenant may list runners but not revoke them (403), and nothing changes", async () => {
    const admin = await createTenantUser();
    const runner = await enrollRunner(admin);
    const user = await createTenantUser("USER");
    // Move the USER into the admin's tenant (the helper makes a fresh tenant per user).
    await env.DB.prepare("UPDATE users SET tenant_id = ? WHERE id = ?")
      .bind(admin.tenantId, user.userId)
      .run();
    await env.DB.prepare("UPDATE sessions SET tenant_id = ? WHERE user_id = ?")
      .bind(admin.tenantId, user.userId)
      .run();
    const list = await call("/api/v1/runners", { token: user.token });
    expect(list.body.map((r: { id: string }) => r.id)).toEqual([runner.runnerId]);
    const rv = await call(`/api/v1/runners/${runner.runnerId}/revoke`, { method: "POST", token: user.token });
    expect(rv.status).toBe(403);
    expect(
      (await call(`/api/v1/runners/${runner.runnerId}`, { token: admin.token })).body.revokedAt,
    ).toBeNull();
  });
});

describe("runners list and tenant isolation", () => {
  it("lists only the caller's runners; other tenants' ids are 404; ROOT sees all", async () => {
    const a = await createTenantUser();
    const b = await createTenantUser();
    const root = await createTenantUser("ROOT");
    const ra = await enrollRunner(a, "a-01");
    const rb = await enrollRunner(b, "b-01");
    const la = await call("/api/v1/runners", { token: a.token });
    expect(la.status).toBe(200);
    expect(la.body).toEqual([
      {
        id: ra.runnerId,
        tenantId: a.tenantId,
        name: "a-01",
        hostname: "a-01.example.net",
        status: "offline",
        lastSeenAt: null,
        revokedAt: null,
        createdAt: expect.any(String),
      },
    ]);
    expect((await call(`/api/v1/runners/${ra.runnerId}`, { token: a.token })).status).toBe(200);
    expect((await call(`/api/v1/runners/${rb.runnerId}`, { token: a.token })).status).toBe(404);
    expect(
      (await call(`/api/v1/runners/${rb.runnerId}/revoke`, { method: "POST", token: a.token })).status,
    ).toBe(404);
    expect((await call("/api/v1/runners/run_unknown", { token: a.token })).status).toBe(404);
    const all = await call("/api/v1/runners", { token: root.token });
    expect(all.body.map((r: { id: string }) => r.id)).toEqual(
      expect.arrayContaining([ra.runnerId, rb.runnerId]),
    );
  });
});
