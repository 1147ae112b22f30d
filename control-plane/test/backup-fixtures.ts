import { env } from "cloudflare:test";
import { expect } from "vitest";
import { db } from "../src/db/client";
import { backupCopies, backups } from "../src/db/schema";
import { newId } from "../src/lib/ids";
import { call, type TestUser } from "./helpers";

/** Backups and destinations for route tests, written without a runner having done any work. */

/** Tests assert that this value never leaves the control plane. */
export const S3_TEST_SECRET = "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY";

export const COMPLETED_BACKUP_FILE = "site_full_20260101_000000.tar.zst";
export const COMPLETED_BACKUP_SIZE = 10;
export const COMPLETED_BACKUP_SHA256 = "a".repeat(64);

export const s3DestinationBody = (name = "offsite") => ({
  name,
  kind: "s3",
  config: { bucket: "cairn-backups", prefix: "web", endpoint: "http://127.0.0.1:4569", pathStyle: true },
  credentials: { accessKeyId: "AKIDEXAMPLE", secretAccessKey: S3_TEST_SECRET },
});

/** Creates a destination through the API and returns its id. */
export async function createDestination(
  user: TestUser,
  body: unknown = s3DestinationBody(),
): Promise<string> {
  const r = await call("/api/v1/destinations", { body, token: user.token });
  expect(r.status).toBe(201);
  return r.body.id as string;
}

/** A completed backup on the runner's disk only, inserted straight into D1; returns its id. */
export async function insertCompletedBackup(tenantId: string, runnerId: string): Promise<string> {
  const backupId = newId("bkp");
  const now = Date.now();
  await db(env.DB)
    .insert(backups)
    .values({
      id: backupId,
      tenantId,
      runnerId,
      jobId: newId("job"),
      name: "site",
      kind: "full",
      status: "completed",
      fileName: COMPLETED_BACKUP_FILE,
      size: COMPLETED_BACKUP_SIZE,
      sha256: COMPLETED_BACKUP_SHA256,
      fileCount: 1,
      encryptionMode: "none",
      chainRootId: backupId,
      createdAt: now,
      completedAt: now,
    });
  return backupId;
}

/** A completed backup that also has a completed copy on `destinationId`; returns the backup's id. */
export async function insertCompletedCopy(
  tenantId: string,
  runnerId: string,
  destinationId: string,
): Promise<string> {
  const backupId = await insertCompletedBackup(tenantId, runnerId);
  const now = Date.now();
  await db(env.DB)
    .insert(backupCopies)
    .values({
      id: newId("cpy"),
      tenantId,
      backupId,
      destinationId,
      status: "completed",
      objectName: COMPLETED_BACKUP_FILE,
      size: COMPLETED_BACKUP_SIZE,
      sha256: COMPLETED_BACKUP_SHA256,
      bytesDone: COMPLETED_BACKUP_SIZE,
      createdAt: now,
      updatedAt: now,
    });
  return backupId;
}
