import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { lt, or, and, isNotNull } from "drizzle-orm";
import { ApiErrorCode } from "../../shared/errors";
import { db } from "./db/client";
import { enrollmentTokens, oauthStates, rateLimitBuckets, sessions } from "./db/schema";
import type { AppEnv, Env } from "./env";
import { ApiError } from "./errors";
import { clientIp, writeActivity } from "./lib/activity";
import { activityRoutes } from "./routes/activity";
import { authRoutes } from "./routes/auth";
import { backupRoutes } from "./routes/backups";
import { backupCopyRoutes } from "./routes/backup-copies";
import { destinationRoutes } from "./routes/destinations";
import { gdriveAuthorizeRoutes } from "./routes/gdrive-authorize";
import { relayRoutes } from "./routes/relay";
import { consoleRoutes } from "./routes/console";
import { jobRoutes } from "./routes/jobs";
import { jwksRoutes } from "./routes/jwks";
import { runnerRoutes } from "./routes/runners";
import { runnerDomainRoutes } from "./routes/runner-domains";
import { settingsRoutes } from "./routes/settings";
import { setupRoutes } from "./routes/setup";
import { tenantRoutes } from "./routes/tenants";
import { userRoutes } from "./routes/users";

export { RunnerSession } from "./durable-objects/runner-session";
export { DownloadRelay } from "./durable-objects/download-relay";

export const app = new Hono<AppEnv>();

/** Largest API request body; bigger ones are refused before parsing. */
const MAX_BODY_BYTES = 64 * 1024;

app.use("/api/*", async (c, next) => {
  const len = Number(c.req.header("content-length") ?? 0);
  if (len > MAX_BODY_BYTES) throw new ApiError(413, ApiErrorCode.PayloadTooLarge, "request body too large");
  await next();
  // Routes with a named operation log themselves; this records every other failed call (reads included).
  if (!c.get("activity") && c.res.status >= 400) {
    const user = c.get("user");
    await writeActivity(c.env, {
      tenantId: user?.tenantId ?? null,
      actorType: user ? "user" : "anonymous",
      actorId: user?.id ?? null,
      operation: `api.${c.req.method.toLowerCase()}`,
      status: "failure",
      details: { path: new URL(c.req.url).pathname, httpStatus: c.res.status },
      ip: clientIp(c),
    }).catch((e) => console.error("activity: write failed", (e as Error).message));
  }
  c.header("cache-control", "no-store");
  c.header("x-content-type-options", "nosniff");
});

app.route("/api/v1/setup", setupRoutes);
app.route("/api/v1/auth", authRoutes);
app.route("/api/v1/runners", runnerRoutes);
app.route("/api/v1/runners", runnerDomainRoutes);
app.route("/api/v1/settings", settingsRoutes);
app.route("/api/v1/backups", backupRoutes);
app.route("/api/v1/backups", backupCopyRoutes);
app.route("/api/v1/destinations", destinationRoutes);
app.route("/api/v1/destinations", gdriveAuthorizeRoutes);
app.route("/api/v1/relay", relayRoutes);
app.route("/api/v1/jobs", jobRoutes);
app.route("/api/v1/activity", activityRoutes);
app.route("/api/v1/tenants", tenantRoutes);
app.route("/api/v1/users", userRoutes);
app.route("/.well-known", jwksRoutes);
app.route("/", consoleRoutes);

app.notFound((c) => c.json({ error: { code: ApiErrorCode.NotFound, message: "no such route" } }, 404));

app.onError((err, c) => {
  if (err instanceof ApiError) return c.json({ error: { code: err.code, message: err.message } }, err.status);
  if (err instanceof HTTPException) {
    const code =
      err.status === 404
        ? ApiErrorCode.NotFound
        : err.status < 500
          ? ApiErrorCode.BadRequest
          : ApiErrorCode.Internal;
    return c.json({ error: { code, message: err.message || "request failed" } }, err.status);
  }
  console.error(
    "unhandled error",
    c.req.method,
    new URL(c.req.url).pathname,
    err instanceof Error ? err.message : err,
  );
  return c.json({ error: { code: ApiErrorCode.Internal, message: "internal error" } }, 500);
});

/** Cron: sweep expired enrollment tokens and sessions (kept a day for the activity trail) and rate-limit windows. */
export async function sweep(env: Env, now = Date.now()): Promise<void> {
  const d = db(env.DB);
  const cutoff = now - 24 * 3600 * 1000;
  await d.batch([
    d
      .delete(enrollmentTokens)
      .where(
        or(
          lt(enrollmentTokens.expiresAt, cutoff),
          and(isNotNull(enrollmentTokens.usedAt), lt(enrollmentTokens.usedAt, cutoff)),
        ),
      ),
    d.delete(sessions).where(lt(sessions.expiresAt, now)),
    d.delete(rateLimitBuckets).where(lt(rateLimitBuckets.expiresAt, now)),
    // Drive authorizations never completed: their states are refused anyway once expired.
    d.delete(oauthStates).where(lt(oauthStates.expiresAt, now)),
  ]);
}

export default {
  fetch: app.fetch,
  async scheduled(controller, env, ctx) {
    ctx.waitUntil(
      sweep(env, controller.scheduledTime).catch((e) =>
        console.error("scheduled: sweep failed", (e as Error).message),
      ),
    );
  },
} satisfies ExportedHandler<Env>;
