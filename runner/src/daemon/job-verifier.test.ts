import { createHmac } from "node:crypto";
import { SignJWT } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import type { JWK } from "jose";
import { JobRejection, JobVerifier } from "./job-verifier";
import type { LookupResult } from "./journal";
import {
  backupParams,
  encryptSecrets,
  makeRunnerConfig,
  makeSigningKey,
  signJob,
  type SigningKey,
} from "./test-fixtures";

const b64 = (v: unknown) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");
const fresh = (): LookupResult => ({ kind: "new" });

let cp: SigningKey;
let other: SigningKey;
let verifier: JobVerifier;
let encPub: JWK;

beforeAll(async () => {
  cp = await makeSigningKey("cp-1");
  other = await makeSigningKey("cp-1"); // same kid, different key: a forgery
  const r = await makeRunnerConfig(cp);
  encPub = r.encryptionPublicJwk;
  verifier = new JobVerifier({
    runnerId: r.config.runnerId,
    tenantId: r.config.tenantId,
    jwks: r.config.jwks as { keys: JWK[] },
    encryptionPrivateJwk: r.config.keys.encryption.privateJwk as JWK,
  });
});

async function rejection(
  token: string,
  lookup: (id: string, fp: string) => LookupResult = fresh,
): Promise<string> {
  try {
    await verifier.verify(token, { lookup });
  } catch (err) {
    expect(err).toBeInstanceOf(JobRejection);
    return (err as JobRejection).code;
  }
  throw new Error("token was accepted");
}

function payload(jti = "job_x") {
  const now = Math.floor(Date.now() / 1000);
  return {
    iss: "cairn-control-plane",
    aud: "run_test1",
    sub: "ten_test1",
    jti,
    iat: now,
    exp: now + 300,
    job: { type: "backup", params: backupParams() },
  };
}

describe("job verifier", () => {
  it("accepts a valid job and opens its secrets", async () => {
    const secrets = await encryptSecrets(encPub, { password: "correct horse" });
    const v = await verifier.verify(await signJob(cp, { jti: "job_ok", secrets }), { lookup: fresh });
    expect(v.kind).toBe("new");
    if (v.kind !== "new") return;
    expect(v.claims.jti).toBe("job_ok");
    expect(v.secrets.password).toBe("correct horse");
    expect(v.fingerprint).toMatch(/^[0-9a-f]{64}$/);
  });

  it("rejects a token signed by another key under a pinned kid", async () => {
    expect(await rejection(await signJob(cp, { jti: "job_f", key: other }))).toBe("BAD_SIGNATURE");
  });

  it("rejects a tampered payload", async () => {
    const [h, , s] = (await signJob(cp, { jti: "job_t" })).split(".");
    expect(
      await rejection(
        `${h}.${b64({ ...payload("job_t"), aud: "run_test1", job: { type: "backup", params: backupParams({ sources: ["/etc"] }) } })}.${s}`,
      ),
    ).toBe("BAD_SIGNATURE");
  });

  it("rejects alg none", async () => {
    expect(
      await rejection(`${b64({ alg: "none", typ: "cairn-job+jwt", kid: "cp-1" })}.${b64(payload())}.`),
    ).toBe("BAD_ALGORITHM");
  });

  it("rejects HS256 keyed with the public key (raw bytes and JWK JSON)", async () => {
    const x = Buffer.from(cp.publicJwk.x!, "base64url");
    for (const secret of [x, Buffer.from(JSON.stringify(cp.publicJwk)), Buffer.from(cp.publicJwk.x!)]) {
      const token = await new SignJWT(payload())
        .setProtectedHeader({ alg: "HS256", typ: "cairn-job+jwt", kid: "cp-1" })
        .sign(new Uint8Array(secret));
      expect(await rejection(token)).toBe("BAD_ALGORITHM");
    }
    // and a hand-made one, in case a library refused short secrets
    const signingInput = `${b64({ alg: "HS256", typ: "cairn-job+jwt", kid: "cp-1" })}.${b64(payload())}`;
    const mac = createHmac("sha256", x).update(signingInput).digest("base64url");
    expect(await rejection(`${signingInput}.${mac}`)).toBe("BAD_ALGORITHM");
  });

  it("rejects RS256 and ES256 headers before touching a key", async () => {
    for (const alg of ["RS256", "ES256", "EdDSA ", "eddsa"]) {
      expect(
        await rejection(`${b64({ alg, typ: "cairn-job+jwt", kid: "cp-1" })}.${b64(payload())}.AAAA`),
      ).toBe("BAD_ALGORITHM");
    }
  });

  it("rejects an unknown kid", async () => {
    const k = await makeSigningKey("cp-9");
    expect(await rejection(await signJob(k, { jti: "job_k" }))).toBe("UNKNOWN_KID");
    expect(await rejection(await signJob(cp, { jti: "job_k", header: { kid: undefined } }))).toBe(
      "UNKNOWN_KID",
    );
  });

  it("rejects the wrong typ, including a runner connect token", async () => {
    expect(await rejection(await signJob(cp, { jti: "job_y", header: { typ: "JWT" } }))).toBe("WRONG_TYPE");
    expect(await rejection(await signJob(cp, { jti: "job_y", header: { typ: "cairn-runner+jwt" } }))).toBe(
      "WRONG_TYPE",
    );
    expect(await rejection(await signJob(cp, { jti: "job_y", header: { typ: undefined } }))).toBe(
      "WRONG_TYPE",
    );
  });

  it("rejects the wrong issuer, another runner's or tenant's job", async () => {
    expect(await rejection(await signJob(cp, { jti: "job_i", iss: "someone" }))).toBe("WRONG_ISSUER");
    expect(await rejection(await signJob(cp, { jti: "job_a", runnerId: "run_other" }))).toBe(
      "WRONG_AUDIENCE",
    );
    expect(await rejection(await signJob(cp, { jti: "job_b", tenantId: "ten_other" }))).toBe(
      "WRONG_AUDIENCE",
    );
  });

  it("rejects expired and not-yet-valid tokens, with 60 s tolerance", async () => {
    const now = Math.floor(Date.now() / 1000);
    expect(await rejection(await signJob(cp, { jti: "job_e", iat: now - 400, exp: now - 61 }))).toBe(
      "EXPIRED",
    );
    expect(await rejection(await signJob(cp, { jti: "job_n", iat: now + 120 }))).toBe("NOT_YET_VALID");
    const within = await verifier.verify(await signJob(cp, { jti: "job_w", iat: now - 330, exp: now - 30 }), {
      lookup: fresh,
    });
    expect(within.kind).toBe("new");
  });

  it("rejects unknown job types and bad params", async () => {
    expect(await rejection(await signJob(cp, { jti: "job_u", job: { type: "rm-rf", params: {} } }))).toBe(
      "UNSUPPORTED_JOB",
    );
    expect(
      await rejection(
        await signJob(cp, {
          jti: "job_p",
          job: { type: "backup", params: { ...backupParams(), compressionLevel: 99 } },
        }),
      ),
    ).toBe("INVALID_PARAMS");
    expect(await rejection(await signJob(cp, { jti: "bad id!" }))).toBe("MALFORMED");
    expect(await rejection("not-a-token")).toBe("MALFORMED");
  });

  it("rejects a known jti with a different payload, and flags the same payload as redelivery", async () => {
    const first = await verifier.verify(await signJob(cp, { jti: "job_r" }), { lookup: fresh });
    const fp = first.fingerprint;
    const lookup = (_id: string, got: string): LookupResult =>
      got === fp ? { kind: "same", entry: {} as never } : { kind: "different", entry: {} as never };
    // re-signed later (new iat/exp): still the same job
    const again = await verifier.verify(
      await signJob(cp, { jti: "job_r", iat: Math.floor(Date.now() / 1000) + 5 }),
      { lookup },
    );
    expect(again.kind).toBe("redelivery");
    const changed = await signJob(cp, {
      jti: "job_r",
      job: { type: "backup", params: backupParams({ name: "other" }) },
    });
    expect(await rejection(changed, lookup)).toBe("REPLAYED");
  });

  it("rejects secrets encrypted to another runner", async () => {
    const stranger = await makeRunnerConfig(cp);
    const secrets = await encryptSecrets(stranger.encryptionPublicJwk, { password: "x" });
    expect(await rejection(await signJob(cp, { jti: "job_s", secrets }))).toBe("MALFORMED");
  });
});
