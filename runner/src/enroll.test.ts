import { createServer, type IncomingMessage, type Server } from "node:http";
import { mkdtemp, stat } from "node:fs/promises";
import type { AddressInfo } from "node:net";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { loadConfig } from "./config";
import { enrollRunner, EnrollError } from "./enroll";
import { makeSigningKey, type SigningKey } from "./daemon/test-fixtures";

let server: Server;
let url: string;
let cp: SigningKey;
let dir: string;
const requests: { path: string; body: Record<string, unknown> }[] = [];

async function readBody(req: IncomingMessage): Promise<string> {
  let s = "";
  for await (const chunk of req) s += chunk;
  return s;
}

beforeAll(async () => {
  cp = await makeSigningKey("cp-1");
  dir = await mkdtemp(path.join(os.tmpdir(), "cairn-enroll-"));
  server = createServer((req, res) => {
    void readBody(req).then((text) => {
      const body = JSON.parse(text) as Record<string, unknown>;
      requests.push({ path: req.url ?? "", body });
      res.setHeader("content-type", "application/json");
      if (req.method !== "POST" || req.url !== "/api/v1/runners/enroll") {
        res.writeHead(404).end(JSON.stringify({ error: { code: "NOT_FOUND" } }));
      } else if (body.token === "good") {
        res
          .writeHead(201)
          .end(JSON.stringify({ runnerId: "run_new", tenantId: "ten_1", jwks: { keys: [cp.publicJwk] } }));
      } else if (body.token === "garbage") {
        res.writeHead(201).end(
          JSON.stringify({
            runnerId: "run_new",
            tenantId: "ten_1",
            jwks: { keys: [{ kty: "RSA", kid: "x" }] },
          }),
        );
      } else if (body.token === "boom") {
        res.writeHead(500).end(JSON.stringify({ error: { code: "INTERNAL", message: "db down" } }));
      } else {
        res.writeHead(401).end(JSON.stringify({ error: { code: "UNAUTHORIZED" } }));
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((r) => server.close(() => r()));
});

describe("enroll", () => {
  it("sends only public keys, pins the JWKS and writes a 0600 config", async () => {
    const configPath = path.join(dir, "etc", "runner.json");
    await enrollRunner({
      url,
      token: "good",
      configPath,
      name: "web-01",
      hostname: "web-01.example",
      backupDir: path.join(dir, "b"),
      stateDir: path.join(dir, "s"),
      sources: ["/srv/www"],
    });
    const req = requests.at(-1)!;
    expect(req.body).toMatchObject({ token: "good", name: "web-01", hostname: "web-01.example" });
    const sPub = req.body.signingPublicKey as Record<string, unknown>;
    const ePub = req.body.encryptionPublicKey as Record<string, unknown>;
    expect(sPub).toMatchObject({ kty: "OKP", crv: "Ed25519" });
    expect(ePub).toMatchObject({ kty: "OKP", crv: "X25519" });
    expect(sPub.d).toBeUndefined();
    expect(ePub.d).toBeUndefined();

    expect((await stat(configPath)).mode & 0o777).toBe(0o600);
    const { config } = await loadConfig(configPath);
    expect(config).toMatchObject({
      runnerId: "run_new",
      tenantId: "ten_1",
      name: "web-01",
      controlPlaneUrl: url,
      defaultSources: ["/srv/www"],
      allowedRoots: ["/srv/www"],
    });
    expect(config.jwks.keys[0]!.kid).toBe("cp-1");
    expect(config.keys.signing.publicJwk.x).toBe(sPub.x);
    expect(config.keys.signing.privateJwk.d).toBeTruthy();
    expect(config.keys.encryption.publicJwk.x).toBe(ePub.x);
  });

  it("explains a rejected token and writes nothing", async () => {
    const configPath = path.join(dir, "rejected.json");
    const err = await enrollRunner({ url, token: "used", configPath }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EnrollError);
    expect((err as EnrollError).code).toBe("UNAUTHORIZED");
    expect((err as Error).message).toBe("enrollment token rejected (expired, used or unknown)");
    await expect(stat(configPath)).rejects.toMatchObject({ code: "ENOENT" });
  });

  it("reports server errors, bad answers and unreachable servers", async () => {
    const configPath = path.join(dir, "other.json");
    await expect(enrollRunner({ url, token: "boom", configPath })).rejects.toThrow(
      "enrollment failed: HTTP 500 (INTERNAL: db down)",
    );
    await expect(enrollRunner({ url, token: "garbage", configPath })).rejects.toMatchObject({
      code: "BAD_RESPONSE",
    });
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, "127.0.0.1", r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((r) => closed.close(() => r()));
    await expect(
      enrollRunner({ url: `http://127.0.0.1:${port}`, token: "good", configPath }),
    ).rejects.toMatchObject({ code: "NETWORK" });
    await expect(stat(configPath)).rejects.toMatchObject({ code: "ENOENT" });
  });
});
