/** Starts s3rver (see s3rver-main.mjs) in a child process on a free loopback port. */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";
import { ListMultipartUploadsCommand, ListPartsCommand, S3Client } from "@aws-sdk/client-s3";
import type { S3Spec } from "../../runner/src/destinations/url";

export interface TestS3Server {
  endpoint: string;
  port: number;
  /** The s3rver process, so a benchmark can read its CPU time. */
  pid: number;
  setTamperHeadLength(on: boolean): Promise<void>;
  /** HEAD reports multipart objects' ETags as AWS does (md5 of part MD5s -N), or a wrong one; undefined = s3rver's plain MD5. */
  setMultipartEtag(mode: "aws" | "aws-wrong" | undefined): Promise<void>;
  /** Hold (never answer) or fail (500) UploadPart requests numbered above these; undefined clears. */
  setPartFaults(f: { holdAbove?: number; failAbove?: number }): Promise<void>;
  /** UploadPart requests passed to s3rver, and their bytes. `held` = requests being held now. */
  partStats(): Promise<{ partRequests: number; partBytes: number; held: number }>;
  close(): Promise<void>;
}

export const S3RVER_CREDENTIALS = { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" };

export async function startS3Server(buckets: string[]): Promise<TestS3Server> {
  const main = fileURLToPath(new URL("./s3rver-main.mjs", import.meta.url));
  // stdin is a pipe: when this process dies, the child sees EOF and cleans up after itself.
  const child = spawn(process.execPath, [main, buckets.join(",")], { stdio: ["pipe", "pipe", "inherit"] });
  const lines = createInterface({ input: child.stdout });
  const [first] = (await Promise.race([
    once(lines, "line"),
    once(child, "exit").then(([code]) => {
      throw new Error(`s3rver exited with ${String(code)}`);
    }),
  ])) as [string];
  const port = (JSON.parse(first) as { port: number }).port;
  const endpoint = `http://127.0.0.1:${port}`;
  return {
    endpoint,
    port,
    pid: child.pid as number,
    async setTamperHeadLength(on) {
      const r = await fetch(`${endpoint}/__cairn/tamper-head-length?on=${on ? 1 : 0}`, { method: "POST" });
      if (r.status !== 204) throw new Error(`s3rver control failed: ${r.status}`);
    },
    async setMultipartEtag(mode) {
      const r = await fetch(`${endpoint}/__cairn/multipart-etag?mode=${mode ?? ""}`, { method: "POST" });
      if (r.status !== 204) throw new Error(`s3rver control failed: ${r.status}`);
    },
    async setPartFaults(f) {
      const q = new URLSearchParams();
      if (f.holdAbove !== undefined) q.set("holdAbove", String(f.holdAbove));
      if (f.failAbove !== undefined) q.set("failAbove", String(f.failAbove));
      const r = await fetch(`${endpoint}/__cairn/parts?${q.toString()}`, { method: "POST" });
      if (r.status !== 204) throw new Error(`s3rver control failed: ${r.status}`);
    },
    async partStats() {
      const r = await fetch(`${endpoint}/__cairn/stats`);
      if (r.status !== 200) throw new Error(`s3rver stats failed: ${r.status}`);
      return (await r.json()) as { partRequests: number; partBytes: number; held: number };
    },
    async close() {
      if (child.exitCode !== null) return;
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/**
 * Reads what the server holds through the AWS SDK, a client independent of the one under test
 * (which has no ListMultipartUploads: the runner never needs it).
 */
function sdkFor(spec: S3Spec): S3Client {
  // Its notice about a future Node policy is not a test failure.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  return new S3Client({
    endpoint: spec.endpoint,
    region: spec.region,
    forcePathStyle: true,
    credentials: spec.credentials,
  });
}

/** The multipart uploads in progress in the destination's bucket. */
export async function openUploads(spec: S3Spec): Promise<{ key: string; uploadId: string }[]> {
  const sdk = sdkFor(spec);
  try {
    const out = await sdk.send(new ListMultipartUploadsCommand({ Bucket: spec.bucket }));
    return (out.Uploads ?? []).map((u) => ({ key: u.Key!, uploadId: u.UploadId! }));
  } finally {
    sdk.destroy();
  }
}

/** The sizes of the parts the server stored for an upload. */
export async function partSizes(spec: S3Spec, key: string, uploadId: string): Promise<number[]> {
  const sdk = sdkFor(spec);
  try {
    const out = await sdk.send(new ListPartsCommand({ Bucket: spec.bucket, Key: key, UploadId: uploadId }));
    return (out.Parts ?? []).map((p) => Number(p.Size));
  } finally {
    sdk.destroy();
  }
}
