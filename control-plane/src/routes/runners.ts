import { Hono } from "hono";
import { and, desc, eq, gt, isNull } from "drizzle-orm";
import { z } from "zod";
import { db } from "../db/client";
import { enrollmentTokens, runners } from "../db/schema";
import type { AppEnv } from "../env";
import { notFound, unauthorized } from "../errors";
import { activity, clientIp, noteActivity, writeActivity } from "../lib/activity";
import { currentUser, requireAuth, tenantScope } from "../lib/auth";
import { newId } from "../lib/ids";
import { readJson } from "../lib/validate";
import { randomToken, sha256Hex } from "../crypto/random";
import { publicJwks } from "../crypto/signing-keys";
import { claimedRunnerId, ConnectTokenError, verifyConnectToken } from "../crypto/connect-token";
import { runnerStub } from "../lib/runner-stub";

export const DEFAULT_ENROLLMENT_TTL_SECONDS = 3600;
export const MAX_ENROLLMENT_TTL_SECONDS = 7 * 24 * 3600;

const b64url = z.string().regex(/^[A-Za-z0-9_-]{43}$/, "must be a base64url 32-byte key");
const EnrollBody = z.object({
  token: z.string().min(1).max(256),
  name: z.string().trim().min(1).max(64),
  hostname: z.string().trim().min(1).max(255),
  signingPublicKey: z.object({ kty: z.literal("OKP"), crv: z.literal("Ed25519"), x: b64url }),
  encryptionPublicKey: z.object({ kty: z.literal("OKP"), crv: z.literal("X25519"), x: b64url }),
});

const TokenBody = z.object({
  ttlSeconds: z.number().int().min(60).max(MAX_ENROLLMENT_TTL_SECONDS).optional(),
});

export const runnerRoutes = new Hono<AppEnv>();

export function runnerView(r: typeof runners.$inferSelect) {
  return {
    id: r.id,
    tenantId: r.tenantId,
    name: r.name,
    hostname: r.hostname,
    status: r.revokedAt ? ("offline" as const) : r.status,
    lastSeenAt: r.lastSeenAt ? new Date(r.lastSeenAt).toISOString() : null,
    revokedAt: r.revokedAt ? new Date(r.revokedAt).toISOString() : null,
    createdAt: new Date(r.createdAt).toISOString(),
  };
}

runnerRoutes.post(
  "/enrollment-tokens",
  activity("runner.enrollment_token.create"),
  requireAuth("runners.enroll"),
  async (c) => {
    const body = await readJson(c, TokenBody);
    const user = currentUser(c);
    const token = randomToken();
    const now = Date.now();
    const expiresAt = now + (body.ttlSeconds ?? DEFAULT_ENROLLMENT_TTL_SECONDS) * 1000;
    const id = newId("enr");
    await db(c.env.DB)
      .insert(enrollmentTokens)
      .values({
        id,
        tenantId: user.tenantId,
        tokenHash: await sha256Hex(token),
        expiresAt,
        createdBy: user.id,
        createdAt: now,
      });
    noteActivity(c, { targetType: "enrollment_token", targetId: id });
    return c.json({ token, expiresAt: new Date(expiresAt).toISOString() }, 201);
  },
);

/** No session: the single-use enrollment token is the credential. */
runnerRoutes.post("/enroll", activity("runner.enroll"), async (c) => {
  const body = await readJson(c, EnrollBody);
  const d = db(c.env.DB);
  const now = Date.now();
  const runnerId = newId("run");
  // Consume the token atomically: only one enrollment can flip used_at from null.
  const claimed = await d
    .update(enrollmentTokens)
    .set({ usedAt: now, usedByRunnerId: runnerId })
    .where(
      and(
        eq(enrollmentTokens.tokenHash, await sha256Hex(body.token)),
        isNull(enrollmentTokens.usedAt),
        gt(enrollmentTokens.expiresAt, now),
      ),
    )
    .returning({ tenantId: enrollmentTokens.tenantId, id: enrollmentTokens.id })
    .get();
  if (!claimed) {
    noteActivity(c, { details: { name: body.name, hostname: body.hostname } });
    throw unauthorized("enrollment token is invalid, expired or already used");
  }
  await d.insert(runners).values({
    id: runnerId,
    tenantId: claimed.tenantId,
    name: body.name,
    hostname: body.hostname,
    signingPublicKey: JSON.stringify(body.signingPublicKey),
    encryptionPublicKey: JSON.stringify(body.encryptionPublicKey),
    status: "offline",
    createdAt: now,
  });
  noteActivity(c, {
    tenantId: claimed.tenantId,
    actorType: "runner",
    actorId: runnerId,
    targetType: "runner",
    targetId: runnerId,
    details: { name: body.name, hostname: body.hostname, enrollmentTokenId: claimed.id },
  });
  return c.json(
    { runnerId, tenantId: claimed.tenantId, jwks: await publicJwks(c.env.JOB_SIGNING_KEYS) },
    201,
  );
});

/** WebSocket upgrade: verify the runner's connect JWT here, then hand the socket to its Durable Object. */
runnerRoutes.get("/connect", async (c, next) => {
  if (c.req.header("upgrade")?.toLowerCase() !== "websocket") return next();
  // Connect audit rows: failures here (with the reason), successes by the session after the upgrade.
  c.set("activity", { operation: "runner.connect" });
  const auth = c.req.header("authorization") ?? "";
  let runnerId: string | undefined;
  let tenantId: string | null = null;
  try {
    if (!auth.startsWith("Bearer ")) throw new ConnectTokenError("missing connect token");
    const token = auth.slice(7).trim();
    runnerId = claimedRunnerId(token);
    const runner = await db(c.env.DB).select().from(runners).where(eq(runners.id, runnerId)).get();
    if (!runner) throw new ConnectTokenError("unknown runner");
    tenantId = runner.tenantId;
    if (runner.revokedAt) throw new ConnectTokenError("runner revoked");
    const { jti, exp } = await verifyConnectToken(token, runnerId, JSON.parse(runner.signingPublicKey));
    const headers = new Headers(c.req.raw.headers);
    headers.delete("authorization");
    headers.set("x-cairn-runner-id", runner.id);
    headers.set("x-cairn-tenant-id", runner.tenantId);
    headers.set("x-cairn-connect-jti", jti);
    headers.set("x-cairn-connect-exp", String(exp));
    const res = await runnerStub(c.env, runner.id).fetch(new Request(c.req.raw, { headers }));
    // The session records presence and the connect audit row in one D1 batch.
    if (res.status === 101) return res;
    throw new ConnectTokenError(`session refused: ${res.status}`);
  } catch (e) {
    if (!(e instanceof ConnectTokenError)) throw e;
    await writeActivity(c.env, {
      tenantId,
      actorType: "runner",
      actorId: runnerId ?? null,
      operation: "runner.connect",
      status: "failure",
      targetType: "runner",
      targetId: runnerId ?? null,
      details: { reason: e.message },
      ip: clientIp(c),
    }).catch(() => undefined);
    throw unauthorized(e.message);
  }
});
runnerRoutes.get("/connect", (c) =>
  c.json({ error: { code: "BAD_REQUEST", message: "expected a WebSocket upgrade" } }, 426),
);

runnerRoutes.get("/", requireAuth("runners.read"), async (c) => {
  const scope = tenantScope(currentUser(c));
  const rows = await db(c.env.DB)
    .select()
    .from(runners)
    .where(scope ? eq(runners.tenantId, scope) : undefined)
    .orderBy(desc(runners.createdAt))
    .limit(1000)
    .all();
  return c.json(rows.map(runnerView));
});

export async function findRunner(c: { env: AppEnv["Bindings"] }, id: string, scope: string | null) {
  const row = await db(c.env.DB)
    .select()
    .from(runners)
    .where(and(eq(runners.id, id), scope ? eq(runners.tenantId, scope) : undefined))
    .get();
  if (!row) throw notFound("runner");
  return row;
}

runnerRoutes.get("/:id", requireAuth("runners.read"), async (c) => {
  return c.json(runnerView(await findRunner(c, c.req.param("id"), tenantScope(currentUser(c)))));
});

runnerRoutes.post("/:id/revoke", activity("runner.revoke"), requireAuth("runners.revoke"), async (c) => {
  const id = c.req.param("id");
  noteActivity(c, { targetType: "runner", targetId: id });
  const runner = await findRunner(c, id, tenantScope(currentUser(c)));
  const now = runner.revokedAt ?? Date.now();
  await db(c.env.DB).update(runners).set({ revokedAt: now, status: "offline" }).where(eq(runners.id, id));
  await runnerStub(c.env, id).revoke();
  return c.json(runnerView({ ...runner, revokedAt: now, status: "offline" }));
});
