import { and, eq } from "drizzle-orm";
import type { DestinationKind, RemoteDestinationSpec } from "../../../shared/destinations";
import type { RemoteJobDestination } from "../../../shared/protocol/job-claims";
import { db } from "../db/client";
import { destinations } from "../db/schema";
import type { Env } from "../env";
import { conflict, notFound } from "../errors";
import { openCredentials } from "./destination-credentials";

export type DestinationRow = typeof destinations.$inferSelect;

/** The API shape: config and status; credentials are write-only, only their presence is shown. */
export function destinationView(d: DestinationRow) {
  return {
    id: d.id,
    tenantId: d.tenantId,
    name: d.name,
    kind: d.kind,
    config: JSON.parse(d.config) as Record<string, unknown>,
    hasCredentials: d.encryptedCredentials !== null,
    disabled: d.disabled,
    lastTest: d.lastTestStatus
      ? {
          status: d.lastTestStatus,
          at: d.lastTestAt ? new Date(d.lastTestAt).toISOString() : null,
          error: d.lastTestError,
        }
      : null,
    createdAt: new Date(d.createdAt).toISOString(),
    updatedAt: new Date(d.updatedAt).toISOString(),
  };
}

export async function findDestination(env: Env, id: string, scope: string | null): Promise<DestinationRow> {
  const row = await db(env.DB)
    .select()
    .from(destinations)
    .where(and(eq(destinations.id, id), scope ? eq(destinations.tenantId, scope) : undefined))
    .get();
  if (!row) throw notFound("destination");
  return row;
}

/** What a job carries in its signed params (no secrets). */
export function jobDestination(d: DestinationRow): RemoteJobDestination {
  if (d.kind === "local") throw conflict("local destinations are not remote");
  return {
    kind: "remote",
    destinationId: d.id,
    destination: { kind: d.kind as DestinationKind, config: JSON.parse(d.config) } as RemoteDestinationSpec,
  };
}

/** Credentials for a job's JWE, keyed by destination id. */
export async function jobCredentials(
  env: Env,
  rows: DestinationRow[],
): Promise<Record<string, Record<string, unknown>>> {
  const out: Record<string, Record<string, unknown>> = {};
  for (const d of rows) {
    if (d.disabled) throw conflict(`destination ${d.name} is disabled`);
    if (!d.encryptedCredentials) throw conflict(`destination ${d.name} has no credentials`);
    out[d.id] = await openCredentials(env, d.tenantId, d.id, d.encryptedCredentials);
  }
  return out;
}
