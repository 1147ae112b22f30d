/**
 * Test helpers: a control-plane signing key, a runner identity and config, job tokens signed
 * the way the control plane signs them, and a small `ws` server that plays the control plane.
 */
import { mkdtemp } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import type { AddressInfo } from "node:net";
import type { IncomingHttpHeaders } from "node:http";
import { CompactEncrypt, exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from "jose";
import { WebSocketServer, type WebSocket } from "ws";
import type { BackupJobParams, JobSecrets } from "../../../shared/protocol/job-claims";
import { CONTROL_PLANE_ISSUER, JOB_TOKEN_TYP } from "../../../shared/protocol/version";
import { parseConfig, type RunnerConfig, type RunnerConfigInput } from "../config";

export interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  publicJwk: JWK;
}

export async function makeSigningKey(kid = "cp-1"): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
  return { kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg: "EdDSA", use: "sig" } };
}

export async function makeRunnerConfig(
  cp: SigningKey,
  overrides: Partial<RunnerConfigInput> = {},
): Promise<{
  config: RunnerConfig;
  input: RunnerConfigInput;
  dir: string;
  signingPublicJwk: JWK;
  encryptionPublicJwk: JWK;
}> {
  const dir = await mkdtemp(path.join(os.tmpdir(), "cairn-runner-test-"));
  const s = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
  const e = await generateKeyPair("ECDH-ES", { crv: "X25519", extractable: true });
  const signingPublicJwk = await exportJWK(s.publicKey);
  const encryptionPublicJwk = await exportJWK(e.publicKey);
  const input: RunnerConfigInput = {
    controlPlaneUrl: "http://127.0.0.1:1",
    runnerId: "run_test1",
    tenantId: "ten_test1",
    name: "test",
    keys: {
      signing: { privateJwk: (await exportJWK(s.privateKey)) as never, publicJwk: signingPublicJwk as never },
      encryption: {
        privateJwk: (await exportJWK(e.privateKey)) as never,
        publicJwk: encryptionPublicJwk as never,
      },
    },
    jwks: { keys: [cp.publicJwk as never] },
    stateDir: path.join(dir, "state"),
    backupDir: path.join(dir, "backups"),
    defaultSources: [],
    ...overrides,
  };
  return { config: parseConfig(input), input, dir, signingPublicJwk, encryptionPublicJwk };
}

export function backupParams(overrides: Partial<BackupJobParams> = {}): BackupJobParams {
  return {
    binding: { backupId: "bk_1", tenantId: "ten_test1", chainRootId: "bk_1", parentId: null },
    name: "site",
    kind: "full",
    compressionLevel: 3,
    destination: { kind: "local" },
    encryption: { mode: "none" },
    ...overrides,
  };
}

export interface JobTokenOptions {
  jti: string;
  runnerId?: string;
  tenantId?: string;
  iss?: string;
  iat?: number;
  exp?: number;
  job?: unknown;
  secrets?: string;
  header?: Record<string, unknown>;
  key?: SigningKey;
}

export async function signJob(cp: SigningKey, o: JobTokenOptions): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const iat = o.iat ?? now;
  const claims: Record<string, unknown> = {
    iss: o.iss ?? CONTROL_PLANE_ISSUER,
    aud: o.runnerId ?? "run_test1",
    sub: o.tenantId ?? "ten_test1",
    jti: o.jti,
    iat,
    exp: o.exp ?? iat + 300,
    job: o.job ?? { type: "backup", params: backupParams() },
  };
  if (o.secrets) claims.secrets = o.secrets;
  const key = o.key ?? cp;
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "EdDSA", kid: cp.kid, typ: JOB_TOKEN_TYP, ...o.header } as never)
    .sign(key.privateKey);
}

export async function encryptSecrets(encryptionPublicJwk: JWK, secrets: JobSecrets): Promise<string> {
  const { importJWK } = await import("jose");
  const key = await importJWK(encryptionPublicJwk, "ECDH-ES+A256KW");
  return new CompactEncrypt(new TextEncoder().encode(JSON.stringify(secrets)))
    .setProtectedHeader({ alg: "ECDH-ES+A256KW", enc: "A256GCM" })
    .encrypt(key);
}

type Msg = Record<string, unknown> & { type: string };

export interface FakeConnection {
  ws: WebSocket;
  headers: IncomingHttpHeaders;
  messages: Msg[];
  pings: number;
  closed?: { code: number; reason: string };
}

/** Plays the control plane: records every connection and message; tests script the answers. */
export class FakeControlPlane {
  readonly connections: FakeConnection[] = [];
  private readonly wss: WebSocketServer;
  private waiters: (() => void)[] = [];
  /** Answer pings (off = simulate a dead control plane). */
  pong = true;

  private constructor(wss: WebSocketServer) {
    this.wss = wss;
    wss.on("connection", (ws, req) => {
      const c: FakeConnection = { ws, headers: req.headers, messages: [], pings: 0 };
      this.connections.push(c);
      ws.on("message", (data) => {
        const text = data.toString();
        if (text === '{"type":"ping"}') {
          c.pings++;
          if (this.pong) ws.send('{"type":"pong"}');
        } else c.messages.push(JSON.parse(text) as Msg);
        this.notify();
      });
      ws.on("close", (code, reason) => {
        c.closed = { code, reason: reason.toString() };
        this.notify();
      });
      this.notify();
    });
  }

  static async start(): Promise<FakeControlPlane> {
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, path: "/api/v1/runners/connect" });
    await new Promise<void>((r) => wss.once("listening", () => r()));
    return new FakeControlPlane(wss);
  }

  get url(): string {
    return `http://127.0.0.1:${(this.wss.address() as AddressInfo).port}`;
  }

  /** Resolves when `probe` returns a value (checked on every event). */
  async waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs = 20_000): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const v = probe();
      if (v) return v;
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
      await new Promise<void>((r) => {
        const t = setTimeout(r, 200);
        this.waiters.push(() => {
          clearTimeout(t);
          r();
        });
      });
    }
  }

  connection(i: number): Promise<FakeConnection> {
    return this.waitFor(`connection #${i}`, () => this.connections[i]);
  }

  message(c: FakeConnection, pred: (m: Msg) => boolean, what = "message"): Promise<Msg> {
    return this.waitFor(what, () => c.messages.find(pred));
  }

  send(c: FakeConnection, msg: unknown): void {
    c.ws.send(typeof msg === "string" ? msg : JSON.stringify(msg));
  }

  welcome(c: FakeConnection, runnerId = "run_test1", heartbeatIntervalMs = 30_000, leaseMs = 60_000): void {
    this.send(c, {
      type: "welcome",
      protocol: 1,
      runnerId,
      serverTime: Date.now(),
      heartbeatIntervalMs,
      leaseMs,
    });
  }

  async close(): Promise<void> {
    for (const c of this.connections) c.ws.terminate();
    await new Promise<void>((r) => this.wss.close(() => r()));
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }
}
