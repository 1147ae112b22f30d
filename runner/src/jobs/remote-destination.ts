import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { JobRejectCode } from "../../../shared/errors";
import { CREDENTIAL_SCHEMAS } from "../../../shared/destinations";
import type { JobSecrets, RemoteJobDestination } from "../../../shared/protocol/job-claims";
import type { RunnerConfig } from "../config";
import { JobRejection } from "../daemon/job-verifier";
import { openDestination, type Destination, type DestinationSpec } from "../destinations";
import { destinationSpecSchema } from "../destinations/url";

const GCS_ENDPOINT = "https://storage.googleapis.com";

/**
 * A job's remote destination (signed non-secret spec + credentials from the job's JWE) → the runner's
 * DestinationSpec. Checked before the job is accepted: a missing or malformed credential set is
 * INVALID_PARAMS (rejected, never run). Error messages name fields, never values.
 */
export function remoteSpec(
  jd: RemoteJobDestination,
  secrets: JobSecrets,
  config: RunnerConfig,
): DestinationSpec {
  const raw = secrets.destinations?.[jd.destinationId];
  if (!raw)
    throw new JobRejection(JobRejectCode.InvalidParams, `no credentials for destination ${jd.destinationId}`);
  const kind = jd.destination.kind;
  const creds = CREDENTIAL_SCHEMAS[kind].safeParse(raw);
  if (!creds.success)
    throw new JobRejection(
      JobRejectCode.InvalidParams,
      `credentials of destination ${jd.destinationId}: ${creds.error.issues.map((i) => `${i.path.join(".") || "credentials"}: ${i.code}`).join(", ")}`,
    );
  const c = creds.data as Record<string, string | undefined>;
  let spec: unknown;
  switch (jd.destination.kind) {
    case "s3":
    case "gcs": {
      const cfg = jd.destination.config;
      const gcs = kind === "gcs";
      spec = {
        type: kind,
        bucket: cfg.bucket,
        prefix: cfg.prefix,
        endpoint: cfg.endpoint ?? (gcs ? GCS_ENDPOINT : undefined),
        region: cfg.region ?? (gcs ? "auto" : "us-east-1"),
        pathStyle: cfg.pathStyle,
        storageClass: cfg.storageClass,
        sse: cfg.sse,
        sseKmsKeyId: cfg.sseKmsKeyId,
        credentials: {
          accessKeyId: c.accessKeyId,
          secretAccessKey: c.secretAccessKey,
          sessionToken: c.sessionToken,
        },
      };
      break;
    }
    case "sftp": {
      const cfg = jd.destination.config;
      spec = {
        type: "sftp",
        host: cfg.host,
        port: cfg.port,
        user: cfg.user,
        path: cfg.path,
        privateKey: c.privateKey,
        passphrase: c.passphrase,
        password: c.password,
        // Pinned keys from the console when given; otherwise trust on first use, remembered in the runner's state.
        knownHostsFile: cfg.knownHosts ? knownHostsPath(config, jd.destinationId) : undefined,
        tofuStorePath: path.join(config.stateDir, "ssh-known-hosts.json"),
      };
      break;
    }
    case "ftp":
    case "ftps": {
      const cfg = jd.destination.config;
      spec = {
        type: "ftp",
        secure: kind === "ftps",
        host: cfg.host,
        port: cfg.port,
        user: cfg.user,
        password: c.password ?? "",
        path: cfg.path,
        ca: cfg.ca,
      };
      break;
    }
    case "gdrive": {
      const cfg = jd.destination.config;
      if (!c.refreshToken)
        throw new JobRejection(
          JobRejectCode.InvalidParams,
          `destination ${jd.destinationId} (gdrive) is not authorized yet: no refresh token (authorize it from the console)`,
        );
      spec = {
        type: "gdrive",
        folderId: cfg.folderId,
        tokens: { clientId: c.clientId, clientSecret: c.clientSecret, refreshToken: c.refreshToken },
        apiBase: cfg.apiBase,
        uploadBase: cfg.uploadBase,
        tokenUrl: cfg.tokenUrl,
      };
      break;
    }
  }
  const parsed = destinationSpecSchema.safeParse(spec);
  if (!parsed.success)
    throw new JobRejection(
      JobRejectCode.InvalidParams,
      `destination ${jd.destinationId}: ${parsed.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ")}`.slice(
        0,
        1000,
      ),
    );
  return parsed.data;
}

function knownHostsPath(config: RunnerConfig, destinationId: string): string {
  return path.join(config.stateDir, "known-hosts", `${destinationId}`);
}

/** Opens the destination (writing a pinned known_hosts file first when the job carries one). */
export async function openRemote(
  jd: RemoteJobDestination,
  secrets: JobSecrets,
  config: RunnerConfig,
): Promise<Destination> {
  const spec = remoteSpec(jd, secrets, config);
  if (jd.destination.kind === "sftp" && jd.destination.config.knownHosts) {
    const file = knownHostsPath(config, jd.destinationId);
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    await writeFile(file, jd.destination.config.knownHosts, { mode: 0o600 });
  }
  return openDestination(spec);
}
