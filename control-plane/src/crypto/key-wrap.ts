import { base64url } from "jose";
import { base64ToBytes } from "./random";

/**
 * Key wrapping with AES-256-GCM: output is base64url(iv(12) || ciphertext+tag).
 * Used for panel keys under MASTER_KEY and for per-backup data keys under the tenant's panel key.
 * `aad` binds the wrapped key to what it belongs to (tenant / backup id), so a wrapped key copied
 * to another row does not unwrap.
 */
async function importAesKey(raw: Uint8Array): Promise<CryptoKey> {
  if (raw.byteLength !== 32) throw new Error("wrapping key must be 32 bytes");
  return crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]);
}

export async function wrapKey(kek: Uint8Array, key: Uint8Array, aad: string): Promise<string> {
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const ct = await crypto.subtle.encrypt(
    { name: "AES-GCM", iv, additionalData: new TextEncoder().encode(aad) },
    await importAesKey(kek),
    key,
  );
  const out = new Uint8Array(12 + ct.byteLength);
  out.set(iv, 0);
  out.set(new Uint8Array(ct), 12);
  return base64url.encode(out);
}

export async function unwrapKey(kek: Uint8Array, wrapped: string, aad: string): Promise<Uint8Array> {
  const bytes = base64url.decode(wrapped);
  const pt = await crypto.subtle.decrypt(
    { name: "AES-GCM", iv: bytes.slice(0, 12), additionalData: new TextEncoder().encode(aad) },
    await importAesKey(kek),
    bytes.slice(12),
  );
  return new Uint8Array(pt);
}

export function masterKeyBytes(masterKeyB64: string): Uint8Array {
  const raw = base64ToBytes(masterKeyB64.trim());
  if (raw.byteLength !== 32) throw new Error("MASTER_KEY must be base64 of 32 bytes");
  return raw;
}
