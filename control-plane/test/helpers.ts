import { env, SELF } from "cloudflare:test";
import { SignJWT, exportJWK, generateKeyPair, type JWK } from "jose";
import { hashPassword } from "../src/crypto/password";
import { db } from "../src/db/client";
import { tenants, users } from "../src/db/schema";
import { newId } from "../src/lib/ids";
import { RUNNER_CONNECT_AUDIENCE, RUNNER_CONNECT_TOKEN_TYP } from "../../shared/protocol/version";

export const BASE = "https://cairn.test";

export async function call(
  path: string,
  init: {
    method?: string;
    body?: unknown;
    rawBody?: string;
    token?: string;
    headers?: Record<string, string>;
  } = {},
  // Test bodies are asserted field by field; `any` keeps those assertions readable.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
): Promise<{ status: number; body: any; res: Response }> {
  const headers: Record<string, string> = { ...init.headers };
  if (init.token) headers.authorization = `Bearer ${init.token}`;
  let body: string | undefined = init.rawBody;
  if (init.body !== undefined) {
    headers["content-type"] = "application/json";
    body = JSON.stringify(init.body);
  }
  const res = await SELF.fetch(BASE + path, {
    method: init.method ?? (body !== undefined ? "POST" : "GET"),
    headers,
    body,
  });
  const text = await res.text();
  let parsed: unknown = text;
  try {
    parsed = JSON.parse(text);
  } catch {
    // not JSON (e.g. the console page)
  }
  return { status: res.status, body: parsed, res };
}

export interface TestUser {
  tenantId: string;
  userId: string;
  email: string;
  password: string;
  token: string;
}

/** A fresh tenant with one user, logged in through the real login route. */
export async function createTenantUser(
  role: "ROOT" | "ADMIN" | "RESELLER" | "USER" = "ADMIN",
): Promise<TestUser> {
  const tenantId = newId("ten");
  const userId = newId("usr");
  const email = `${userId.toLowerCase()}@example.test`;
  const password = "correct horse battery staple";
  const now = Date.now();
  const d = db(env.DB);
  await d.insert(tenants).values({ id: tenantId, name: `t-${tenantId}`, createdAt: now });
  await d.insert(users).values({
    id: userId,
    tenantId,
    email,
    passwordHash: await hashPassword(password),
    role,
    createdAt: now,
  });
  const r = await call("/api/v1/auth/login", { body: { email, password } });
  if (r.status !== 200) throw new Error(`login failed: ${JSON.stringify(r.body)}`);
  return { tenantId, userId, email, password, token: r.body.token as string };
}

export interface TestRunner {
  runnerId: string;
  tenantId: string;
  signingKey: CryptoKey;
  encryptionKey: CryptoKey;
  jwks: { keys: JWK[] };
}

export async function enrollRunner(user: TestUser, name = "web-01"): Promise<TestRunner> {
  const t = await call("/api/v1/runners/enrollment-tokens", { body: {}, token: user.token });
  if (t.status !== 201) throw new Error(`token: ${JSON.stringify(t.body)}`);
  const sig = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
  const enc = await generateKeyPair("ECDH-ES+A256KW", { crv: "X25519", extractable: true });
  const sigPub = await exportJWK(sig.publicKey);
  const encPub = await exportJWK(enc.publicKey);
  const r = await call("/api/v1/runners/enroll", {
    body: {
      token: t.body.token,
      name,
      hostname: `${name}.example.net`,
      signingPublicKey: { kty: "OKP", crv: "Ed25519", x: sigPub.x },
      encryptionPublicKey: { kty: "OKP", crv: "X25519", x: encPub.x },
    },
  });
  if (r.status !== 201) throw new Error(`enroll: ${JSON.stringify(r.body)}`);
  return {
    runnerId: r.body.runnerId,
    tenantId: r.body.tenantId,
    signingKey: sig.privateKey as CryptoKey,
    encryptionKey: enc.privateKey as CryptoKey,
    jwks: r.body.jwks,
  };
}

export async function connectToken(
  runner: TestRunner,
  opts: { ttl?: number; aud?: string; typ?: string; jti?: string } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({})
    .setProtectedHeader({ alg: "EdDSA", typ: opts.typ ?? RUNNER_CONNECT_TOKEN_TYP })
    .setIssuer(runner.runnerId)
    .setSubject(runner.runnerId)
    .setAudience(opts.aud ?? RUNNER_CONNECT_AUDIENCE)
    .setIssuedAt(now)
    .setExpirationTime(now + (opts.ttl ?? 60))
    .setJti(opts.jti ?? crypto.randomUUID())
    .sign(runner.signingKey);
}

/** A runner-side socket with a queue of received messages and the close event. */
export class TestSocket {
  private readonly queue: unknown[] = [];
  private waiters: Array<() => void> = [];
  closed: { code: number; reason: string } | null = null;

  constructor(readonly ws: WebSocket) {
    ws.accept();
    ws.addEventListener("message", (ev) => {
      this.queue.push(JSON.parse(ev.data as string));
      this.wake();
    });
    ws.addEventListener("close", (ev) => {
      this.closed = { code: ev.code, reason: ev.reason };
      this.wake();
    });
  }

  private wake() {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  send(msg: unknown) {
    this.ws.send(typeof msg === "string" ? msg : JSON.stringify(msg));
  }

  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  async next(type?: string): Promise<any> {
    for (;;) {
      const i = this.queue.findIndex((m) => !type || (m as { type: string }).type === type);
      if (i >= 0) return this.queue.splice(i, 1)[0];
      if (this.closed)
        throw new Error(`socket closed (${this.closed.code}) while waiting for ${type ?? "a message"}`);
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }

  async waitClose(): Promise<{ code: number; reason: string }> {
    while (!this.closed) await new Promise<void>((r) => this.waiters.push(r));
    return this.closed;
  }

  close() {
    try {
      this.ws.close(1000, "bye");
    } catch {
      // already closed
    }
  }
}

export async function openSocket(
  runner: TestRunner,
  token?: string,
): Promise<{ status: number; socket?: TestSocket }> {
  const res = await SELF.fetch(`${BASE}/api/v1/runners/connect`, {
    headers: { upgrade: "websocket", authorization: `Bearer ${token ?? (await connectToken(runner))}` },
  });
  if (res.status !== 101 || !res.webSocket) {
    await res.text();
    return { status: res.status };
  }
  return { status: 101, socket: new TestSocket(res.webSocket) };
}

export function hello(activeJobIds: string[] = []) {
  return {
    type: "hello",
    protocol: 1,
    runnerVersion: "test",
    hostname: "web-01",
    platform: "linux",
    activeJobIds,
  };
}

/** Polls until `check` returns a value (D1 updates by the DO happen after it answers the socket). */
export async function eventually<T>(
  check: () => Promise<T | undefined | null | false>,
  what: string,
  tries = 200,
): Promise<T> {
  for (let i = 0; i < tries; i++) {
    const v = await check();
    if (v) return v;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timed out waiting for ${what}`);
}
