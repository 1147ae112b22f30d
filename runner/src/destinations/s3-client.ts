/**
 * The S3 REST calls the runner makes (about ten), signed with AWS Signature Version 4 in the
 * Authorization header and sent over node:http(s) with keep-alive. We do not use the AWS SDK here:
 * loading it alone cost 22 MiB of RSS, a tenth of the memory a whole backup may use.
 * Bodies that are archive bytes carry a Content-MD5 the server checks and are signed as
 * UNSIGNED-PAYLOAD, so no byte is hashed twice; small XML bodies are signed with their SHA-256.
 */
import { createHash, createHmac } from "node:crypto";
import http from "node:http";
import https from "node:https";
import type { Readable } from "node:stream";
import { amzDate, canonicalQuery, credentialScope, uriEncode } from "../../../shared/sigv4";
import { withRetry, type RetryPolicy } from "./retry";

export interface S3Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface S3ClientConfig {
  bucket: string;
  region: string;
  /** Defaults to AWS: `https://s3.<region>.amazonaws.com`. */
  endpoint?: string;
  pathStyle: boolean;
  credentials: S3Credentials;
  retry: RetryPolicy;
  /** Connections kept per host: the parts in flight plus a couple for control calls. */
  maxSockets: number;
  /** A request whose socket is silent this long fails (and is retried): a stalled server never hangs a job. */
  idleTimeoutMs?: number;
}

export interface S3Request {
  method: "GET" | "HEAD" | "PUT" | "POST" | "DELETE";
  /** Object key; omitted for calls on the bucket itself (list). */
  key?: string;
  query?: Record<string, string | undefined>;
  headers?: Record<string, string | undefined>;
  body?: Buffer;
  /** Sign the body's SHA-256 (small XML bodies) instead of UNSIGNED-PAYLOAD. */
  signBody?: boolean;
  signal?: AbortSignal;
  /** Hand back a 2xx response's body as a stream instead of reading it (GetObject). */
  stream?: boolean;
}

export interface S3Response {
  status: number;
  headers: http.IncomingHttpHeaders;
  /** The body, read whole (XML answers); empty when streamed. */
  text: string;
  stream?: Readable;
}

/** An answer from the server that is an error: S3's error code (or one derived from the status). */
export class S3ResponseError extends Error {
  override readonly name = "S3ResponseError";
  constructor(
    readonly code: string,
    /** HTTP status; retry policy and error mapping read it. */
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

const EMPTY_SHA256 = createHash("sha256").update("").digest("hex");
/** Error and listing answers are small; a server sending more is not one we should buffer. */
const MAX_TEXT_BODY = 16 * 1024 * 1024;
const STATUS_CODES: Record<number, string> = {
  301: "PermanentRedirect",
  400: "BadRequest",
  403: "Forbidden",
  404: "NotFound",
  412: "PreconditionFailed",
};

const XML_ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

function decodeXml(s: string): string {
  return s.replace(/&(#x[0-9a-fA-F]+|#\d+|amp|lt|gt|quot|apos);/g, (_, e: string) =>
    e.startsWith("#x")
      ? String.fromCodePoint(parseInt(e.slice(2), 16))
      : e.startsWith("#")
        ? String.fromCodePoint(Number(e.slice(1)))
        : XML_ENTITIES[e]!,
  );
}

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&${Object.keys(XML_ENTITIES).find((k) => XML_ENTITIES[k] === c)};`);
}

/** The text of the first `<tag>` element (S3's answers are flat enough for this), decoded. */
export function xmlText(xml: string, tag: string): string | undefined {
  const m = new RegExp(`<${tag}(?:\\s[^>]*)?>([\\s\\S]*?)</${tag}>`).exec(xml);
  return m ? decodeXml(m[1]!) : undefined;
}

/** The inner XML of every `<tag>` element, in order (Contents of a listing, Part of ListParts). */
export function xmlBlocks(xml: string, tag: string): string[] {
  return [...xml.matchAll(new RegExp(`<${tag}(?:\\s[^>]*)?>([\\s\\S]*?)</${tag}>`, "g"))].map((m) => m[1]!);
}

const hmac = (key: Buffer | string, data: string) => createHmac("sha256", key).update(data).digest();

/** HMAC(HMAC(HMAC(HMAC("AWS4" + secret, day), region), "s3"), "aws4_request") */
export function signingKey(secretAccessKey: string, day: string, region: string): Buffer {
  let k = hmac(`AWS4${secretAccessKey}`, day);
  for (const part of [region, "s3", "aws4_request"]) k = hmac(k, part);
  return k;
}

/**
 * The Authorization header of AWS "Signature Version 4: Authorization header": every header given
 * is signed (names lower-case, values trimmed), `path` and `query` already canonical.
 */
export function authorization(i: {
  method: string;
  path: string;
  query: string;
  headers: Record<string, string>;
  payloadHash: string;
  date: string;
  region: string;
  accessKeyId: string;
  signingKey: Buffer;
}): string {
  const names = Object.keys(i.headers).sort();
  const canonical = [
    i.method,
    i.path,
    i.query,
    names.map((n) => `${n}:${i.headers[n]}\n`).join(""),
    names.join(";"),
    i.payloadHash,
  ].join("\n");
  const scope = credentialScope(i.date, i.region);
  const toSign = ["AWS4-HMAC-SHA256", i.date, scope, createHash("sha256").update(canonical).digest("hex")];
  const signature = createHmac("sha256", i.signingKey).update(toSign.join("\n")).digest("hex");
  return (
    `AWS4-HMAC-SHA256 Credential=${i.accessKeyId}/${scope}, ` +
    `SignedHeaders=${names.join(";")}, Signature=${signature}`
  );
}

export class S3Client {
  private readonly base: URL;
  private readonly agent: http.Agent;
  /**
   * Virtual-hosted style puts the bucket in the host name; a bucket with dots there breaks TLS
   * (the wildcard certificate covers one label), so such buckets go path-style over https.
   */
  private readonly pathStyle: boolean;
  /** The signing key changes with the day only. */
  private dayKey?: { day: string; key: Buffer };

  constructor(private readonly config: S3ClientConfig) {
    this.base = new URL(config.endpoint ?? `https://s3.${config.region}.amazonaws.com`);
    this.pathStyle = config.pathStyle || (this.base.protocol === "https:" && config.bucket.includes("."));
    const agentOpts = { keepAlive: true, maxSockets: config.maxSockets };
    this.agent = this.base.protocol === "https:" ? new https.Agent(agentOpts) : new http.Agent(agentOpts);
  }

  /** One call, retried with backoff on resets, timeouts, 5xx and 429 (every call we make is idempotent). */
  send(req: S3Request): Promise<S3Response> {
    return withRetry(this.config.retry, () => this.once(req), { signal: req.signal });
  }

  close(): void {
    this.agent.destroy();
  }

  /** Where a request for `key` goes (tests and error messages; no credentials in it). */
  urlOf(key?: string): string {
    const { host, path } = this.target(key);
    return `${this.base.protocol}//${host}${path}`;
  }

  private target(key: string | undefined): { host: string; path: string } {
    const basePath = this.base.pathname.replace(/\/+$/, "");
    const { bucket } = this.config;
    const pathStyle = this.pathStyle;
    const host = pathStyle ? this.base.host : `${bucket}.${this.base.host}`;
    const bucketPath = pathStyle ? `/${uriEncode(bucket)}` : "";
    const keyPath = key === undefined ? (pathStyle ? "" : "/") : `/${uriEncode(key, true)}`;
    return { host, path: `${basePath}${bucketPath}${keyPath}` };
  }

  private key(day: string): Buffer {
    if (this.dayKey?.day !== day)
      this.dayKey = {
        day,
        key: signingKey(this.config.credentials.secretAccessKey, day, this.config.region),
      };
    return this.dayKey.key;
  }

  private sign(req: S3Request, host: string, path: string, query: string): Record<string, string> {
    const date = amzDate(new Date());
    const payloadHash =
      req.body && req.body.length > 0
        ? req.signBody
          ? createHash("sha256").update(req.body).digest("hex")
          : "UNSIGNED-PAYLOAD"
        : EMPTY_SHA256;
    const headers: Record<string, string> = { host, "x-amz-date": date, "x-amz-content-sha256": payloadHash };
    if (this.config.credentials.sessionToken)
      headers["x-amz-security-token"] = this.config.credentials.sessionToken;
    for (const [k, v] of Object.entries(req.headers ?? {}))
      if (v !== undefined) headers[k.toLowerCase()] = v.trim();
    headers.authorization = authorization({
      method: req.method,
      path,
      query,
      headers,
      payloadHash,
      date,
      region: this.config.region,
      accessKeyId: this.config.credentials.accessKeyId,
      signingKey: this.key(date.slice(0, 8)),
    });
    return headers;
  }

  private once(req: S3Request): Promise<S3Response> {
    const { host, path } = this.target(req.key);
    const query = canonicalQuery(
      Object.entries(req.query ?? {}).filter((e): e is [string, string] => e[1] !== undefined),
    );
    const headers: Record<string, string | number> = this.sign(req, host, path, query);
    if (req.body || req.method === "PUT" || req.method === "POST")
      headers["content-length"] = req.body?.length ?? 0;
    const transport = this.base.protocol === "https:" ? https : http;
    return new Promise<S3Response>((resolve, reject) => {
      const r = transport.request(
        {
          protocol: this.base.protocol,
          hostname: this.pathStyle ? this.base.hostname : `${this.config.bucket}.${this.base.hostname}`,
          port: this.base.port || undefined,
          method: req.method,
          path: query ? `${path}?${query}` : path,
          headers,
          agent: this.agent,
          signal: req.signal,
          timeout: this.config.idleTimeoutMs ?? 120_000,
        },
        (res) => {
          const status = res.statusCode ?? 0;
          if (req.stream && status >= 200 && status < 300) {
            resolve({ status, headers: res.headers, text: "", stream: res });
            return;
          }
          const chunks: Buffer[] = [];
          let size = 0;
          res.on("data", (c: Buffer) => {
            size += c.length;
            if (size > MAX_TEXT_BODY) {
              res.destroy(new S3ResponseError("ResponseTooLarge", 502, "answer larger than 16 MiB"));
              return;
            }
            chunks.push(c);
          });
          res.on("error", reject);
          res.on("end", () => {
            const text = Buffer.concat(chunks).toString("utf8");
            const err = responseError(req.method, status, text);
            if (err) reject(err);
            else resolve({ status, headers: res.headers, text });
          });
        },
      );
      r.on("timeout", () => r.destroy(Object.assign(new Error("request timed out"), { code: "ETIMEDOUT" })));
      r.on("error", reject);
      r.end(req.body && req.body.length > 0 ? req.body : undefined);
    });
  }
}

/**
 * The error in an answer, if any. CompleteMultipartUpload may answer 200 and still fail, with an
 * <Error> body (AWS says so); an InternalError there is worth retrying, like a 500.
 */
function responseError(method: string, status: number, text: string): S3ResponseError | undefined {
  const isError = status >= 300 || /^\s*(<\?xml[^>]*\?>\s*)?<Error>/.test(text);
  if (!isError) return undefined;
  const code = xmlText(text, "Code") ?? STATUS_CODES[status] ?? `HTTP${status}`;
  const message = xmlText(text, "Message") ?? (method === "HEAD" ? "no details (HEAD)" : "no details");
  const effective =
    status < 300 ? (/InternalError|SlowDown|ServiceUnavailable/.test(code) ? 503 : 400) : status;
  return new S3ResponseError(code, effective, message);
}
