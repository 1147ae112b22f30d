import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Server, utils } from "ssh2";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseHostConfig, type RouterConfig } from "../../runner/src/inventory";
import { hostingEntries } from "../../runner/src/sources";
import { exportRouter, hostKeyFingerprint } from "../../runner/src/sources/router";

// What RouterOS prints for `/export` (header comment, then sections).
const EXPORT = `# 2026-01-01 00:00:00 by RouterOS 7.14\n# software id = ABCD-1234\n#\n/interface bridge\nadd name=bridge1\n/ip address\nadd address=192.0.2.1/24 interface=bridge1\n/system identity\nset name=edge1\n`;

let dir: string;
let server: Server;
let port: number;
let fingerprint: string;
const authAttempts: string[] = [];
const clientKey = utils.generateKeyPairSync("ed25519");

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "cairn-router-"));
  const hostKey = utils.generateKeyPairSync("ed25519");
  const parsed = utils.parseKey(hostKey.private);
  if (parsed instanceof Error) throw parsed;
  fingerprint = hostKeyFingerprint(parsed.getPublicSSH());
  const allowedPub = utils.parseKey(clientKey.public);
  if (allowedPub instanceof Error) throw allowedPub;
  writeFileSync(join(dir, "password"), "s3cret\n", { mode: 0o600 });
  writeFileSync(join(dir, "wrong"), "nope\n", { mode: 0o600 });
  writeFileSync(join(dir, "id"), clientKey.private, { mode: 0o600 });
  server = new Server({ hostKeys: [hostKey.private] }, (client) => {
    client.on("authentication", (ctx) => {
      authAttempts.push(ctx.method);
      if (ctx.username !== "admin") return ctx.reject();
      if (ctx.method === "password" && ctx.password === "s3cret") return ctx.accept();
      if (
        ctx.method === "publickey" &&
        ctx.key.algo === allowedPub.type &&
        ctx.key.data.equals(allowedPub.getPublicSSH())
      ) {
        if (!ctx.signature) return ctx.accept();
        if (ctx.blob && allowedPub.verify(ctx.blob, ctx.signature, ctx.hashAlgo) === true)
          return ctx.accept();
      }
      ctx.reject(["password", "publickey"]);
    });
    client.on("ready", () => {
      client.on("session", (accept) => {
        accept().on("exec", (acc, _rej, info) => {
          const ch = acc();
          if (info.command === "/export") {
            ch.write(EXPORT);
            ch.exit(0);
          } else {
            ch.stderr.write("bad command name\n");
            ch.exit(1);
          }
          ch.end();
        });
      });
    });
    client.on("error", () => {});
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  port = (server.address() as { port: number }).port;
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
  rmSync(dir, { recursive: true, force: true });
});

const router = (over: Partial<RouterConfig> = {}) =>
  parseHostConfig({
    routers: [
      {
        name: "edge1",
        host: "127.0.0.1",
        port,
        user: "admin",
        passwordFile: join(dir, "password"),
        hostKeySha256: fingerprint,
        timeoutMs: 10_000,
        ...over,
      },
    ],
  }).routers[0]!;

describe("MikroTik router export over SSH", () => {
  it("exports with a password", async () => {
    expect((await exportRouter(router())).toString()).toBe(EXPORT);
  });

  it("exports with a private key", async () => {
    const r = router({ passwordFile: undefined, privateKeyFile: join(dir, "id") });
    expect((await exportRouter(r)).toString()).toBe(EXPORT);
  });

  it("refuses a host whose key does not match, before sending credentials", async () => {
    const before = authAttempts.length;
    const other = hostKeyFingerprint(Buffer.from("not the key"));
    await expect(exportRouter(router({ hostKeySha256: `SHA256:${other}` }))).rejects.toMatchObject({
      code: "HOST_KEY_MISMATCH",
    });
    expect(authAttempts.length).toBe(before);
  });

  it("reports a failed command and wrong credentials as errors", async () => {
    await expect(exportRouter(router({ command: "/nonsense" }))).rejects.toMatchObject({
      code: "ROUTER_FAILED",
    });
    await expect(exportRouter(router({ passwordFile: join(dir, "wrong") }))).rejects.toThrow(
      /authentication failed/,
    );
  });

  it("is stored as component router, and a dead router makes the backup partial", async () => {
    const cfg = parseHostConfig({
      routers: [router(), { ...router(), name: "dead", port: 1, timeoutMs: 5000 }],
    });
    const { entries, report } = hostingEntries({
      inventory: { domains: [], servers: [], unmapped: [], routers: [], warnings: [] },
      config: cfg,
      selection: { domains: "all", components: ["router"] },
    });
    const got = [];
    for await (const e of entries) got.push(e);
    expect(got.map((e) => [e.name, e.component, e.size])).toEqual([
      ["router/edge1/export.rsc", "router", EXPORT.length],
    ]);
    expect(report.failures).toEqual([
      expect.objectContaining({ component: "router", item: "dead", code: "ROUTER_FAILED" }),
    ]);
  });
});
