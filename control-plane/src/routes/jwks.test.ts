import { describe, expect, it } from "vitest";
import { call } from "../../test/helpers";

describe("public endpoints", () => {
  it("JWKS lists every signing key's public half with kid, EdDSA, sig — and no private part", async () => {
    const r = await call("/.well-known/jwks.json");
    expect(r.status).toBe(200);
    expect(r.body.keys).toHaveLength(2);
    for (const k of r.body.keys) {
      expect(Object.keys(k).sort()).toEqual(["alg", "crv", "kid", "kty", "use", "x"]);
      expect(k).toMatchObject({ kty: "OKP", crv: "Ed25519", alg: "EdDSA", use: "sig" });
    }
    expect(r.body.keys.map((k: { kid: string }) => k.kid)).toEqual(["test-1", "test-2"]);
  });

  it("serves the console with a strict CSP and security headers", async () => {
    const r = await call("/");
    expect(r.status).toBe(200);
    expect(r.res.headers.get("content-type")).toMatch(/text\/html/);
    const csp = r.res.headers.get("content-security-policy")!;
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).toContain("default-src 'none'");
    expect(csp).not.toContain("unsafe-eval");
    expect(csp).not.toContain("unsafe-inline");
    expect(r.res.headers.get("x-content-type-options")).toBe("nosniff");
    const nonce = /script-src 'nonce-([^']+)'/.exec(csp)![1]!;
    expect(r.body).toContain(`<script nonce="${nonce}">`);
    expect(r.body).not.toMatch(/<script[^>]+src=|<link[^>]+href=|https?:\/\/(?!www\.w3)/);
    expect(r.body).not.toContain("innerHTML");
  });

  it("unknown routes are a JSON 404", async () => {
    const r = await call("/api/v1/nope");
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe("NOT_FOUND");
  });
});
