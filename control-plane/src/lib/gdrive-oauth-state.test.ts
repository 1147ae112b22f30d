import { env } from "cloudflare:test";
import { sweep } from "../index";
import { describe, expect, it } from "vitest";
import {
  OAUTH_STATE_TTL_MS,
  consumeOAuthState,
  createOAuthState,
  pkceChallenge,
  pkceVerifier,
} from "./gdrive-oauth-state";

const pending = {
  destinationId: "dst_a",
  tenantId: "ten_a",
  userId: "usr_a",
  redirectUri: "http://127.0.0.1/api/v1/destinations/gdrive/callback",
};

describe("Drive authorization state", () => {
  it("is consumed once, bound to what started it", async () => {
    const state = await createOAuthState(env, pending);
    await expect(consumeOAuthState(env, state)).resolves.toEqual(pending);
    await expect(consumeOAuthState(env, state)).rejects.toMatchObject({ code: "OAUTH_STATE_INVALID" });
  });

  it("expires after its TTL, and an expired state is gone too", async () => {
    const t0 = Date.now();
    const state = await createOAuthState(env, pending, t0);
    await expect(consumeOAuthState(env, state, t0 + OAUTH_STATE_TTL_MS + 1)).rejects.toMatchObject({
      code: "OAUTH_STATE_INVALID",
      message: expect.stringContaining("expired"),
    });
    await expect(consumeOAuthState(env, state, t0)).rejects.toMatchObject({ code: "OAUTH_STATE_INVALID" });
  });

  it("the cron sweep deletes expired states", async () => {
    const t0 = Date.now();
    const state = await createOAuthState(env, pending, t0);
    await sweep(env, t0 + OAUTH_STATE_TTL_MS + 1);
    await expect(consumeOAuthState(env, state, t0)).rejects.toMatchObject({
      message: expect.stringContaining("unknown"),
    });
  });

  it("refuses empty and oversized states", async () => {
    await expect(consumeOAuthState(env, "")).rejects.toMatchObject({ code: "OAUTH_STATE_INVALID" });
    await expect(consumeOAuthState(env, "x".repeat(300))).rejects.toMatchObject({
      code: "OAUTH_STATE_INVALID",
    });
  });

  it("derives a stable RFC 7636 verifier per state, different across states", async () => {
    const v1 = await pkceVerifier(env, "state-one");
    expect(v1).toMatch(/^[A-Za-z0-9_-]{43,128}$/);
    expect(await pkceVerifier(env, "state-one")).toBe(v1);
    expect(await pkceVerifier(env, "state-two")).not.toBe(v1);
    expect(await pkceChallenge(v1)).toMatch(/^[A-Za-z0-9_-]{43}$/);
  });
});
