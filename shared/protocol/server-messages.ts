import { z } from "zod";

/**
 * Catalogue of messages the control plane sends to a runner (v1).
 * Parsed at the boundary (the runner's connection); an unknown message is logged and ignored,
 * so a newer control plane can add messages without breaking older runners.
 */

const JobId = z.string().min(1).max(64);

export const Welcome = z.object({
  type: z.literal("welcome"),
  protocol: z.number().int(),
  runnerId: z.string(),
  serverTime: z.number(),
  heartbeatIntervalMs: z.number().int().positive(),
  leaseMs: z.number().int().positive(),
});

/** A job delivery. `token` is the signed job (JWS); everything the runner acts on is inside it. */
export const JobDelivery = z.object({
  type: z.literal("job"),
  jobId: JobId,
  token: z.string().max(64 * 1024),
});

/**
 * Stops a job. `mode: "pause"` (sync jobs) keeps what was uploaded so a later job resumes it; the job
 * still ends CANCELLED, with error code PAUSED. Older runners ignore `mode` and cancel.
 */
export const JobCancel = z.object({
  type: z.literal("job.cancel"),
  jobId: JobId,
  mode: z.enum(["cancel", "pause"]).optional(),
});

/** The control plane has durably recorded the job's result; the runner may drop it from its outbox. */
export const ResultAck = z.object({ type: z.literal("result.ack"), jobId: JobId });

/** Asks the runner for a fresh `inventory` report. */
export const InventoryRequest = z.object({ type: z.literal("inventory.request") });

export const ServerMessage = z.discriminatedUnion("type", [
  Welcome,
  JobDelivery,
  JobCancel,
  ResultAck,
  InventoryRequest,
]);
export type ServerMessage = z.infer<typeof ServerMessage>;
export type Welcome = z.infer<typeof Welcome>;
export type JobDelivery = z.infer<typeof JobDelivery>;
