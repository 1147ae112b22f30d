import { Hono } from "hono";
import type { AppEnv } from "../env";
import { ApiError } from "../errors";
import { ApiErrorCode } from "../../../shared/errors";
import { activity, noteActivity } from "../lib/activity";
import { currentUser, requireAuth, tenantScope } from "../lib/auth";
import { domainView, listRunnerDomains } from "../lib/runner-domains";
import { runnerStub } from "../lib/runner-stub";
import { findRunner } from "./runners";

/** A runner's host inventory (domains x components), as last reported by the runner. */
export const runnerDomainRoutes = new Hono<AppEnv>();

runnerDomainRoutes.get("/:id/domains", requireAuth("runners.read"), async (c) => {
  const runner = await findRunner(c, c.req.param("id"), tenantScope(currentUser(c)));
  const rows = await listRunnerDomains(c.env, runner.tenantId, runner.id);
  return c.json(rows.map(domainView));
});

/** Asks the runner for a fresh report; the rows change when it answers (asynchronously). */
runnerDomainRoutes.post(
  "/:id/inventory",
  activity("runner.inventory"),
  requireAuth("runners.read"),
  async (c) => {
    const id = c.req.param("id");
    noteActivity(c, { targetType: "runner", targetId: id });
    const runner = await findRunner(c, id, tenantScope(currentUser(c)));
    noteActivity(c, { tenantId: runner.tenantId });
    if (runner.revokedAt) throw new ApiError(409, ApiErrorCode.Conflict, "runner is revoked");
    const { sent } = await runnerStub(c.env, runner.id).requestInventory();
    if (!sent) throw new ApiError(409, ApiErrorCode.RunnerOffline, "runner is not connected");
    return c.json({ requested: true }, 202);
  },
);
