import { base64url } from "jose";

/** Prefixed random ids (`bkp_…`): 128 random bits, URL-safe, within the protocol's Id pattern. */
export function newId(prefix: string): string {
  return `${prefix}_${base64url.encode(crypto.getRandomValues(new Uint8Array(16)))}`;
}
