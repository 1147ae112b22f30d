import { readFile, stat } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";
import { writeFileAtomic } from "./util/atomic-write";

/**
 * The runner's config file: identity, private keys and the pinned control-plane JWKS.
 * It holds private keys, so it is always written 0600 and parsed strictly once at start.
 */

export const DEFAULT_CONFIG_PATH = "/etc/cairn/runner.json";
export const DEFAULT_STATE_DIR = "/var/lib/cairn-runner";
export const DEFAULT_BACKUP_DIR = "/var/backups/cairn";

export function defaultConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.CAIRN_RUNNER_CONFIG || DEFAULT_CONFIG_PATH;
}

export class ConfigError extends Error {
  constructor(
    readonly code: "CONFIG_NOT_FOUND" | "CONFIG_INVALID" | "CONFIG_IO",
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = "ConfigError";
  }
}

const b64url = z.string().regex(/^[A-Za-z0-9_-]+$/);
const OkpPublicJwk = (crv: "Ed25519" | "X25519") =>
  z.looseObject({ kty: z.literal("OKP"), crv: z.literal(crv), x: b64url, kid: z.string().optional() });
const OkpPrivateJwk = (crv: "Ed25519" | "X25519") => OkpPublicJwk(crv).extend({ d: b64url });

const KeyPair = (crv: "Ed25519" | "X25519") =>
  z.object({ privateJwk: OkpPrivateJwk(crv), publicJwk: OkpPublicJwk(crv) });

/** Control-plane job-signing keys: Ed25519 only, each with a kid (the job header names it). */
export const PinnedJwks = z.object({
  keys: z
    .array(OkpPublicJwk("Ed25519").extend({ kid: z.string().min(1) }))
    .min(1)
    .max(16),
});
export type PinnedJwks = z.infer<typeof PinnedJwks>;

const AbsPath = z
  .string()
  .min(1)
  .refine((p) => path.isAbsolute(p), "must be an absolute path");

export const RunnerConfig = z
  .object({
    controlPlaneUrl: z.url({ protocol: /^https?$/ }),
    runnerId: z.string().min(1).max(64),
    tenantId: z.string().min(1).max(64),
    name: z.string().min(1).max(255),
    keys: z.object({ signing: KeyPair("Ed25519"), encryption: KeyPair("X25519") }),
    jwks: PinnedJwks,
    stateDir: AbsPath,
    backupDir: AbsPath,
    defaultSources: z.array(AbsPath).default([]),
    /** Job sources and restore targets must resolve inside one of these. Defaults to defaultSources. */
    allowedRoots: z.array(AbsPath).optional(),
    concurrency: z.number().int().min(1).max(64).default(1),
    heartbeatIntervalMs: z.number().int().min(1000).optional(),
    /** Hosting server: conventional-layout root and/or host config file (docs/HOSTING.md). */
    hosting: z
      .object({ root: AbsPath.optional(), configPath: AbsPath.optional() })
      .refine((h) => h.root || h.configPath, "hosting needs root or configPath")
      .optional(),
  })
  .transform((c) => ({ ...c, allowedRoots: c.allowedRoots ?? c.defaultSources }));
export type RunnerConfig = z.output<typeof RunnerConfig>;
export type RunnerConfigInput = z.input<typeof RunnerConfig>;

export function parseConfig(raw: unknown, source = "config"): RunnerConfig {
  const r = RunnerConfig.safeParse(raw);
  if (!r.success) {
    const issues = r.error.issues.map((i) => `${i.path.join(".") || "(root)"}: ${i.message}`).join("; ");
    throw new ConfigError("CONFIG_INVALID", `${source}: invalid runner config: ${issues}`);
  }
  return r.data;
}

export interface LoadedConfig {
  config: RunnerConfig;
  /** Set when group/other can read the file: worth a loud warning, it holds private keys. */
  insecureMode?: number;
}

export async function loadConfig(file: string): Promise<LoadedConfig> {
  let text: string;
  let mode: number;
  try {
    text = await readFile(file, "utf8");
    mode = (await stat(file)).mode & 0o777;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") {
      throw new ConfigError(
        "CONFIG_NOT_FOUND",
        `${file}: no runner config (run \`cairn-runner enroll\` first)`,
      );
    }
    throw new ConfigError("CONFIG_IO", `${file}: cannot read runner config (${code ?? String(err)})`, {
      cause: err,
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new ConfigError("CONFIG_INVALID", `${file}: not valid JSON`);
  }
  const config = parseConfig(json, file);
  return (mode & 0o077) !== 0 ? { config, insecureMode: mode } : { config };
}

/** Validates first, so a bad config is never written over a good one. */
export async function writeConfig(file: string, config: RunnerConfigInput): Promise<RunnerConfig> {
  const parsed = parseConfig(config, file);
  await writeFileAtomic(file, JSON.stringify(config, null, 2) + "\n", 0o600);
  return parsed;
}
