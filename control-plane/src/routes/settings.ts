import { Hono } from "hono";
import { z } from "zod";
import type { AppEnv } from "../env";
import { validationFailed } from "../errors";
import { activity, noteActivity } from "../lib/activity";
import { currentUser, requireAuth } from "../lib/auth";
import { effectiveSettings, putSetting, SETTING_KEYS, SETTINGS, type SettingKey } from "../lib/settings";
import { readJson } from "../lib/validate";

/** Tenant settings (limits). GET shows effective values; PUT writes the caller's tenant row. */
export const settingsRoutes = new Hono<AppEnv>();

const PutBody = z.record(z.string(), z.unknown());

settingsRoutes.get("/", requireAuth("settings.manage"), async (c) => {
  return c.json({ settings: await effectiveSettings(c.env, currentUser(c).tenantId) });
});

settingsRoutes.put("/", activity("settings.update"), requireAuth("settings.manage"), async (c) => {
  const body = await readJson(c, PutBody);
  const user = currentUser(c);
  const entries = Object.entries(body);
  if (entries.length === 0) throw validationFailed("body: give at least one setting");
  // Validate every key first: a bad value leaves all settings as they were.
  const valid: [SettingKey, unknown][] = [];
  for (const [k, v] of entries) {
    if (!(SETTING_KEYS as string[]).includes(k))
      throw validationFailed(`${k}: unknown setting (known: ${SETTING_KEYS.join(", ")})`);
    const r = SETTINGS[k as SettingKey].schema.safeParse(v);
    if (!r.success) throw validationFailed(`${k}: ${r.error.issues[0]?.message ?? "invalid"}`);
    valid.push([k as SettingKey, r.data]);
  }
  for (const [key, value] of valid)
    await putSetting(c.env, { tenantId: user.tenantId, key, value, userId: user.id });
  noteActivity(c, { details: Object.fromEntries(valid) });
  return c.json({ settings: await effectiveSettings(c.env, user.tenantId) });
});
