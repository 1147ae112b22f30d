import { and, eq } from "drizzle-orm";
import { base64url } from "jose";
import { masterKeyBytes } from "../crypto/key-wrap";
import { randomToken, sha256Hex } from "../crypto/random";
import { db } from "../db/client";
import { oauthStates } from "../db/schema";
import type { Env } from "../env";
import { ApiError } from "../errors";
import { ApiErrorCode } from "../../../shared/errors";

/** How long a started Drive authorization may take before its state is refused. */
export const OAUTH_STATE_TTL_MS = 10 * 60_000;

const stateRefused = (m: string) => new ApiError(400, ApiErrorCode.OAuthStateInvalid, m);

/**
 * PKCE verifier derived from the state under MASTER_KEY: nothing secret is stored, and only this
 * Worker can recompute it, so an intercepted code is useless without the state it came with.
 */
export async function pkceVerifier(env: Env, state: string): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    masterKeyBytes(env.MASTER_KEY),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(`cairn-gdrive-pkce:${state}`));
  return base64url.encode(new Uint8Array(mac));
}

export async function pkceChallenge(verifier: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url.encode(new Uint8Array(digest));
}

export interface PendingAuthorization {
  destinationId: string;
  tenantId: string;
  userId: string;
  redirectUri: string;
}

/** A fresh single-use state; only its hash is stored. */
export async function createOAuthState(env: Env, p: PendingAuthorization, now = Date.now()): Promise<string> {
  const state = randomToken();
  await db(env.DB)
    .insert(oauthStates)
    .values({ stateHash: await sha256Hex(state), ...p, expiresAt: now + OAUTH_STATE_TTL_MS, createdAt: now });
  return state;
}

/**
 * Consumes a state: the row is deleted in the same statement that reads it, so two callbacks racing
 * with one state cannot both succeed. Unknown, reused and expired states are refused alike.
 */
export async function consumeOAuthState(
  env: Env,
  state: string,
  now = Date.now(),
): Promise<PendingAuthorization> {
  if (!state || state.length > 256) throw stateRefused("missing or malformed state");
  const hash = await sha256Hex(state);
  const row = await db(env.DB)
    .delete(oauthStates)
    .where(and(eq(oauthStates.stateHash, hash)))
    .returning()
    .get();
  if (!row) throw stateRefused("unknown or already used authorization state; start the authorization again");
  if (row.expiresAt <= now) throw stateRefused("authorization state expired; start the authorization again");
  return {
    destinationId: row.destinationId,
    tenantId: row.tenantId,
    userId: row.userId,
    redirectUri: row.redirectUri,
  };
}
