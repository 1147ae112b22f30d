import { Hono } from "hono";
import type { AppEnv } from "../env";
import { publicJwks } from "../crypto/signing-keys";

export const jwksRoutes = new Hono<AppEnv>();

jwksRoutes.get("/jwks.json", async (c) => {
  c.header("cache-control", "public, max-age=300");
  return c.json(await publicJwks(c.env.JOB_SIGNING_KEYS));
});
