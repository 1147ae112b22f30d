import { Hono } from "hono";
import { relayStub } from "../durable-objects/download-relay";
import type { AppEnv } from "../env";
import { unauthorized, validationFailed } from "../errors";
import { activity, noteActivity } from "../lib/activity";
import { verifyRelayToken } from "../lib/relay-token";

/**
 * Runner-relayed downloads, mounted under /api/v1/relay. The browser's GET carries the one-time key from
 * the download response; the runner's PUT carries its own signed relay token. Bytes stream through the
 * relay's Durable Object, never buffered whole.
 */
const RELAY_ID = /^[A-Za-z0-9_-]{1,64}$/;

export { relayStub };

export const relayRoutes = new Hono<AppEnv>();

relayRoutes.get("/:relayId", async (c) => {
  const relayId = c.req.param("relayId");
  if (!RELAY_ID.test(relayId)) throw validationFailed("bad relay id");
  const key = c.req.query("key") ?? "";
  return relayStub(c.env, relayId).fetch(`https://relay/download?key=${encodeURIComponent(key)}`);
});

relayRoutes.put("/:relayId", activity("backup.download.relay"), async (c) => {
  const relayId = c.req.param("relayId");
  noteActivity(c, { targetType: "relay", targetId: relayId });
  if (!RELAY_ID.test(relayId)) throw validationFailed("bad relay id");
  const h = c.req.header("authorization") ?? "";
  if (!h.startsWith("Bearer ")) throw unauthorized("relay token required");
  const runnerId = await verifyRelayToken(c.env, h.slice(7), relayId).catch(async (e: unknown) => {
    await c.req.raw.body?.cancel().catch(() => {});
    throw e;
  });
  noteActivity(c, { actorType: "runner", actorId: runnerId });
  const stub = relayStub(c.env, relayId);
  const refusal = await stub.uploadRefusal(runnerId);
  if (refusal) return c.json({ error: { code: refusal.code, message: refusal.message } }, refusal.status);
  return stub.fetch("https://relay/upload", {
    method: "PUT",
    body: c.req.raw.body,
    headers: { "x-cairn-runner-id": runnerId },
  });
});
