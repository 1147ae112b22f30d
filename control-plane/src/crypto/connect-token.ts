import { decodeJwt, decodeProtectedHeader, importJWK, jwtVerify, type JWK } from "jose";
import {
  RUNNER_CONNECT_AUDIENCE,
  RUNNER_CONNECT_TOKEN_MAX_TTL_SECONDS,
  RUNNER_CONNECT_TOKEN_TYP,
} from "../../../shared/protocol/version";

export class ConnectTokenError extends Error {
  readonly code = "UNAUTHORIZED";
}

/** Reads the claimed runner id before verification, only to find which public key to verify with. */
export function claimedRunnerId(token: string): string {
  try {
    const header = decodeProtectedHeader(token);
    if (header.alg !== "EdDSA" || header.typ !== RUNNER_CONNECT_TOKEN_TYP) throw new Error("bad header");
    const sub = decodeJwt(token).sub;
    if (typeof sub !== "string" || sub.length === 0 || sub.length > 64) throw new Error("bad sub");
    return sub;
  } catch {
    throw new ConnectTokenError("malformed connect token");
  }
}

/** Verifies a runner connect token against the runner's stored Ed25519 public key. */
export async function verifyConnectToken(
  token: string,
  runnerId: string,
  signingPublicJwk: JWK,
): Promise<{ jti: string; exp: number }> {
  try {
    const key = await importJWK({ ...signingPublicJwk, alg: "EdDSA" }, "EdDSA");
    const { payload } = await jwtVerify(token, key, {
      algorithms: ["EdDSA"],
      typ: RUNNER_CONNECT_TOKEN_TYP,
      audience: RUNNER_CONNECT_AUDIENCE,
      issuer: runnerId,
      subject: runnerId,
      requiredClaims: ["iat", "exp", "jti"],
      clockTolerance: 30,
    });
    const iat = payload.iat!;
    const exp = payload.exp!;
    if (exp - iat > RUNNER_CONNECT_TOKEN_MAX_TTL_SECONDS) throw new Error("token lifetime too long");
    if (iat > Date.now() / 1000 + 30) throw new Error("token issued in the future");
    if (typeof payload.jti !== "string" || payload.jti.length > 128) throw new Error("bad jti");
    return { jti: payload.jti, exp };
  } catch (e) {
    throw new ConnectTokenError(`connect token rejected: ${(e as Error).message}`);
  }
}
