/**
 * Google OAuth 2.0 for Drive: the authorization-code flow the console starts (URL + code exchange)
 * and the refresh-token grant the runner uses. Tokens and secrets never appear in errors.
 */
import { DestinationError } from "./types";

export const GOOGLE_AUTH_URL = "https://accounts.google.com/o/oauth2/v2/auth";
export const GOOGLE_TOKEN_URL = "https://oauth2.googleapis.com/token";
/** Only files this app created: enough to write, list and read back its own backups. */
export const DRIVE_SCOPE = "https://www.googleapis.com/auth/drive.file";

export function buildAuthorizationUrl(opts: {
  clientId: string;
  redirectUri: string;
  state: string;
  scope?: string;
  authUrl?: string;
  codeChallenge?: string;
}): string {
  const u = new URL(opts.authUrl ?? GOOGLE_AUTH_URL);
  u.searchParams.set("client_id", opts.clientId);
  u.searchParams.set("redirect_uri", opts.redirectUri);
  u.searchParams.set("response_type", "code");
  u.searchParams.set("scope", opts.scope ?? DRIVE_SCOPE);
  // offline + consent: Google returns a refresh token, also when the user had consented before.
  u.searchParams.set("access_type", "offline");
  u.searchParams.set("prompt", "consent");
  u.searchParams.set("state", opts.state);
  if (opts.codeChallenge) {
    u.searchParams.set("code_challenge", opts.codeChallenge);
    u.searchParams.set("code_challenge_method", "S256");
  }
  return u.toString();
}

export interface TokenResponse {
  accessToken: string;
  expiresIn: number;
  refreshToken?: string;
  scope?: string;
}

async function postToken(
  tokenUrl: string,
  form: Record<string, string>,
  label: string,
): Promise<TokenResponse> {
  let res: Response;
  try {
    res = await fetch(tokenUrl, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded", accept: "application/json" },
      body: new URLSearchParams(form).toString(),
    });
  } catch (err) {
    throw new DestinationError(
      "CONNECTION_FAILED",
      label,
      `token endpoint unreachable: ${(err as Error).message}`,
      { cause: err },
    );
  }
  const text = await res.text();
  let body: Record<string, unknown> = {};
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    /* handled below */
  }
  if (!res.ok) {
    // Only the OAuth error code is repeated: the description may echo request parameters.
    const code = typeof body.error === "string" ? body.error : `HTTP ${res.status}`;
    const kind = res.status >= 500 ? "CONNECTION_FAILED" : "AUTH_FAILED";
    throw new DestinationError(kind, label, `token request refused: ${code}`);
  }
  if (typeof body.access_token !== "string")
    throw new DestinationError("PROTOCOL_ERROR", label, "token response has no access_token");
  return {
    accessToken: body.access_token,
    expiresIn: typeof body.expires_in === "number" ? body.expires_in : 3600,
    refreshToken: typeof body.refresh_token === "string" ? body.refresh_token : undefined,
    scope: typeof body.scope === "string" ? body.scope : undefined,
  };
}

/** Exchange the code from the redirect for tokens (the refresh token is what gets stored). */
export function exchangeAuthorizationCode(opts: {
  clientId: string;
  clientSecret: string;
  code: string;
  redirectUri: string;
  codeVerifier?: string;
  tokenUrl?: string;
}): Promise<TokenResponse> {
  const form: Record<string, string> = {
    grant_type: "authorization_code",
    code: opts.code,
    client_id: opts.clientId,
    client_secret: opts.clientSecret,
    redirect_uri: opts.redirectUri,
  };
  if (opts.codeVerifier) form.code_verifier = opts.codeVerifier;
  return postToken(opts.tokenUrl ?? GOOGLE_TOKEN_URL, form, "gdrive oauth");
}

export function refreshAccessToken(opts: {
  clientId: string;
  clientSecret: string;
  refreshToken: string;
  tokenUrl?: string;
  label: string;
}): Promise<TokenResponse> {
  return postToken(
    opts.tokenUrl ?? GOOGLE_TOKEN_URL,
    {
      grant_type: "refresh_token",
      refresh_token: opts.refreshToken,
      client_id: opts.clientId,
      client_secret: opts.clientSecret,
    },
    opts.label,
  );
}
