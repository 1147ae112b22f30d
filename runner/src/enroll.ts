import os from "node:os";
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { exportJWK, generateKeyPair } from "jose";
import { z } from "zod";
import { DEFAULT_BACKUP_DIR, DEFAULT_STATE_DIR, PinnedJwks, writeConfig, type RunnerConfig } from "./config";

/**
 * Enrolment: keys are generated here and only the public halves leave the machine. The JWKS in the
 * answer is pinned: from now on job signatures are checked against it, never against keys from the socket.
 */

export class EnrollError extends Error {
  constructor(
    readonly code: "UNAUTHORIZED" | "HTTP_ERROR" | "NETWORK" | "BAD_RESPONSE",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "EnrollError";
  }
}

export interface EnrollOptions {
  url: string;
  token: string;
  configPath: string;
  name?: string;
  hostname?: string;
  backupDir?: string;
  stateDir?: string;
  sources?: string[];
  allowedRoots?: string[];
  /** Hosting server: `--hosting-root DIR` / `--hosting-config F`. */
  hosting?: { root?: string; configPath?: string };
  fetch?: typeof fetch;
}

const EnrollResponse = z.object({
  runnerId: z.string().min(1).max(64),
  tenantId: z.string().min(1).max(64),
  jwks: PinnedJwks,
});

export async function enrollRunner(opts: EnrollOptions): Promise<RunnerConfig> {
  const base = new URL(opts.url);
  if (base.protocol !== "https:" && base.protocol !== "http:")
    throw new EnrollError("HTTP_ERROR", `unsupported URL scheme ${base.protocol}`);
  const hostname = opts.hostname ?? os.hostname();
  const name = opts.name ?? hostname;
  const signing = await generateKeyPair("EdDSA", { crv: "Ed25519", extractable: true });
  const encryption = await generateKeyPair("ECDH-ES", { crv: "X25519", extractable: true });
  const [sPriv, sPub, ePriv, ePub] = await Promise.all([
    exportJWK(signing.privateKey),
    exportJWK(signing.publicKey),
    exportJWK(encryption.privateKey),
    exportJWK(encryption.publicKey),
  ]);

  const endpoint = new URL(`${base.pathname.replace(/\/+$/, "")}/api/v1/runners/enroll`, base);
  let res: Response;
  try {
    res = await (opts.fetch ?? fetch)(endpoint, {
      method: "POST",
      headers: { "content-type": "application/json", accept: "application/json" },
      body: JSON.stringify({
        token: opts.token,
        name,
        hostname,
        signingPublicKey: sPub,
        encryptionPublicKey: ePub,
      }),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (err) {
    const cause = (err as { cause?: { code?: string } }).cause?.code;
    throw new EnrollError("NETWORK", `cannot reach ${endpoint.origin}: ${cause ?? (err as Error).message}`, {
      cause: err,
    });
  }
  const text = await res.text().catch(() => "");
  if (res.status === 401)
    throw new EnrollError("UNAUTHORIZED", "enrollment token rejected (expired, used or unknown)");
  if (res.status !== 201 && res.status !== 200) {
    let detail = "";
    try {
      const body = JSON.parse(text) as { error?: { code?: string; message?: string } };
      detail = [body.error?.code, body.error?.message].filter(Boolean).join(": ");
    } catch {
      // not JSON: status alone
    }
    throw new EnrollError(
      "HTTP_ERROR",
      `enrollment failed: HTTP ${res.status}${detail ? ` (${detail})` : ""}`,
    );
  }
  let body: z.infer<typeof EnrollResponse>;
  try {
    body = EnrollResponse.parse(JSON.parse(text));
  } catch {
    throw new EnrollError(
      "BAD_RESPONSE",
      "enrollment answer is not {runnerId, tenantId, jwks} with Ed25519 keys",
    );
  }

  const stateDir = path.resolve(opts.stateDir ?? DEFAULT_STATE_DIR);
  const backupDir = path.resolve(opts.backupDir ?? DEFAULT_BACKUP_DIR);
  const sources = (opts.sources ?? []).map((s) => path.resolve(s));
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  await mkdir(backupDir, { recursive: true, mode: 0o700 });
  return writeConfig(opts.configPath, {
    controlPlaneUrl: base.toString().replace(/\/+$/, ""),
    runnerId: body.runnerId,
    tenantId: body.tenantId,
    name,
    keys: {
      signing: { privateJwk: sPriv, publicJwk: sPub },
      encryption: { privateJwk: ePriv, publicJwk: ePub },
    },
    jwks: { keys: body.jwks.keys },
    stateDir,
    backupDir,
    defaultSources: sources,
    ...(opts.allowedRoots?.length ? { allowedRoots: opts.allowedRoots.map((r) => path.resolve(r)) } : {}),
    ...(opts.hosting?.root || opts.hosting?.configPath
      ? {
          hosting: {
            ...(opts.hosting.root && { root: path.resolve(opts.hosting.root) }),
            ...(opts.hosting.configPath && { configPath: path.resolve(opts.hosting.configPath) }),
          },
        }
      : {}),
    concurrency: 1,
  } as Parameters<typeof writeConfig>[1]);
}
