import { ApiErrorCode } from "../../../shared/errors";
import { ApiError } from "../errors";

/**
 * The Worker's half of Google's OAuth 2.0 authorization-code flow: the consent URL and the code exchange.
 * (The runner's refresh-token grant lives in runner/src/destinations/gdrive-oauth.ts, which needs Node.)
 * Errors repeat only the OAuth error code: descriptions may echo request parameters.
 */
export const GOOGLE_AUTH_URL = "https://accounts.google.com/o/oauth2/v2/auth";
export const GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token";
/** Only files this app created: enough to write, list and read back its own backups. */
export const DRIVE_SCOPE = "https://www.googleapis.com/auth/drive.file";

export const exchangeFailed = (m: string) => new ApiError(502, ApiErrorCode.OAuthExchangeFailed, m);

export function authorizationUrl(opts: {
  clientId: string;
  redirectUri: string;
  state: string;
  codeChallenge: string;
  authUrl?: string;
}): string {
  const u = new URL(opts.authUrl ?? GOOGLE_AUTH_URL);
  u.searchParams.set("client_id", opts.clientId);
  u.searchParams.set("redirect_uri", opts.redirectUri);
  u.searchParams.set("response_type", "code");
  u.searchParams.set("scope", DRIVE_SCOPE);
  // offline + consent: Google returns a refresh token, also when the user had consented before.
  u.searchParams.set("access_type", "offline");
  u.searchParams.set("prompt", "consent");
  u.searchParams.set("state", opts.state);
  u.searchParams.set("code_challenge", opts.codeChallenge);
  u.searchParams.set("code_challenge_method", "S256");
  return u.toString();
}

/** Exchanges the code for tokens; returns the refresh token (the only thing kept). */
export async function exchangeCodeForRefreshToken(opts: {
  clientId: string;
  clientSecret: string;
  code: string;
  redirectUri: string;
  codeVerifier: string;
  tokenUrl?: string;
}): Promise<string> {
  let res: Response;
  try {
    res = await fetch(opts.tokenUrl ?? GOOGLE_TOKEN_URL, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
      body: new URLSearchParams({
        grant_type: "authorization_code",
        code: opts.code,
        client_id: opts.clientId,
        client_secret: opts.clientSecret,
        redirect_uri: opts.redirectUri,
        code_verifier: opts.codeVerifier,
      }).toString(),
    });
  } catch (e) {
    throw exchangeFailed(`token endpoint unreachable: ${(e as Error).message}`);
  }
  let body: Record<string, unknown> = {};
  try {
    body = (await res.json()) as Record<string, unknown>;
  } catch {
    /* handled below */
  }
  if (!res.ok) {
    const code = typeof body.error === "string" ? body.error.slice(0, 64) : `HTTP ${res.status}`;
    throw exchangeFailed(`token endpoint refused the code: ${code}`);
  }
  if (typeof body.refresh_token !== "string" || !body.refresh_token)
    throw exchangeFailed("token endpoint returned no refresh token; authorize again");
  return body.refresh_token;
}
