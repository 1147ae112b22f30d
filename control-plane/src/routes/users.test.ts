import { describe, expect, it } from "vitest";
import { call, createTenantUser } from "../../test/helpers";

describe("tenants and users", () => {
  it("ROOT creates a tenant and its admin, who then sees only that tenant", async () => {
    const root = await createTenantUser("ROOT");
    const t = await call("/api/v1/tenants", {
      body: { name: "Customer A", parentId: root.tenantId },
      token: root.token,
    });
    expect(t.status).toBe(201);
    expect(t.body).toMatchObject({ name: "Customer A", parentId: root.tenantId });
    const u = await call("/api/v1/users", {
      body: {
        email: "Admin@Customer-A.test",
        password: "a long enough password",
        role: "ADMIN",
        tenantId: t.body.id,
      },
      token: root.token,
    });
    expect(u.status).toBe(201);
    expect(u.body).toMatchObject({ email: "admin@customer-a.test", role: "ADMIN", tenantId: t.body.id });
    expect(JSON.stringify(u.body)).not.toContain("password");

    const login = await call("/api/v1/auth/login", {
      body: { email: "admin@customer-a.test", password: "a long enough password" },
    });
    expect(login.status).toBe(200);
    const mine = await call("/api/v1/tenants", { token: login.body.token });
    expect(mine.body.map((x: { id: string }) => x.id)).toEqual([t.body.id]);
    const users = await call("/api/v1/users", { token: login.body.token });
    expect(users.body.map((x: { email: string }) => x.email)).toEqual(["admin@customer-a.test"]);

    const dup = await call("/api/v1/users", {
      body: { email: "admin@customer-a.test", password: "a long enough password", tenantId: t.body.id },
      token: root.token,
    });
    expect(dup.status).toBe(409);
  });

  it("non-ROOT users cannot create tenants, escalate roles or reach other tenants", async () => {
    const admin = await createTenantUser("ADMIN");
    const other = await createTenantUser("ADMIN");
    expect((await call("/api/v1/tenants", { body: { name: "x" }, token: admin.token })).status).toBe(403);
    const root = await call("/api/v1/users", {
      body: { email: "r@x.test", password: "a long enough password", role: "ROOT" },
      token: admin.token,
    });
    expect(root.status).toBe(403);
    const cross = await call("/api/v1/users", {
      body: { email: "c@x.test", password: "a long enough password", tenantId: other.tenantId },
      token: admin.token,
    });
    expect(cross.status).toBe(404);
    const user = await createTenantUser("USER");
    expect(
      (
        await call("/api/v1/users", {
          body: { email: "u@x.test", password: "a long enough password" },
          token: user.token,
        })
      ).status,
    ).toBe(403);
    const ok = await call("/api/v1/users", {
      body: { email: "ok@x.test", password: "a long enough password" },
      token: admin.token,
    });
    expect(ok.status).toBe(201);
    expect(ok.body).toMatchObject({ role: "USER", tenantId: admin.tenantId });
    const weak = await call("/api/v1/users", {
      body: { email: "w@x.test", password: "short" },
      token: admin.token,
    });
    expect(weak.status).toBe(400);
  });
});
