import { Hono } from "hono";
import { base64url } from "jose";
import type { AppEnv } from "../env";
import { consolePage } from "../console/page";

export const consoleRoutes = new Hono<AppEnv>();

consoleRoutes.get("/", (c) => {
  const nonce = base64url.encode(crypto.getRandomValues(new Uint8Array(16)));
  c.header(
    "content-security-policy",
    `default-src 'none'; script-src 'nonce-${nonce}'; style-src 'nonce-${nonce}'; connect-src 'self'; img-src 'self'; ` +
      `form-action 'self'; base-uri 'none'; frame-ancestors 'none'`,
  );
  c.header("x-content-type-options", "nosniff");
  c.header("x-frame-options", "DENY");
  c.header("referrer-policy", "no-referrer");
  c.header("cache-control", "no-store");
  return c.html(consolePage(nonce));
});

// Browsers ask for it on every visit; an empty answer keeps the console's error log clean.
consoleRoutes.get("/favicon.ico", (c) => c.body(null, 204));
