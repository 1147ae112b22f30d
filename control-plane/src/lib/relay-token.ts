import { and, eq, isNull } from "drizzle-orm";
import { decodeJwt, decodeProtectedHeader, importJWK, jwtVerify, type JWK } from "jose";
import { RELAY_AUDIENCE, RELAY_TOKEN_MAX_TTL_SECONDS, RELAY_TOKEN_TYP } from "../../../shared/protocol/relay";
import { db } from "../db/client";
import { runners } from "../db/schema";
import type { Env } from "../env";
import { unauthorized } from "../errors";

/**
 * Checks the runner's relay token: EdDSA under the runner's enrolled public key, audience cairn-relay,
 * bound to this relay id, short-lived, runner not revoked. Returns the runner id.
 */
export async function verifyRelayToken(env: Env, token: string, relayId: string): Promise<string> {
  let runnerId: string;
  try {
    const header = decodeProtectedHeader(token);
    if (header.alg !== "EdDSA" || header.typ !== RELAY_TOKEN_TYP) throw new Error("bad header");
    const sub = decodeJwt(token).sub;
    if (typeof sub !== "string" || !sub || sub.length > 64) throw new Error("bad sub");
    runnerId = sub;
  } catch {
    throw unauthorized("malformed relay token");
  }
  const runner = await db(env.DB)
    .select()
    .from(runners)
    .where(and(eq(runners.id, runnerId), isNull(runners.revokedAt)))
    .get();
  if (!runner) throw unauthorized("relay token rejected");
  try {
    const jwks = JSON.parse(runner.signingPublicKey) as JWK;
    const key = await importJWK({ ...jwks, alg: "EdDSA" }, "EdDSA");
    const { payload } = await jwtVerify(token, key, {
      algorithms: ["EdDSA"],
      typ: RELAY_TOKEN_TYP,
      audience: RELAY_AUDIENCE,
      issuer: runnerId,
      subject: runnerId,
      requiredClaims: ["iat", "exp"],
      clockTolerance: 30,
    });
    if (payload.relayId !== relayId) throw new Error("token is for another relay");
    if (payload.exp! - payload.iat! > RELAY_TOKEN_MAX_TTL_SECONDS) throw new Error("token lifetime too long");
  } catch (e) {
    throw unauthorized(`relay token rejected: ${(e as Error).message}`);
  }
  return runnerId;
}
