/**
 * What the sync and destination job tests share: claims as the control plane would sign them (the
 * tests hand them to the handlers directly), a sync job of an archive in the backup directory, remote
 * targets with their secrets, S3 destinations on the test s3rver, and the check that a job ended
 * because it was aborted.
 */
import { expect } from "vitest";
import type { JobClaims, JobSecrets, RemoteJobDestination } from "../../../shared/protocol/job-claims";
import { BINDING } from "../archive/test-helpers";
import type { RunnerConfig } from "../config";
import { S3Destination } from "../destinations/s3";
import { S3RVER_CREDENTIALS, type TestS3Server } from "../../../tests/destinations/s3-server";

export interface ArchiveRecord {
  fileName: string;
  size: number;
  sha256: string;
}

/** Claims of `job` for this runner, with a fresh job id. */
export function jobClaims(config: RunnerConfig, job: JobClaims["job"]): JobClaims {
  return {
    iss: "cairn-control-plane",
    aud: config.runnerId,
    sub: config.tenantId,
    jti: `job_${Math.random().toString(36).slice(2)}`,
    iat: 0,
    exp: 0,
    job,
  };
}

/** A sync job that copies `archive` (a file in the backup directory) of backup `backupId` to `target`. */
export function syncCopyJob(
  backupId: string,
  archive: ArchiveRecord,
  target: RemoteJobDestination,
  opts: { restart?: boolean; discard?: boolean } = {},
): JobClaims["job"] {
  return {
    type: "sync",
    params: {
      binding: { ...BINDING, backupId },
      fileName: archive.fileName,
      size: archive.size,
      sha256: archive.sha256,
      source: { kind: "local" },
      target,
      ...(opts.restart && { restart: true }),
      ...(opts.discard && { discard: true }),
    },
  };
}

/** A remote target and the job secrets that carry its credentials. */
export function remoteTarget(
  destinationId: string,
  destination: RemoteJobDestination["destination"],
  credentials: Record<string, unknown>,
): { destinationId: string; target: RemoteJobDestination; secrets: JobSecrets } {
  return {
    destinationId,
    target: { kind: "remote", destinationId, destination },
    secrets: { destinations: { [destinationId]: credentials } },
  };
}

/** s3rver's key pair as job credentials (a fresh object each time: tests may change theirs). */
export const s3rverKeys = (): Record<string, unknown> => ({
  accessKeyId: "S3RVER",
  secretAccessKey: "S3RVER",
});

/**
 * The job must end because of the abort, not succeed or fail for another reason. Depending on where the
 * upload is, the abort surfaces as the AbortError itself or as the destination's CANCELLED error; the
 * daemon then reports the signal's reason (PAUSED / CANCELLED) as the job's code.
 */
export async function expectStoppedByAbort(job: Promise<unknown>): Promise<void> {
  const err = (await job.then(
    () => new Error("the job finished although it was aborted"),
    (e: unknown) => e,
  )) as { name?: string; code?: string };
  expect(
    err.name === "AbortError" || err.code === "CANCELLED",
    `${err.name} ${err.code} ${String(err)}`,
  ).toBe(true);
}

/** A runner-side S3 destination on the test s3rver. */
export function s3rverDestination(
  s3: TestS3Server,
  o: { bucket: string; prefix: string; partSize: number; queueSize: number },
): S3Destination {
  return new S3Destination({
    type: "s3",
    bucket: o.bucket,
    prefix: o.prefix,
    endpoint: s3.endpoint,
    region: "us-east-1",
    pathStyle: true,
    credentials: { ...S3RVER_CREDENTIALS },
    partSize: o.partSize,
    queueSize: o.queueSize,
  });
}
