import { realpath } from "node:fs/promises";
import type { InventoryReport } from "../../../shared/protocol/runner-messages";
import type { RunnerConfig } from "../config";
import {
  discoverInventory,
  loadHostConfig,
  parseHostConfig,
  type HostConfig,
  type Inventory,
} from "../inventory";
import type { DomainInventory } from "../inventory/discover";

/** The host as the runner's config describes it: host config file and/or layout root, then discovery. */
export interface Host {
  config: HostConfig;
  root?: string;
  inventory: Inventory;
}

/** Read at each use (not cached): domains and databases come and go while the daemon runs. */
export async function loadHost(config: RunnerConfig): Promise<Host | undefined> {
  const h = config.hosting;
  if (!h) return undefined;
  const hostConfig = h.configPath ? await loadHostConfig(h.configPath) : parseHostConfig({});
  const root = h.root ?? hostConfig.root;
  const inventory = await discoverInventory({ root, config: hostConfig });
  return { config: hostConfig, root, inventory };
}

export function domainComponents(d: DomainInventory): ("web" | "db" | "mail" | "dns" | "ssl")[] {
  const out: ("web" | "db" | "mail" | "dns" | "ssl")[] = [];
  if (d.webRoot) out.push("web");
  if (d.databases.length) out.push("db");
  if (d.mailDir || d.mailConfig.length) out.push("mail");
  if (d.dnsZone) out.push("dns");
  if (d.sslDir) out.push("ssl");
  return out;
}

/** The `inventory` message: domains with components and databases; server names and credentials stay local. */
export function inventoryReport(inv: Inventory, now = Date.now()): InventoryReport {
  return {
    type: "inventory",
    collectedAt: now,
    domains: inv.domains.slice(0, 2000).map((d) => ({
      domain: d.domain,
      components: domainComponents(d),
      databases: d.databases.slice(0, 256).map((x) => ({ engine: x.engine, name: x.name })),
      details: {
        ...(d.user && { user: d.user }),
        ...(d.webRoot && { webRoot: d.webRoot }),
        ...(d.mailDir && { mailDir: d.mailDir }),
        ...(d.dnsZone && { dnsZone: d.dnsZone }),
        ...(d.sslDir && { sslDir: d.sslDir }),
      },
    })),
  };
}

/** True when `target` is the host's own layout root: the restore then puts things back where the host keeps them. */
export async function isHostRoot(target: string, host: Host | undefined): Promise<boolean> {
  if (!host?.root) return false;
  const [a, b] = await Promise.all([
    realpath(target).catch(() => target),
    realpath(host.root).catch(() => host.root),
  ]);
  return a === b;
}
