import { env } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { db } from "../db/client";
import { users } from "../db/schema";
import { call } from "../../test/helpers";

const body = { tenantName: "Acme Hosting", email: "Root@Example.test", password: "a long enough password" };

describe("first-run setup", () => {
  it("needs the setup token, validates, creates tenant + ROOT once, then answers 409", async () => {
    // This file's storage starts empty (no user yet), which is what first-run means.
    expect(await db(env.DB).select().from(users).all()).toHaveLength(0);

    const noToken = await call("/api/v1/setup", { body });
    expect(noToken.status).toBe(401);
    const wrongToken = await call("/api/v1/setup", { body, headers: { "x-setup-token": "nope" } });
    expect(wrongToken.status).toBe(401);
    const weak = await call("/api/v1/setup", {
      body: { ...body, password: "short" },
      headers: { "x-setup-token": "test-setup-token" },
    });
    expect(weak.status).toBe(400);
    expect(weak.body.error.code).toBe("VALIDATION_FAILED");
    expect(await db(env.DB).select().from(users).all()).toHaveLength(0);

    const ok = await call("/api/v1/setup", { body, headers: { "x-setup-token": "test-setup-token" } });
    expect(ok.status).toBe(201);
    expect(ok.body.user).toMatchObject({ email: "root@example.test", role: "ROOT" });
    expect(ok.body.tenant).toMatchObject({ name: "Acme Hosting", id: ok.body.user.tenantId });
    const stored = await db(env.DB).select().from(users).all();
    expect(stored).toHaveLength(1);
    expect(stored[0]!.passwordHash).toMatch(/^pbkdf2-sha256\$100000\$/);

    const again = await call("/api/v1/setup", {
      body: { ...body, email: "other@example.test" },
      headers: { "x-setup-token": "test-setup-token" },
    });
    expect(again.status).toBe(409);
    expect(again.body.error.code).toBe("CONFLICT");

    const login = await call("/api/v1/auth/login", {
      body: { email: "root@example.test", password: body.password },
    });
    expect(login.status).toBe(200);
    expect(login.body.user.role).toBe("ROOT");
  });
});
