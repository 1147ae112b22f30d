import type { RunnerSession } from "./durable-objects/runner-session";
import type { DownloadRelay } from "./durable-objects/download-relay";
import type { Role } from "../../shared/rbac";

/** Bindings of the Worker (wrangler.toml + secrets from `.dev.vars`). */
export interface Env {
  DB: D1Database;
  RUNNER_SESSION: DurableObjectNamespace<RunnerSession>;
  /** One per runner-relayed download (idFromName(relayId)). */
  DOWNLOAD_RELAY: DurableObjectNamespace<DownloadRelay>;
  /** JSON array of Ed25519 private JWKs, each with `kid`; the first signs, all are published. */
  JOB_SIGNING_KEYS: string;
  /** base64 of 32 bytes; wraps each tenant's panel key at rest. */
  MASTER_KEY: string;
  /** Guards first-run bootstrap (`POST /api/v1/setup`). */
  SETUP_TOKEN: string;
  HEARTBEAT_INTERVAL_MS?: string;
  JOB_LEASE_MS?: string;
  /** How long a relayed download waits for the other side (ms); default RELAY_WAIT_MS. */
  RELAY_WAIT_MS?: string;
}

/** The authenticated caller, set by the session middleware. */
export interface AuthUser {
  id: string;
  tenantId: string;
  email: string;
  role: Role;
  permissions: { grant?: string[]; revoke?: string[] };
}

/** What the activity middleware records for the current request. */
export interface ActivityDraft {
  operation: string;
  targetType?: string;
  targetId?: string;
  details?: Record<string, unknown>;
  tenantId?: string | null;
  actorType?: "user" | "runner" | "system" | "anonymous";
  actorId?: string | null;
}

export type AppEnv = {
  Bindings: Env;
  Variables: { user?: AuthUser; activity?: ActivityDraft };
};
