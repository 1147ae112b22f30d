import { Hono } from "hono";
import { eq } from "drizzle-orm";
import { GdriveConfig, GdriveCredentials } from "../../../shared/destinations";
import { db } from "../db/client";
import { destinations } from "../db/schema";
import type { AppEnv } from "../env";
import { conflict, validationFailed } from "../errors";
import { activity, noteActivity } from "../lib/activity";
import { currentUser, requireAuth, tenantScope } from "../lib/auth";
import { openCredentials, sealCredentials } from "../lib/destination-credentials";
import { findDestination } from "../lib/destinations";
import {
  authorizationUrl as buildAuthorizationUrl,
  exchangeCodeForRefreshToken,
  exchangeFailed,
} from "../lib/gdrive-oauth";
import { consumeOAuthState, createOAuthState, pkceChallenge, pkceVerifier } from "../lib/gdrive-oauth-state";

/**
 * Google Drive OAuth 2.0 authorization-code flow (with PKCE S256) started from the console. Mounted
 * under /api/v1/destinations. The refresh token lands only inside the destination's sealed credentials.
 */

export const CALLBACK_PATH = "/api/v1/destinations/gdrive/callback";

export const gdriveAuthorizeRoutes = new Hono<AppEnv>();

gdriveAuthorizeRoutes.post(
  "/:id/gdrive/authorize",
  activity("destination.gdrive.authorize"),
  requireAuth("destinations.manage"),
  async (c) => {
    const id = c.req.param("id");
    noteActivity(c, { targetType: "destination", targetId: id });
    const user = currentUser(c);
    const d = await findDestination(c.env, id, tenantScope(user));
    noteActivity(c, { tenantId: d.tenantId });
    if (d.kind !== "gdrive") throw validationFailed(`destination is ${d.kind}, not gdrive`);
    if (!d.encryptedCredentials) throw conflict("destination has no client id/secret");
    const creds = GdriveCredentials.parse(
      await openCredentials(c.env, d.tenantId, d.id, d.encryptedCredentials),
    );
    const config = GdriveConfig.parse(JSON.parse(d.config));
    // The redirect must come back to this very origin: the callback URI is registered with Google.
    const redirectUri = new URL(CALLBACK_PATH, c.req.url).toString();
    const state = await createOAuthState(c.env, {
      destinationId: d.id,
      tenantId: d.tenantId,
      userId: user.id,
      redirectUri,
    });
    const authorizationUrl = buildAuthorizationUrl({
      clientId: creds.clientId,
      redirectUri,
      state,
      authUrl: config.authUrl,
      codeChallenge: await pkceChallenge(await pkceVerifier(c.env, state)),
    });
    return c.json({ authorizationUrl, redirectUri });
  },
);

/** Google redirects the browser here; the state (not the session cookie, SameSite=Strict) is the credential. */
gdriveAuthorizeRoutes.get("/gdrive/callback", activity("destination.gdrive.callback"), async (c) => {
  const state = c.req.query("state") ?? "";
  const pending = await consumeOAuthState(c.env, state);
  noteActivity(c, {
    tenantId: pending.tenantId,
    actorType: "user",
    actorId: pending.userId,
    targetType: "destination",
    targetId: pending.destinationId,
  });
  const refused = c.req.query("error");
  if (refused) throw exchangeFailed(`authorization refused at Google: ${refused.slice(0, 64)}`);
  const code = c.req.query("code");
  if (!code || code.length > 2048) throw validationFailed("missing or malformed code");
  const d = await findDestination(c.env, pending.destinationId, pending.tenantId);
  if (d.kind !== "gdrive" || !d.encryptedCredentials)
    throw conflict("destination is no longer a gdrive destination");
  const creds = GdriveCredentials.parse(
    await openCredentials(c.env, d.tenantId, d.id, d.encryptedCredentials),
  );
  const config = GdriveConfig.parse(JSON.parse(d.config));
  const refreshToken = await exchangeCodeForRefreshToken({
    clientId: creds.clientId,
    clientSecret: creds.clientSecret,
    code,
    redirectUri: pending.redirectUri,
    codeVerifier: await pkceVerifier(c.env, state),
    tokenUrl: config.tokenUrl,
  });
  await db(c.env.DB)
    .update(destinations)
    .set({
      encryptedCredentials: await sealCredentials(c.env, d.tenantId, d.id, { ...creds, refreshToken }),
      // A test of the old credentials says nothing about the new ones.
      lastTestStatus: null,
      lastTestAt: null,
      lastTestError: null,
      updatedAt: Date.now(),
    })
    .where(eq(destinations.id, d.id));
  return c.redirect(`/?gdrive=authorized&destination=${encodeURIComponent(d.id)}#destinations`, 303);
});
