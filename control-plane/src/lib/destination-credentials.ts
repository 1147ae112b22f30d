import { masterKeyBytes, unwrapKey, wrapKey } from "../crypto/key-wrap";
import type { Env } from "../env";

/**
 * Destination credentials at rest: the credentials JSON sealed with AES-256-GCM under MASTER_KEY,
 * associated data naming tenant and destination, so a sealed blob copied to another row never opens.
 * They leave the Worker only inside a job's JWE to one runner.
 */
const aad = (tenantId: string, destinationId: string) =>
  `cairn-destination-credentials:${tenantId}:${destinationId}`;

export async function sealCredentials(
  env: Env,
  tenantId: string,
  destinationId: string,
  credentials: Record<string, unknown>,
): Promise<string> {
  const bytes = new TextEncoder().encode(JSON.stringify(credentials));
  return wrapKey(masterKeyBytes(env.MASTER_KEY), bytes, aad(tenantId, destinationId));
}

export async function openCredentials(
  env: Env,
  tenantId: string,
  destinationId: string,
  sealed: string,
): Promise<Record<string, unknown>> {
  const bytes = await unwrapKey(masterKeyBytes(env.MASTER_KEY), sealed, aad(tenantId, destinationId));
  return JSON.parse(new TextDecoder().decode(bytes)) as Record<string, unknown>;
}
