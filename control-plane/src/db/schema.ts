import { sqliteTable, text, integer, index, uniqueIndex } from "drizzle-orm/sqlite-core";

/**
 * D1 schema. Ids are prefixed random text ids (`ten_…`, `usr_…`, `bkp_…`) so later tables
 * (destinations, schedules, rate limits, settings) can be added without renumbering anything.
 * Every tenant-owned row carries tenant_id; lists are served from (tenant_id, created_at) indexes.
 * Timestamps are epoch milliseconds.
 */

export const tenants = sqliteTable(
  "tenants",
  {
    id: text("id").primaryKey(),
    /** Reseller trees: a tenant may belong to a parent tenant. */
    parentId: text("parent_id"),
    name: text("name").notNull(),
    createdAt: integer("created_at").notNull(),
  },
  (t) => [index("tenants_parent_idx").on(t.parentId)],
);

export const users = sqliteTable(
  "users",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id").notNull(),
    email: text("email").notNull(),
    /** `pbkdf2-sha256$<iterations>$<salt b64>$<hash b64>` */
    passwordHash: text("password_hash").notNull(),
    role: text("role", { enum: ["ROOT", "ADMIN", "RESELLER", "USER"] }).notNull(),
    /** `{grant?: Permission[], revoke?: Permission[]}` */
    permissions: text("permissions").notNull().default("{}"),
    disabled: integer("disabled", { mode: "boolean" }).notNull().default(false),
    createdAt: integer("created_at").notNull(),
  },
  (t) => [
    uniqueIndex("users_email_uq").on(t.email),
    index("users_tenant_created_idx").on(t.tenantId, t.createdAt),
  ],
);

export const sessions = sqliteTable(
  "sessions",
  {
    id: text("id").primaryKey(),
    /** SHA-256 hex of the bearer token; the token itself is never stored. */
    tokenHash: text("token_hash").notNull(),
    userId: text("user_id").notNull(),
    tenantId: text("tenant_id").notNull(),
    expiresAt: integer("expires_at").notNull(),
    createdAt: integer("created_at").notNull(),
  },
  (t) => [uniqueIndex("sessions_token_uq").on(t.tokenHash), index("sessions_expires_idx").on(t.expiresAt)],
);

export const runners = sqliteTable(
  "runners",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id").notNull(),
    name: text("name").notNull(),
    hostname: text("hostname").notNull(),
    /** Public JWKs only (JSON); the private halves never leave the runner. */
    signingPublicKey: text("signing_public_key").notNull(),
    encryptionPublicKey: text("encryption_public_key").notNull(),
    status: text("status", { enum: ["online", "offline"] })
      .notNull()
      .default("offline"),
    lastSeenAt: integer("last_seen_at"),
    revokedAt: integer("revoked_at"),
    createdAt: integer("created_at").notNull(),
  },
  (t) => [index("runners_tenant_created_idx").on(t.tenantId, t.createdAt)],
);

export const enrollmentTokens = sqliteTable(
  "enrollment_tokens",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id").notNull(),
    tokenHash: text("token_hash").notNull(),
    expiresAt: integer("expires_at").notNull(),
    usedAt: integer("used_at"),
    usedByRunnerId: text("used_by_runner_id"),
    createdBy: text("created_by").notNull(),
    createdAt: integer("created_at").notNull(),
  },
  (t) => [
    uniqueIndex("enrollment_tokens_hash_uq").on(t.tokenHash),
    index("enrollment_tokens_tenant_created_idx").on(t.tenantId, t.createdAt),
    index("enrollment_tokens_expires_idx").on(t.expiresAt),
  ],
);

export const jobs = sqliteTable(
  "jobs",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id").notNull(),
    runnerId: text("runner_id").notNull(),
    backupId: text("backup_id"),
    type: text("type", {
      enum: ["backup", "restore", "verify", "test-destination", "sync", "relay-upload"],
    }).notNull(),
    state: text("state", {
      enum: ["PENDING", "DELIVERED", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED", "INTERRUPTED"],
    }).notNull(),
    /** Job params as signed into the token; never secrets (those live only in the JWE). */
    params: text("params").notNull(),
    progress: text("progress"),
    errorCode: text("error_code"),
    errorMessage: text("error_message"),
    result: text("result"),
    createdBy: text("created_by"),
    createdAt: integer("created_at").notNull(),
    updatedAt: integer("updated_at").notNull(),
    startedAt: integer("started_at"),
    finishedAt: integer("finished_at"),
  },
  (t) => [
    index("jobs_tenant_created_idx").on(t.tenantId, t.createdAt),
    index("jobs_runner_state_idx").on(t.runnerId, t.state),
  ],
);

export const backups = sqliteTable(
  "backups",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id").notNull(),
    runnerId: text("runner_id").notNull(),
    jobId: text("job_id").notNull(),
    name: text("name").notNull(),
    kind: text("kind", { enum: ["full", "incremental"] }).notNull(),
    status: text("status", { enum: ["queued", "running", "completed", "partial", "failed"] }).notNull(),
    fileName: text("file_name"),
    size: integer("size"),
    sha256: text("sha256"),
    fileCount: integer("file_count"),
    encryptionMode: text("encryption_mode", { enum: ["none", "panel", "password"] }).notNull(),
    /** Panel mode: tenant panel key id and this backup's data key wrapped by it (AES-256-GCM, iv||ct, base64url). */
    panelKeyId: text("panel_key_id"),
    wrappedDataKey: text("wrapped_data_key"),
    chainRootId: text("chain_root_id").notNull(),
    parentId: text("parent_id"),
    errorCode: text("error_code"),
    errorMessage: text("error_message"),
    createdAt: integer("created_at").notNull(),
    completedAt: integer("completed_at"),
  },
  (t) => [
    index("backups_tenant_created_idx").on(t.tenantId, t.createdAt),
    index("backups_chain_idx").on(t.chainRootId),
    index("backups_runner_name_idx").on(t.runnerId, t.name, t.createdAt),
  ],
);

export const tenantKeys = sqliteTable(
  "tenant_keys",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id").notNull(),
    /** The 32-byte panel key wrapped by MASTER_KEY (AES-256-GCM, iv||ct, base64url). */
    wrappedKey: text("wrapped_key").notNull(),
    createdAt: integer("created_at").notNull(),
    retiredAt: integer("retired_at"),
  },
  (t) => [index("tenant_keys_tenant_created_idx").on(t.tenantId, t.createdAt)],
);

export const activityLog = sqliteTable(
  "activity_log",
  {
    id: text("id").primaryKey(),
    /** Null when the caller could not be tied to a tenant (e.g. a failed login for an unknown email). */
    tenantId: text("tenant_id"),
    actorType: text("actor_type", { enum: ["user", "runner", "system", "anonymous"] }).notNull(),
    actorId: text("actor_id"),
    operation: text("operation").notNull(),
    status: text("status", { enum: ["success", "failure"] }).notNull(),
    targetType: text("target_type"),
    targetId: text("target_id"),
    details: text("details"),
    ip: text("ip"),
    createdAt: integer("created_at").notNull(),
  },
  (t) => [index("activity_tenant_created_idx").on(t.tenantId, t.createdAt)],
);

/** What a runner reported about its host (inventory): one row per domain, replaced on each report. */
export const runnerDomains = sqliteTable(
  "runner_domains",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id").notNull(),
    runnerId: text("runner_id").notNull(),
    domain: text("domain").notNull(),
    /** Components present for this domain, JSON array of "web"|"db"|"mail"|"dns"|"ssl". */
    components: text("components").notNull().default("[]"),
    /** Databases mapped to this domain, JSON array of {engine, name}. */
    databases: text("databases").notNull().default("[]"),
    /** Free-form sizes/counts the runner reported (JSON). */
    details: text("details"),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [
    uniqueIndex("runner_domains_runner_domain_uq").on(t.runnerId, t.domain),
    index("runner_domains_tenant_idx").on(t.tenantId, t.runnerId),
  ],
);

/** Settings (limits, defaults). tenant_id "*" holds installation-wide defaults; a tenant row overrides it. */
export const settings = sqliteTable(
  "settings",
  {
    tenantId: text("tenant_id").notNull(),
    key: text("key").notNull(),
    /** JSON value */
    value: text("value").notNull(),
    updatedBy: text("updated_by"),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [uniqueIndex("settings_tenant_key_uq").on(t.tenantId, t.key)],
);

/** Fixed-window counters for per-user / per-tenant operation rate limits. */
export const rateLimitBuckets = sqliteTable("rate_limit_buckets", {
  /** `<operation>:<scope id>:<window start ms>` */
  key: text("key").primaryKey(),
  count: integer("count").notNull(),
  expiresAt: integer("expires_at").notNull(),
});

/** Remote storage targets. Credentials are write-only: encrypted under MASTER_KEY, never returned or logged. */
export const destinations = sqliteTable(
  "destinations",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id").notNull(),
    name: text("name").notNull(),
    kind: text("kind", { enum: ["local", "s3", "gcs", "gdrive", "sftp", "ftp", "ftps"] }).notNull(),
    /** Non-secret settings (bucket, prefix, endpoint, region, host, port, path, storage class, ...), JSON. */
    config: text("config").notNull(),
    /** AES-256-GCM under MASTER_KEY (iv||ct, base64url) of the credentials JSON; AAD names tenant + destination. */
    encryptedCredentials: text("encrypted_credentials"),
    lastTestStatus: text("last_test_status", { enum: ["ok", "failed"] }),
    lastTestAt: integer("last_test_at"),
    lastTestError: text("last_test_error"),
    disabled: integer("disabled", { mode: "boolean" }).notNull().default(false),
    createdBy: text("created_by"),
    createdAt: integer("created_at").notNull(),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [index("destinations_tenant_created_idx").on(t.tenantId, t.createdAt)],
);

/** One copy of a backup on one destination (the primary write or a later sync). */
export const backupCopies = sqliteTable(
  "backup_copies",
  {
    id: text("id").primaryKey(),
    tenantId: text("tenant_id").notNull(),
    backupId: text("backup_id").notNull(),
    destinationId: text("destination_id").notNull(),
    jobId: text("job_id"),
    status: text("status", { enum: ["pending", "running", "paused", "completed", "failed"] }).notNull(),
    objectName: text("object_name"),
    size: integer("size"),
    sha256: text("sha256"),
    bytesDone: integer("bytes_done").notNull().default(0),
    errorCode: text("error_code"),
    errorMessage: text("error_message"),
    createdAt: integer("created_at").notNull(),
    updatedAt: integer("updated_at").notNull(),
  },
  (t) => [
    uniqueIndex("backup_copies_backup_dest_uq").on(t.backupId, t.destinationId),
    index("backup_copies_tenant_idx").on(t.tenantId, t.createdAt),
  ],
);

/**
 * Pending Google Drive authorizations started from the console. Only the SHA-256 of the `state` is kept:
 * the row is consumed (deleted) by the callback, so a state works once, for one destination and one user.
 */
export const oauthStates = sqliteTable("oauth_states", {
  stateHash: text("state_hash").primaryKey(),
  destinationId: text("destination_id").notNull(),
  tenantId: text("tenant_id").notNull(),
  userId: text("user_id").notNull(),
  redirectUri: text("redirect_uri").notNull(),
  expiresAt: integer("expires_at").notNull(),
  createdAt: integer("created_at").notNull(),
});
