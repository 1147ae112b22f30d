import { createHash, timingSafeEqual } from "node:crypto";
import { readFile } from "node:fs/promises";
import { Client } from "ssh2";
import type { ArchiveEntry } from "../archive/types";
import type { RouterConfig } from "../inventory/config";
import { HostingError } from "./errors";
import { routerPath } from "./layout";

const MAX_EXPORT = 64 * 1024 * 1024;

/** OpenSSH-style fingerprint: base64 SHA-256 of the key blob, no padding. */
export function hostKeyFingerprint(key: Buffer): string {
  return createHash("sha256").update(key).digest("base64").replace(/=+$/, "");
}

function fingerprintMatches(key: Buffer, expected: string): boolean {
  const a = Buffer.from(hostKeyFingerprint(key));
  const b = Buffer.from(expected.replace(/^SHA256:/, "").replace(/=+$/, ""));
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Runs the RouterOS export command over SSH; the router's host key must match before any credential is sent. */
export async function exportRouter(r: RouterConfig): Promise<Buffer> {
  const password = r.passwordFile ? (await readFile(r.passwordFile, "utf8")).split(/\r?\n/)[0] : undefined;
  const privateKey = r.privateKeyFile ? await readFile(r.privateKeyFile) : undefined;
  return new Promise<Buffer>((resolve, reject) => {
    const conn = new Client();
    let keyMismatch = false;
    let settled = false;
    const finish = (err: Error | null, out?: Buffer) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      conn.end();
      if (err) reject(err);
      else resolve(out!);
    };
    const timer = setTimeout(
      () => finish(new HostingError("ROUTER_FAILED", `router ${r.name}: timed out after ${r.timeoutMs} ms`)),
      r.timeoutMs,
    );
    conn.on("ready", () => {
      conn.exec(r.command, (err, stream) => {
        if (err)
          return finish(new HostingError("ROUTER_FAILED", `router ${r.name}: exec failed: ${err.message}`));
        const chunks: Buffer[] = [];
        let size = 0;
        let exitCode: number | null = null;
        stream.on("data", (d: Buffer) => {
          size += d.length;
          if (size > MAX_EXPORT)
            return finish(
              new HostingError("ROUTER_FAILED", `router ${r.name}: export larger than ${MAX_EXPORT} bytes`),
            );
          chunks.push(d);
        });
        stream.stderr.on("data", () => {});
        stream.on("exit", (code: number | null) => (exitCode = code));
        stream.on("close", () => {
          if (exitCode !== null && exitCode !== 0)
            return finish(
              new HostingError("ROUTER_FAILED", `router ${r.name}: ${r.command} exited ${exitCode}`),
            );
          const out = Buffer.concat(chunks);
          if (out.length === 0)
            return finish(
              new HostingError("ROUTER_FAILED", `router ${r.name}: ${r.command} returned nothing`),
            );
          finish(null, out);
        });
      });
    });
    conn.on("error", (e: Error) => {
      if (keyMismatch)
        return finish(
          new HostingError(
            "HOST_KEY_MISMATCH",
            `router ${r.name}: host key does not match the configured fingerprint`,
          ),
        );
      const auth = /authentication/i.test(e.message);
      finish(
        new HostingError("ROUTER_FAILED", `router ${r.name}: ${auth ? "authentication failed" : e.message}`),
      );
    });
    conn.connect({
      host: r.host,
      port: r.port,
      username: r.user,
      password,
      privateKey,
      readyTimeout: r.timeoutMs,
      hostVerifier: (key: Buffer) => {
        const ok = fingerprintMatches(key, r.hostKeySha256);
        if (!ok) keyMismatch = true;
        return ok;
      },
    });
  });
}

export async function* routerEntries(r: RouterConfig): AsyncGenerator<ArchiveEntry> {
  const data = await exportRouter(r);
  yield {
    name: routerPath(r.name),
    type: "file",
    size: data.length,
    mode: 0o600,
    uid: process.getuid?.() ?? 0,
    gid: process.getgid?.() ?? 0,
    mtime: new Date(),
    component: "router",
    body: { kind: "buffer", data },
  };
}
