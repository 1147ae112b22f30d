import { Hono } from "hono";
import { and, desc, eq, inArray } from "drizzle-orm";
import { z } from "zod";
import {
  DestinationKind,
  parseDestinationConfig,
  parseDestinationCredentials,
} from "../../../shared/destinations";
import type { JobSpec } from "../../../shared/protocol/job-claims";
import { db } from "../db/client";
import { backupCopies, destinations, jobs, tenants } from "../db/schema";
import type { AppEnv } from "../env";
import { conflict, forbidden, validationFailed } from "../errors";
import { activity, noteActivity } from "../lib/activity";
import { currentUser, requireAuth, tenantScope } from "../lib/auth";
import { sealCredentials } from "../lib/destination-credentials";
import { destinationView, findDestination, jobCredentials, jobDestination } from "../lib/destinations";
import { dispatchJob } from "../lib/dispatch";
import { newId } from "../lib/ids";
import { pendingJobRow } from "../lib/pending-job";
import { readJson } from "../lib/validate";
import { findRunner } from "./runners";

/**
 * Remote destinations, managed by ROOT only (`destinations.manage`). Credentials are write-only:
 * sealed under MASTER_KEY on the way in, never returned, never put into an activity row.
 */

const Name = z
  .string()
  .min(1)
  .max(64)
  .regex(
    /^[A-Za-z0-9][A-Za-z0-9 ._-]*$/,
    "name: 1-64 of letters, digits, space . _ - starting with a letter or digit",
  );

const CreateBody = z.object({
  name: Name,
  kind: DestinationKind,
  config: z.record(z.string(), z.unknown()),
  credentials: z.record(z.string(), z.unknown()),
  /** ROOT may create a destination for another tenant; default: the caller's tenant. */
  tenantId: z.string().min(1).max(64).optional(),
});

const PatchBody = z.object({
  name: Name.optional(),
  config: z.record(z.string(), z.unknown()).optional(),
  credentials: z.record(z.string(), z.unknown()).optional(),
  disabled: z.boolean().optional(),
});

const TestBody = z.object({ runnerId: z.string().min(1).max(64) });

function checked<T>(r: { ok: true; value: T } | { ok: false; message: string }): T {
  if (!r.ok) throw validationFailed(r.message);
  return r.value;
}

export const destinationRoutes = new Hono<AppEnv>();

destinationRoutes.post("/", activity("destination.create"), requireAuth("destinations.manage"), async (c) => {
  const body = await readJson(c, CreateBody);
  const user = currentUser(c);
  noteActivity(c, { details: { name: body.name, kind: body.kind } });
  const config = checked(parseDestinationConfig(body.kind, body.config));
  const credentials = checked(parseDestinationCredentials(body.kind, body.credentials));
  const tenantId = body.tenantId ?? user.tenantId;
  if (tenantId !== user.tenantId) {
    if (user.role !== "ROOT") throw forbidden("only ROOT may configure another tenant's destinations");
    const t = await db(c.env.DB)
      .select({ id: tenants.id })
      .from(tenants)
      .where(eq(tenants.id, tenantId))
      .get();
    if (!t) throw validationFailed("tenantId: no such tenant");
  }
  const id = newId("dst");
  const now = Date.now();
  const row = {
    id,
    tenantId,
    name: body.name,
    kind: body.kind,
    config: JSON.stringify(config),
    encryptedCredentials: await sealCredentials(c.env, tenantId, id, credentials),
    lastTestStatus: null,
    lastTestAt: null,
    lastTestError: null,
    disabled: false,
    createdBy: user.id,
    createdAt: now,
    updatedAt: now,
  };
  await db(c.env.DB).insert(destinations).values(row);
  noteActivity(c, { tenantId, targetType: "destination", targetId: id });
  return c.json(destinationView(row), 201);
});

destinationRoutes.get("/", requireAuth("destinations.read"), async (c) => {
  const scope = tenantScope(currentUser(c));
  const rows = await db(c.env.DB)
    .select()
    .from(destinations)
    .where(scope ? eq(destinations.tenantId, scope) : undefined)
    .orderBy(desc(destinations.createdAt))
    .all();
  return c.json(rows.map(destinationView));
});

destinationRoutes.get("/:id", requireAuth("destinations.read"), async (c) => {
  return c.json(
    destinationView(await findDestination(c.env, c.req.param("id"), tenantScope(currentUser(c)))),
  );
});

destinationRoutes.patch(
  "/:id",
  activity("destination.update"),
  requireAuth("destinations.manage"),
  async (c) => {
    const id = c.req.param("id");
    noteActivity(c, { targetType: "destination", targetId: id });
    const body = await readJson(c, PatchBody);
    const d = await findDestination(c.env, id, tenantScope(currentUser(c)));
    const kind = DestinationKind.parse(d.kind);
    const patch: Partial<typeof destinations.$inferInsert> = { updatedAt: Date.now() };
    if (body.name !== undefined) patch.name = body.name;
    if (body.disabled !== undefined) patch.disabled = body.disabled;
    if (body.config !== undefined)
      patch.config = JSON.stringify(checked(parseDestinationConfig(kind, body.config)));
    if (body.credentials !== undefined)
      patch.encryptedCredentials = await sealCredentials(
        c.env,
        d.tenantId,
        d.id,
        checked(parseDestinationCredentials(kind, body.credentials)),
      );
    if (body.config !== undefined || body.credentials !== undefined) {
      // A test of the old settings says nothing about the new ones.
      patch.lastTestStatus = null;
      patch.lastTestAt = null;
      patch.lastTestError = null;
    }
    noteActivity(c, {
      tenantId: d.tenantId,
      details: { changed: Object.keys(body).filter((k) => body[k as keyof typeof body] !== undefined) },
    });
    await db(c.env.DB).update(destinations).set(patch).where(eq(destinations.id, d.id));
    return c.json(destinationView(await findDestination(c.env, d.id, null)));
  },
);

destinationRoutes.delete(
  "/:id",
  activity("destination.delete"),
  requireAuth("destinations.manage"),
  async (c) => {
    const id = c.req.param("id");
    noteActivity(c, { targetType: "destination", targetId: id });
    const d = await findDestination(c.env, id, tenantScope(currentUser(c)));
    noteActivity(c, { tenantId: d.tenantId, details: { name: d.name, kind: d.kind } });
    const busy = await db(c.env.DB)
      .select({ id: backupCopies.id })
      .from(backupCopies)
      .where(
        and(
          eq(backupCopies.destinationId, d.id),
          inArray(backupCopies.status, ["pending", "running", "paused"]),
        ),
      )
      .get();
    if (busy) throw conflict("a copy to this destination is in progress; cancel it first");
    await db(c.env.DB).delete(destinations).where(eq(destinations.id, d.id));
    return c.json({ ok: true });
  },
);

/** Test Connection: a job on one runner writes, reads back and deletes a probe object. */
destinationRoutes.post(
  "/:id/test",
  activity("destination.test"),
  requireAuth("destinations.manage"),
  async (c) => {
    const id = c.req.param("id");
    noteActivity(c, { targetType: "destination", targetId: id });
    const body = await readJson(c, TestBody);
    const d = await findDestination(c.env, id, tenantScope(currentUser(c)));
    const runner = await findRunner(c, body.runnerId, d.tenantId);
    if (runner.revokedAt) throw conflict("runner is revoked");
    const spec: JobSpec = { type: "test-destination", params: { target: jobDestination(d) } };
    const secrets = { destinations: await jobCredentials(c.env, [d]) };
    const jobId = newId("job");
    const now = Date.now();
    await db(c.env.DB)
      .insert(jobs)
      .values(
        pendingJobRow({
          id: jobId,
          tenantId: d.tenantId,
          runnerId: runner.id,
          backupId: null,
          spec,
          createdBy: currentUser(c).id,
          now,
        }),
      );
    noteActivity(c, { tenantId: d.tenantId, details: { jobId, runnerId: runner.id } });
    await dispatchJob(c.env, runner, { jobId, spec, secrets, backupId: null });
    return c.json({ job: { id: jobId, state: "PENDING" } }, 202);
  },
);
