import { and, eq, inArray } from "drizzle-orm";
import { z } from "zod";
import { db } from "../db/client";
import { settings } from "../db/schema";
import type { Env } from "../env";
import { DEFAULT_DOWNLOADS_PER_HOUR } from "../../../shared/destinations";

/** Installation-wide defaults live under this tenant id; a tenant's own row overrides them. */
export const GLOBAL_SETTINGS_TENANT = "*";

/** Known settings: key → schema and built-in default (used when neither row exists). */
export const SETTINGS = {
  "restore.maxConcurrent": { schema: z.number().int().min(1).max(100), default: 2 },
  /** Presigned downloads per user per hour (routes/backup-copies.ts). */
  "download.perHour": { schema: z.number().int().min(1).max(100000), default: DEFAULT_DOWNLOADS_PER_HOUR },
} as const;
export type SettingKey = keyof typeof SETTINGS;
export const SETTING_KEYS = Object.keys(SETTINGS) as SettingKey[];

type SettingValue<K extends SettingKey> = z.infer<(typeof SETTINGS)[K]["schema"]>;

/** The effective value for a tenant: tenant row, else the "*" row, else the built-in default. A stored value that no longer parses is ignored. */
export async function getSetting<K extends SettingKey>(
  env: Env,
  tenantId: string,
  key: K,
): Promise<SettingValue<K>> {
  const rows = await db(env.DB)
    .select()
    .from(settings)
    .where(and(eq(settings.key, key), inArray(settings.tenantId, [tenantId, GLOBAL_SETTINGS_TENANT])))
    .all();
  const def = SETTINGS[key];
  for (const tid of [tenantId, GLOBAL_SETTINGS_TENANT]) {
    const row = rows.find((r) => r.tenantId === tid);
    if (!row) continue;
    try {
      const parsed = def.schema.safeParse(JSON.parse(row.value));
      if (parsed.success) return parsed.data as SettingValue<K>;
    } catch {
      // not JSON: fall through to the next level
    }
  }
  return def.default as SettingValue<K>;
}

export async function effectiveSettings(env: Env, tenantId: string) {
  const out: Record<string, unknown> = {};
  for (const k of SETTING_KEYS) out[k] = await getSetting(env, tenantId, k);
  return out;
}

export async function putSetting(
  env: Env,
  a: { tenantId: string; key: SettingKey; value: unknown; userId: string },
) {
  await db(env.DB)
    .insert(settings)
    .values({
      tenantId: a.tenantId,
      key: a.key,
      value: JSON.stringify(a.value),
      updatedBy: a.userId,
      updatedAt: Date.now(),
    })
    .onConflictDoUpdate({
      target: [settings.tenantId, settings.key],
      set: { value: JSON.stringify(a.value), updatedBy: a.userId, updatedAt: Date.now() },
    });
}
