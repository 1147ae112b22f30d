import type { InventoryReport } from "../../../shared/protocol/runner-messages";
import type { Inventory } from "./discover";

/**
 * The inventory as the control plane keeps it (`inventory` message, docs/PROTOCOL.md): domains with
 * their components and databases. Paths stay on the host; only the system user and database servers
 * go along as details.
 */
export function inventoryReport(inv: Inventory, now = new Date()): InventoryReport {
  return {
    type: "inventory",
    collectedAt: now.getTime(),
    domains: inv.domains.slice(0, 2000).map((d) => {
      const components: ("web" | "db" | "mail" | "dns" | "ssl")[] = [];
      if (d.webRoot) components.push("web");
      if (d.databases.length) components.push("db");
      if (d.mailDir || d.mailConfig.length) components.push("mail");
      if (d.dnsZone) components.push("dns");
      if (d.sslDir) components.push("ssl");
      return {
        domain: d.domain,
        components,
        databases: d.databases.slice(0, 256).map((db) => ({ engine: db.engine, name: db.name })),
        details: {
          ...(d.user ? { user: d.user } : {}),
          servers: [...new Set(d.databases.map((db) => db.server))],
        },
      };
    }),
  };
}
