import { importJWK, type JWK } from "jose";

export interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

// Parsed once per isolate: the connect and dispatch paths must stay lean.
let cache: { source: string; keys: Promise<SigningKey[]> } | undefined;

async function parse(source: string): Promise<SigningKey[]> {
  const list = JSON.parse(source) as JWK[];
  if (!Array.isArray(list) || list.length === 0)
    throw new Error("JOB_SIGNING_KEYS must be a non-empty JSON array");
  return Promise.all(
    list.map(async (jwk) => {
      if (jwk.kty !== "OKP" || jwk.crv !== "Ed25519" || !jwk.d || !jwk.kid) {
        throw new Error("JOB_SIGNING_KEYS entries must be Ed25519 private JWKs with kid");
      }
      const privateKey = (await importJWK({ ...jwk, alg: "EdDSA" }, "EdDSA")) as CryptoKey;
      const publicJwk: JWK = { kty: "OKP", crv: "Ed25519", x: jwk.x, kid: jwk.kid, alg: "EdDSA", use: "sig" };
      return { kid: jwk.kid, privateKey, publicJwk };
    }),
  );
}

export function signingKeys(source: string): Promise<SigningKey[]> {
  if (cache?.source !== source) cache = { source, keys: parse(source) };
  return cache.keys;
}

/** The public JWKS: every configured key, so rotation can publish the next key before it signs. */
export async function publicJwks(source: string): Promise<{ keys: JWK[] }> {
  return { keys: (await signingKeys(source)).map((k) => k.publicJwk) };
}
