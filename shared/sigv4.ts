/**
 * The string rules of AWS Signature Version 4 that the control plane (presigned URLs, WebCrypto) and
 * the runner (signed requests, node:crypto) share. Hashing stays with each side.
 */

const enc = new TextEncoder();

/** RFC 3986 encoding as SigV4 wants it: only A-Z a-z 0-9 - _ . ~ stay as they are. */
export function uriEncode(s: string, keepSlash = false): string {
  let out = "";
  for (const byte of enc.encode(s)) {
    const ch = String.fromCharCode(byte);
    if (/[A-Za-z0-9\-_.~]/.test(ch) || (keepSlash && ch === "/")) out += ch;
    else out += `%${byte.toString(16).toUpperCase().padStart(2, "0")}`;
  }
  return out;
}

/** Query parameters encoded and sorted by encoded name, as both the request and its signature use them. */
export function canonicalQuery(params: [string, string][]): string {
  return params
    .map(([k, v]) => [uriEncode(k), uriEncode(v)] as const)
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join("&");
}

/** `YYYYMMDDTHHMMSSZ` */
export function amzDate(now: Date): string {
  return now
    .toISOString()
    .replace(/[-:]/g, "")
    .replace(/\.\d{3}/, "");
}

export function credentialScope(date: string, region: string): string {
  return `${date.slice(0, 8)}/${region}/s3/aws4_request`;
}
