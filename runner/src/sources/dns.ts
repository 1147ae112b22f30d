import { basename } from "node:path";
import type { ArchiveEntry } from "../archive/types";
import type { DomainInventory } from "../inventory/discover";
import { dnsPath } from "./layout";
import { walkTree } from "./walk";

/** The zone file (or zone directory with its settings), stored under `<domain>/dns/`. */
export function dnsEntries(d: DomainInventory): AsyncGenerator<ArchiveEntry> {
  if (!d.dnsZone) throw new Error(`${d.domain} has no DNS zone`);
  const base = basename(d.dnsZone);
  return walkTree(d.dnsZone, (rel) => dnsPath(d.domain, rel === "" ? base : `${base}/${rel}`), {
    component: "dns",
    domain: d.domain,
  });
}
