/** Starts s3rver (see s3rver-main.mjs) in a child process on a free loopback port. */
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

export interface TestS3Server {
  endpoint: string;
  port: number;
  setTamperHeadLength(on: boolean): Promise<void>;
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
    async setTamperHeadLength(on) {
      const r = await fetch(`${endpoint}/__cairn/tamper-head-length?on=${on ? 1 : 0}`, { method: "POST" });
      if (r.status !== 204) throw new Error(`s3rver control failed: ${r.status}`);
    },
    async close() {
      if (child.exitCode !== null) return;
      const exited = once(child, "exit");
      child.kill("SIGTERM");
      await exited;
    },
  };
}
