import { randomUUID } from "node:crypto";
import { importJWK, SignJWT, type JWK } from "jose";
import { RUNNER_CONNECT_AUDIENCE, RUNNER_CONNECT_TOKEN_TYP } from "../../../shared/protocol/version";

/** Lifetime of a connect token: used once, right away, so a minute is plenty. */
export const CONNECT_TOKEN_TTL_SECONDS = 60;

/** The runner proves who it is by signing a fresh, single-use JWT with its own Ed25519 key. */
export async function createConnectToken(
  runnerId: string,
  signingPrivateJwk: JWK,
  nowSeconds = Math.floor(Date.now() / 1000),
): Promise<string> {
  const key = await importJWK(signingPrivateJwk, "EdDSA");
  return new SignJWT({})
    .setProtectedHeader({ alg: "EdDSA", typ: RUNNER_CONNECT_TOKEN_TYP })
    .setIssuer(runnerId)
    .setSubject(runnerId)
    .setAudience(RUNNER_CONNECT_AUDIENCE)
    .setIssuedAt(nowSeconds)
    .setExpirationTime(nowSeconds + CONNECT_TOKEN_TTL_SECONDS)
    .setJti(randomUUID())
    .sign(key);
}

/** `https://cp.example/base` → `wss://cp.example/base/api/v1/runners/connect`. */
export function connectUrl(controlPlaneUrl: string): string {
  const u = new URL(controlPlaneUrl);
  u.protocol = u.protocol === "https:" ? "wss:" : "ws:";
  u.pathname = `${u.pathname.replace(/\/+$/, "")}/api/v1/runners/connect`;
  u.search = "";
  u.hash = "";
  return u.toString();
}
