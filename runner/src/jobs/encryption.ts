import { JobRejectCode } from "../../../shared/errors";
import type { JobEncryption, JobSecrets } from "../../../shared/protocol/job-claims";
import type { DecryptionKey, EncryptionSpec } from "../archive/types";
import { JobRejection } from "../daemon/job-verifier";

/** Joins the job's encryption mode (signed claims) with its key material (JWE secrets). */
export function encryptionSpec(enc: JobEncryption, secrets: JobSecrets): EncryptionSpec {
  switch (enc.mode) {
    case "none":
      return { mode: "none" };
    case "password":
      if (!secrets.password)
        throw new JobRejection(
          JobRejectCode.InvalidParams,
          "password mode but no password in the job secrets",
        );
      return { mode: "password", password: secrets.password };
    case "panel":
      return { mode: "panel", dataKey: dataKey(secrets), keyId: enc.keyId, wrappedKey: enc.wrappedKey };
  }
}

export function decryptionKey(enc: JobEncryption, secrets: JobSecrets): DecryptionKey {
  const spec = encryptionSpec(enc, secrets);
  return spec.mode === "panel" ? { mode: "panel", dataKey: spec.dataKey } : spec;
}

function dataKey(secrets: JobSecrets): Uint8Array {
  if (!secrets.dataKey)
    throw new JobRejection(JobRejectCode.InvalidParams, "panel mode but no data key in the job secrets");
  const key = Buffer.from(secrets.dataKey, "base64");
  if (key.length !== 32 || key.toString("base64").replace(/=+$/, "") !== secrets.dataKey.replace(/=+$/, "")) {
    throw new JobRejection(JobRejectCode.InvalidParams, "data key is not 32 bytes of base64");
  }
  return new Uint8Array(key);
}
