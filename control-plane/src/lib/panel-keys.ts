import { and, desc, eq, isNull } from "drizzle-orm";
import { db } from "../db/client";
import { tenantKeys } from "../db/schema";
import type { Env } from "../env";
import { masterKeyBytes, unwrapKey, wrapKey } from "../crypto/key-wrap";
import { newId } from "./ids";

/**
 * Panel-mode encryption keys. Each tenant has a panel key (32 random bytes) stored wrapped by MASTER_KEY;
 * each backup has its own 32-byte data key stored wrapped by the panel key. Both wraps are AES-256-GCM
 * (iv||ct, base64url) with associated data naming the owner, so a wrapped key moved to another row fails.
 */

const panelAad = (tenantId: string, keyId: string) => `cairn-panel-key:${tenantId}:${keyId}`;
const dataAad = (tenantId: string, backupId: string) => `cairn-data-key:${tenantId}:${backupId}`;

export async function currentPanelKey(
  env: Env,
  tenantId: string,
): Promise<{ keyId: string; key: Uint8Array }> {
  const d = db(env.DB);
  const master = masterKeyBytes(env.MASTER_KEY);
  const row = await d
    .select()
    .from(tenantKeys)
    .where(and(eq(tenantKeys.tenantId, tenantId), isNull(tenantKeys.retiredAt)))
    .orderBy(desc(tenantKeys.createdAt))
    .get();
  if (row) return { keyId: row.id, key: await unwrapKey(master, row.wrappedKey, panelAad(tenantId, row.id)) };
  const keyId = newId("pk");
  const key = crypto.getRandomValues(new Uint8Array(32));
  await d.insert(tenantKeys).values({
    id: keyId,
    tenantId,
    wrappedKey: await wrapKey(master, key, panelAad(tenantId, keyId)),
    createdAt: Date.now(),
  });
  return { keyId, key };
}

export async function panelKeyById(env: Env, tenantId: string, keyId: string): Promise<Uint8Array> {
  const row = await db(env.DB)
    .select()
    .from(tenantKeys)
    .where(and(eq(tenantKeys.id, keyId), eq(tenantKeys.tenantId, tenantId)))
    .get();
  if (!row) throw new Error(`panel key ${keyId} not found`);
  return unwrapKey(masterKeyBytes(env.MASTER_KEY), row.wrappedKey, panelAad(tenantId, keyId));
}

export async function newDataKey(
  env: Env,
  tenantId: string,
  backupId: string,
): Promise<{ keyId: string; dataKey: Uint8Array; wrappedKey: string }> {
  const panel = await currentPanelKey(env, tenantId);
  const dataKey = crypto.getRandomValues(new Uint8Array(32));
  return {
    keyId: panel.keyId,
    dataKey,
    wrappedKey: await wrapKey(panel.key, dataKey, dataAad(tenantId, backupId)),
  };
}

export async function unwrapDataKey(
  env: Env,
  a: { tenantId: string; backupId: string; keyId: string; wrappedKey: string },
): Promise<Uint8Array> {
  const panel = await panelKeyById(env, a.tenantId, a.keyId);
  return unwrapKey(panel, a.wrappedKey, dataAad(a.tenantId, a.backupId));
}
