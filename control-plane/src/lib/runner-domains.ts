import { and, eq } from "drizzle-orm";
import type { InventoryDomain } from "../../../shared/protocol/runner-messages";
import { db } from "../db/client";
import { runnerDomains } from "../db/schema";
import type { Env } from "../env";
import { newId } from "./ids";

type DomainRow = typeof runnerDomains.$inferSelect;

/** D1 caps bound parameters per statement (100): 8 columns per row keeps a batch chunk under it. */
const ROWS_PER_INSERT = 12;

/**
 * A runner's report is the whole truth about its host: its rows are replaced in one batch, so a
 * domain that disappeared from the host disappears from the API too. Scoped by tenant and runner.
 */
export async function replaceRunnerDomains(
  env: Env,
  a: { tenantId: string; runnerId: string; domains: InventoryDomain[]; collectedAt: number },
): Promise<void> {
  const d = db(env.DB);
  const now = Date.now();
  // A report may list a domain twice (discovery + config); the last one wins, like the unique index.
  const byName = new Map(a.domains.map((x) => [x.domain, x]));
  const rows = [...byName.values()].map((x) => ({
    id: newId("dom"),
    tenantId: a.tenantId,
    runnerId: a.runnerId,
    domain: x.domain,
    components: JSON.stringify(x.components),
    databases: JSON.stringify(x.databases),
    details: JSON.stringify({ ...(x.details ?? {}), collectedAt: a.collectedAt }),
    updatedAt: now,
  }));
  const del = d
    .delete(runnerDomains)
    .where(and(eq(runnerDomains.tenantId, a.tenantId), eq(runnerDomains.runnerId, a.runnerId)));
  const inserts = [];
  for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) {
    inserts.push(d.insert(runnerDomains).values(rows.slice(i, i + ROWS_PER_INSERT)));
  }
  await d.batch([del, ...inserts]);
}

export async function listRunnerDomains(env: Env, tenantId: string, runnerId: string): Promise<DomainRow[]> {
  return db(env.DB)
    .select()
    .from(runnerDomains)
    .where(and(eq(runnerDomains.tenantId, tenantId), eq(runnerDomains.runnerId, runnerId)))
    .orderBy(runnerDomains.domain)
    .all();
}

const parse = (s: string | null): unknown => {
  try {
    return s ? JSON.parse(s) : undefined;
  } catch {
    return undefined;
  }
};

export function domainView(r: DomainRow) {
  return {
    domain: r.domain,
    runnerId: r.runnerId,
    components: (parse(r.components) as string[] | undefined) ?? [],
    databases: (parse(r.databases) as { engine: string; name: string }[] | undefined) ?? [],
    details: parse(r.details) ?? null,
    updatedAt: new Date(r.updatedAt).toISOString(),
  };
}
