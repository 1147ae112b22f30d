import { CompactEncrypt, SignJWT, importJWK, type JWK } from "jose";
import { CONTROL_PLANE_ISSUER, JOB_TOKEN_TYP } from "../../../shared/protocol/version";
import { JOB_TOKEN_TTL_SECONDS } from "../../../shared/jobs";
import type { JobSecrets, JobSpec } from "../../../shared/protocol/job-claims";
import { signingKeys } from "./signing-keys";

/** The one place job tokens are signed (fresh on every delivery). */
export async function signJobToken(
  signingKeysSource: string,
  a: { jobId: string; runnerId: string; tenantId: string; job: JobSpec; secrets?: string | null },
  now = Date.now(),
): Promise<string> {
  const [key] = await signingKeys(signingKeysSource);
  if (!key) throw new Error("no job signing key");
  const iat = Math.floor(now / 1000);
  const claims: Record<string, unknown> = { job: a.job };
  if (a.secrets) claims.secrets = a.secrets;
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "EdDSA", kid: key.kid, typ: JOB_TOKEN_TYP })
    .setIssuer(CONTROL_PLANE_ISSUER)
    .setAudience(a.runnerId)
    .setSubject(a.tenantId)
    .setJti(a.jobId)
    .setIssuedAt(iat)
    .setExpirationTime(iat + JOB_TOKEN_TTL_SECONDS)
    .sign(key.privateKey);
}

/** Compact JWE (ECDH-ES+A256KW / A256GCM) of the job's secrets to the runner's X25519 key. */
export async function encryptJobSecrets(runnerEncryptionJwk: JWK, secrets: JobSecrets): Promise<string> {
  const key = await importJWK({ ...runnerEncryptionJwk, alg: "ECDH-ES+A256KW" }, "ECDH-ES+A256KW");
  return new CompactEncrypt(new TextEncoder().encode(JSON.stringify(secrets)))
    .setProtectedHeader({ alg: "ECDH-ES+A256KW", enc: "A256GCM", cty: "cairn-secrets+json" })
    .encrypt(key);
}
