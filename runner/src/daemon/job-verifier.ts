import { compactDecrypt, compactVerify, importJWK, type CryptoKey, type JWK } from "jose";
import { JobRejectCode } from "../../../shared/errors";
import { JOB_TYPES } from "../../../shared/jobs";
import { JobClaims, JobSecrets } from "../../../shared/protocol/job-claims";
import { CONTROL_PLANE_ISSUER, JOB_TOKEN_TYP } from "../../../shared/protocol/version";
import { CLOCK_TOLERANCE_SECONDS, jobFingerprint, type LookupResult } from "./journal";

/**
 * Verifies a job token in the order docs/PROTOCOL.md fixes, before anything runs.
 * The header is read without trusting it only to refuse any algorithm but EdDSA before a key is
 * touched: that closes `alg: none` and the HS256-with-the-public-key confusion.
 */

export class JobRejection extends Error {
  constructor(
    readonly code: JobRejectCode,
    message: string,
  ) {
    super(message);
    this.name = "JobRejection";
  }
}

export interface VerifierKeys {
  runnerId: string;
  tenantId: string;
  /** Pinned control-plane job-signing keys. */
  jwks: { keys: JWK[] };
  /** The runner's X25519 private JWK, to open `secrets`. */
  encryptionPrivateJwk: JWK;
}

export type VerifiedJob =
  | { kind: "new"; claims: JobClaims; secrets: JobSecrets; fingerprint: string }
  /** The same job again (at-least-once delivery): acknowledge, never re-run. */
  | { kind: "redelivery"; claims: JobClaims; fingerprint: string };

export interface VerifyOptions {
  /** Seconds since the epoch. */
  nowSeconds?: number;
  /** Journal lookup for the one-time id check. */
  lookup: (jobId: string, fingerprint: string) => LookupResult;
}

const b64urlJson = (part: string): unknown => JSON.parse(Buffer.from(part, "base64url").toString("utf8"));

export class JobVerifier {
  private readonly signingKeys = new Map<string, Promise<CryptoKey | Uint8Array>>();
  private encryptionKey?: Promise<CryptoKey | Uint8Array>;

  constructor(private readonly keys: VerifierKeys) {}

  async verify(token: string, opts: VerifyOptions): Promise<VerifiedJob> {
    // 1. alg, from a header we do not trust yet.
    const parts = token.split(".");
    if (parts.length !== 3) throw new JobRejection(JobRejectCode.Malformed, "not a compact JWS");
    let header: Record<string, unknown>;
    try {
      const h = b64urlJson(parts[0]!);
      if (!h || typeof h !== "object" || Array.isArray(h)) throw new Error("header is not an object");
      header = h as Record<string, unknown>;
    } catch {
      throw new JobRejection(JobRejectCode.Malformed, "unreadable protected header");
    }
    if (header.alg !== "EdDSA") {
      throw new JobRejection(
        JobRejectCode.BadAlgorithm,
        `algorithm ${JSON.stringify(header.alg ?? null)} is not accepted (EdDSA only)`,
      );
    }
    // 2. typ: a token of another kind (e.g. a connect token) must never pass as a job.
    if (header.typ !== JOB_TOKEN_TYP) {
      throw new JobRejection(
        JobRejectCode.WrongType,
        `typ ${JSON.stringify(header.typ ?? null)} is not ${JOB_TOKEN_TYP}`,
      );
    }
    // 3. kid in the pinned JWKS: keys never come from the socket.
    const kid = header.kid;
    const jwk = typeof kid === "string" ? this.keys.jwks.keys.find((k) => k.kid === kid) : undefined;
    if (!jwk || typeof kid !== "string") {
      throw new JobRejection(JobRejectCode.UnknownKey, `key id ${JSON.stringify(kid ?? null)} is not pinned`);
    }
    // 4. signature, with the algorithm pinned again at the library level.
    let payloadBytes: Uint8Array;
    try {
      const key = await this.signingKey(kid, jwk);
      ({ payload: payloadBytes } = await compactVerify(token, key, { algorithms: ["EdDSA"] }));
    } catch {
      throw new JobRejection(JobRejectCode.BadSignature, "signature does not verify with the pinned key");
    }
    let payload: Record<string, unknown>;
    try {
      const p = JSON.parse(new TextDecoder().decode(payloadBytes)) as unknown;
      if (!p || typeof p !== "object" || Array.isArray(p)) throw new Error("payload is not an object");
      payload = p as Record<string, unknown>;
    } catch {
      throw new JobRejection(JobRejectCode.Malformed, "payload is not a JSON object");
    }
    // 5. iss, 6. aud (and the tenant this runner belongs to).
    if (payload.iss !== CONTROL_PLANE_ISSUER)
      throw new JobRejection(JobRejectCode.WrongIssuer, "issuer is not the control plane");
    if (payload.aud !== this.keys.runnerId)
      throw new JobRejection(JobRejectCode.WrongAudience, "job is addressed to another runner");
    if (payload.sub !== this.keys.tenantId)
      throw new JobRejection(JobRejectCode.WrongAudience, "job belongs to another tenant");
    // 7. exp / iat with clock tolerance.
    const now = opts.nowSeconds ?? Math.floor(Date.now() / 1000);
    if (typeof payload.exp !== "number" || typeof payload.iat !== "number") {
      throw new JobRejection(JobRejectCode.Malformed, "exp and iat are required");
    }
    if (now > payload.exp + CLOCK_TOLERANCE_SECONDS)
      throw new JobRejection(JobRejectCode.Expired, "job token expired");
    if (payload.iat > now + CLOCK_TOLERANCE_SECONDS)
      throw new JobRejection(JobRejectCode.NotYetValid, "job token issued in the future");
    if (payload.exp < payload.iat) throw new JobRejection(JobRejectCode.Malformed, "exp before iat");
    // 8. claims.
    const claims = parseClaims(payload);
    // 9. one-time id.
    const fingerprint = jobFingerprint(claims);
    const seen = opts.lookup(claims.jti, fingerprint);
    if (seen.kind === "different") {
      throw new JobRejection(JobRejectCode.Replayed, "job id already used for a different job");
    }
    if (seen.kind === "same") return { kind: "redelivery", claims, fingerprint };
    // Secrets last: only a job that will run needs them opened.
    const secrets = claims.secrets ? await this.openSecrets(claims.secrets) : {};
    return { kind: "new", claims, secrets, fingerprint };
  }

  private signingKey(kid: string, jwk: JWK): Promise<CryptoKey | Uint8Array> {
    let k = this.signingKeys.get(kid);
    if (!k) {
      if (jwk.kty !== "OKP" || jwk.crv !== "Ed25519" || jwk.d !== undefined) {
        k = Promise.reject(new Error("pinned key is not an Ed25519 public key"));
      } else {
        k = importJWK({ kty: jwk.kty, crv: jwk.crv, x: jwk.x }, "EdDSA");
      }
      k.catch(() => undefined);
      this.signingKeys.set(kid, k);
    }
    return k;
  }

  private async openSecrets(jwe: string): Promise<JobSecrets> {
    try {
      this.encryptionKey ??= importJWK(this.keys.encryptionPrivateJwk, "ECDH-ES+A256KW");
      const { plaintext } = await compactDecrypt(jwe, await this.encryptionKey, {
        keyManagementAlgorithms: ["ECDH-ES+A256KW"],
        contentEncryptionAlgorithms: ["A256GCM"],
      });
      return JobSecrets.parse(JSON.parse(new TextDecoder().decode(plaintext)));
    } catch {
      throw new JobRejection(JobRejectCode.Malformed, "job secrets cannot be opened with this runner's key");
    }
  }
}

function parseClaims(payload: Record<string, unknown>): JobClaims {
  const r = JobClaims.safeParse(payload);
  if (r.success) return r.data;
  const job = payload.job as { type?: unknown } | undefined;
  if (
    job &&
    typeof job === "object" &&
    typeof job.type === "string" &&
    !(JOB_TYPES as readonly string[]).includes(job.type)
  ) {
    throw new JobRejection(
      JobRejectCode.UnsupportedJob,
      `job type ${JSON.stringify(job.type)} is not supported`,
    );
  }
  const first = r.error.issues[0];
  const where = first ? first.path.join(".") : "";
  const detail = first ? `${where || "(root)"}: ${first.message}` : "invalid claims";
  throw new JobRejection(
    where.startsWith("job.") ? JobRejectCode.InvalidParams : JobRejectCode.Malformed,
    detail,
  );
}
