import { z } from "zod";
import { RemoteDestinationSpec } from "../destinations";
import { BackupKind } from "../jobs";

/**
 * The signed job. A runner runs nothing that does not arrive as a JWS
 * (header `{alg:"EdDSA", kid, typ:"cairn-job+jwt"}`) whose payload parses as `JobClaims`.
 * See docs/PROTOCOL.md for the verification order.
 */

const Id = z
  .string()
  .min(1)
  .max(64)
  .regex(/^[A-Za-z0-9_-]+$/);

/** Binds an archive to its backup, tenant and chain: authenticated as associated data. */
export const ArchiveBinding = z.object({
  backupId: Id,
  tenantId: Id,
  chainRootId: Id,
  parentId: Id.nullable(),
});
export type ArchiveBinding = z.infer<typeof ArchiveBinding>;

/** Encryption as the job states it. Keys and passwords never appear here: they travel in `secrets`. */
export const JobEncryption = z.discriminatedUnion("mode", [
  z.object({ mode: z.literal("none") }),
  /** Panel key: data key arrives in secrets.dataKey; `wrappedKey` (by the tenant's panel key `keyId`) goes into the header. */
  z.object({ mode: z.literal("panel"), keyId: Id, wrappedKey: z.string().min(1).max(512) }),
  /** Password: the password arrives in secrets.password; the control plane never stores it. */
  z.object({ mode: z.literal("password") }),
]);
export type JobEncryption = z.infer<typeof JobEncryption>;

/** A configured remote destination: non-secret spec here, its credentials in `JobSecrets.destinations[destinationId]`. */
export const RemoteJobDestination = z.object({
  kind: z.literal("remote"),
  destinationId: Id,
  destination: RemoteDestinationSpec,
});
export type RemoteJobDestination = z.infer<typeof RemoteJobDestination>;

/** Where the archive goes. `local` writes under the runner's configured backup directory. */
export const JobDestination = z.discriminatedUnion("kind", [
  z.object({ kind: z.literal("local") }),
  RemoteJobDestination,
]);
export type JobDestination = z.infer<typeof JobDestination>;

/** Hosting selection (docs/HOSTING.md): domains x components; names are checked again by the runner. */
export const HOSTING_COMPONENTS = ["web", "db", "mail", "dns", "ssl", "router"] as const;
export const HostingComponent = z.enum(HOSTING_COMPONENTS);
export type HostingComponent = z.infer<typeof HostingComponent>;
export const HostingSelection = z.object({
  domains: z.union([z.literal("all"), z.array(z.string().min(1).max(253)).min(1).max(2000)]),
  components: z.array(HostingComponent).min(1).max(6),
});
export type HostingSelection = z.infer<typeof HostingSelection>;

export const BackupJobParams = z.object({
  binding: ArchiveBinding,
  name: z.string().min(1).max(64),
  kind: BackupKind,
  compressionLevel: z.number().int().min(1).max(9),
  /** Absolute paths; omitted = the runner's configured default sources. Must lie within the runner's allowed roots. */
  sources: z.array(z.string().min(1).max(4096)).max(64).optional(),
  destination: JobDestination,
  encryption: JobEncryption,
  /** Auto-sync: the archive is also streamed to each of these (one read of the sources); each copy fails alone. */
  copies: z.array(RemoteJobDestination).max(8).optional(),
  /** Hosting backup: entries come from the runner's host inventory instead of `sources`. */
  hosting: HostingSelection.optional(),
});
export type BackupJobParams = z.infer<typeof BackupJobParams>;

export const RestoreJobParams = z.object({
  binding: ArchiveBinding,
  fileName: z.string().min(1).max(255),
  destination: JobDestination,
  encryption: JobEncryption,
  target: z.string().min(1).max(4096),
  only: z.array(z.string().min(1).max(1024)).max(64).optional(),
  conflict: z.enum(["skip", "overwrite", "rename"]).default("skip"),
  /** Hosting restore (phased, by domain and component); `target` is then the restore's root for files. */
  hosting: HostingSelection.extend({ safetyBackup: z.boolean().default(true) }).optional(),
});
export type RestoreJobParams = z.infer<typeof RestoreJobParams>;

export const VerifyJobParams = z.object({
  binding: ArchiveBinding,
  fileName: z.string().min(1).max(255),
  destination: JobDestination,
  encryption: JobEncryption,
});
export type VerifyJobParams = z.infer<typeof VerifyJobParams>;

/** Test Connection: write, read back and delete a probe object on one destination. */
export const TestDestinationJobParams = z.object({ target: RemoteJobDestination });
export type TestDestinationJobParams = z.infer<typeof TestDestinationJobParams>;

/** Copy an existing archive (and its manifest) from `source` to `target`; size and sha256 checked after upload. */
export const SyncJobParams = z.object({
  binding: ArchiveBinding,
  fileName: z.string().min(1).max(255),
  size: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  source: JobDestination,
  target: RemoteJobDestination,
  /** Retry from zero: discard an upload a paused or failed attempt kept, instead of resuming it. */
  restart: z.boolean().optional(),
  /** Abandon: only abort what a paused or failed attempt kept (the copy was deleted); copy nothing. */
  discard: z.boolean().optional(),
});
export type SyncJobParams = z.infer<typeof SyncJobParams>;

/** Runner-relayed download: stream one archive from `source` to the control plane's relay `relayId`. */
export const RelayUploadJobParams = z.object({
  relayId: Id,
  fileName: z.string().min(1).max(255),
  size: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  source: JobDestination,
});
export type RelayUploadJobParams = z.infer<typeof RelayUploadJobParams>;

export const JobSpec = z.discriminatedUnion("type", [
  z.object({ type: z.literal("backup"), params: BackupJobParams }),
  z.object({ type: z.literal("restore"), params: RestoreJobParams }),
  z.object({ type: z.literal("verify"), params: VerifyJobParams }),
  z.object({ type: z.literal("test-destination"), params: TestDestinationJobParams }),
  z.object({ type: z.literal("sync"), params: SyncJobParams }),
  z.object({ type: z.literal("relay-upload"), params: RelayUploadJobParams }),
]);
export type JobSpec = z.infer<typeof JobSpec>;

export const JobClaims = z.object({
  iss: z.string(),
  /** The runner id this job is for. */
  aud: z.string(),
  /** Tenant id. */
  sub: z.string(),
  /** The job id: also the one-time id for replay protection. */
  jti: Id,
  iat: z.number().int(),
  exp: z.number().int(),
  job: JobSpec,
  /** Compact JWE (ECDH-ES+A256KW / A256GCM) to the runner's X25519 key, holding `JobSecrets`. */
  secrets: z
    .string()
    .max(16 * 1024)
    .optional(),
});
export type JobClaims = z.infer<typeof JobClaims>;

/** Decrypted content of `JobClaims.secrets`. */
export const JobSecrets = z.object({
  /** base64 of a 32-byte data key (panel mode). */
  dataKey: z.string().optional(),
  password: z.string().max(1024).optional(),
  /** Credentials of the remote destinations this job names, by destination id. */
  destinations: z.record(z.string(), z.record(z.string(), z.unknown())).optional(),
});
export type JobSecrets = z.infer<typeof JobSecrets>;
