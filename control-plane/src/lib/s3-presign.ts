/**
 * SigV4 query-string presigning (AWS "Authenticating Requests: Using Query Parameters") with WebCrypto,
 * so the Worker hands out a short-lived GET URL and the bytes go straight from storage to the user.
 */
import { amzDate as formatAmzDate, canonicalQuery, credentialScope, uriEncode } from "../../../shared/sigv4";

export interface PresignInput {
  /** e.g. `https://s3.eu-west-1.amazonaws.com` or `http://127.0.0.1:4569`; no trailing slash needed. */
  endpoint: string;
  bucket: string;
  key: string;
  region: string;
  pathStyle: boolean;
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
  expiresSeconds: number;
  now?: Date;
}

const enc = new TextEncoder();

const hex = (b: ArrayBuffer) => [...new Uint8Array(b)].map((x) => x.toString(16).padStart(2, "0")).join("");

async function hmac(key: ArrayBuffer | Uint8Array, data: string): Promise<ArrayBuffer> {
  const k = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return crypto.subtle.sign("HMAC", k, enc.encode(data));
}

export async function presignGetUrl(i: PresignInput): Promise<string> {
  if (i.expiresSeconds < 1 || i.expiresSeconds > 604800) throw new Error("expiry must be 1 s to 7 days");
  const base = new URL(i.endpoint);
  const host = i.pathStyle ? base.host : `${i.bucket}.${base.host}`;
  const basePath = base.pathname.replace(/\/+$/, "");
  const path = `${basePath}${i.pathStyle ? `/${uriEncode(i.bucket)}` : ""}/${uriEncode(i.key, true)}`;
  const now = i.now ?? new Date();
  const amzDate = formatAmzDate(now);
  const day = amzDate.slice(0, 8);
  const scope = credentialScope(amzDate, i.region);
  const params: [string, string][] = [
    ["X-Amz-Algorithm", "AWS4-HMAC-SHA256"],
    ["X-Amz-Credential", `${i.accessKeyId}/${scope}`],
    ["X-Amz-Date", amzDate],
    ["X-Amz-Expires", String(i.expiresSeconds)],
    ["X-Amz-SignedHeaders", "host"],
  ];
  if (i.sessionToken) params.push(["X-Amz-Security-Token", i.sessionToken]);
  const query = canonicalQuery(params);
  const canonical = ["GET", path, query, `host:${host}\n`, "host", "UNSIGNED-PAYLOAD"].join("\n");
  const toSign = [
    "AWS4-HMAC-SHA256",
    amzDate,
    scope,
    hex(await crypto.subtle.digest("SHA-256", enc.encode(canonical))),
  ].join("\n");
  let key: ArrayBuffer = await hmac(enc.encode(`AWS4${i.secretAccessKey}`), day);
  for (const part of [i.region, "s3", "aws4_request"]) key = await hmac(key, part);
  const signature = hex(await hmac(key, toSign));
  return `${base.protocol}//${host}${path}?${query}&X-Amz-Signature=${signature}`;
}
