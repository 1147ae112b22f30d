import type { ArchiveEntry } from "../archive/types";
import type { DomainInventory } from "../inventory/discover";
import { sslPath } from "./layout";
import { walkTree } from "./walk";

/** Certificates and keys under `<domain>/ssl/`; modes are stored as found (keys stay 0600 on restore). */
export function sslEntries(d: DomainInventory): AsyncGenerator<ArchiveEntry> {
  if (!d.sslDir) throw new Error(`${d.domain} has no certificate directory`);
  return walkTree(d.sslDir, (rel) => sslPath(d.domain, rel), { component: "ssl", domain: d.domain });
}
