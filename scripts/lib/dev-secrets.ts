/**
 * Secrets for a local control plane. In production these are Worker secrets
 * (`wrangler secret put`); locally they live in `.dev.vars`, generated once.
 */
import { randomBytes } from "node:crypto";
import { existsSync, readFileSync, writeFileSync, chmodSync } from "node:fs";
import { calculateJwkThumbprint, exportJWK, generateKeyPair } from "jose";

export interface DevSecrets {
  JOB_SIGNING_KEYS: string;
  MASTER_KEY: string;
  SETUP_TOKEN: string;
}

export async function generateDevSecrets(): Promise<DevSecrets> {
  const { privateKey } = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
  const jwk = await exportJWK(privateKey);
  const kid = (await calculateJwkThumbprint(jwk)).slice(0, 16);
  return {
    JOB_SIGNING_KEYS: JSON.stringify([{ ...jwk, kid, alg: "EdDSA", use: "sig" }]),
    MASTER_KEY: randomBytes(32).toString("base64"),
    SETUP_TOKEN: randomBytes(24).toString("base64url"),
  };
}

function parseDevVars(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split(/\r?\n/)) {
    const m = /^\s*([A-Z0-9_]+)\s*=\s*(.*)\s*$/.exec(line);
    if (!m) continue;
    let v = m[2]!;
    if (v.startsWith("'") && v.endsWith("'")) v = v.slice(1, -1);
    out[m[1]!] = v;
  }
  return out;
}

/** Reads `.dev.vars`, adding any missing secret (existing values are never replaced). */
export async function ensureDevVars(path: string): Promise<DevSecrets> {
  const existing = existsSync(path) ? parseDevVars(readFileSync(path, "utf8")) : {};
  const fresh = await generateDevSecrets();
  const merged = { ...fresh, ...existing } as DevSecrets & Record<string, string>;
  const missing = (Object.keys(fresh) as (keyof DevSecrets)[]).filter((k) => !existing[k]);
  if (missing.length > 0) {
    const body = Object.entries(merged)
      .map(([k, v]) => `${k}='${v}'`)
      .join("\n");
    writeFileSync(path, body + "\n", { mode: 0o600 });
    chmodSync(path, 0o600);
  }
  return merged;
}
