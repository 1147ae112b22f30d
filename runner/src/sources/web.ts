import type { ArchiveEntry } from "../archive/types";
import type { DomainInventory } from "../inventory/discover";
import { webPath } from "./layout";
import { walkTree } from "./walk";

/** The domain's web root, stored under `<domain>/web/`. */
export function webEntries(d: DomainInventory, onSkip?: (m: string) => void): AsyncGenerator<ArchiveEntry> {
  if (!d.webRoot) throw new Error(`${d.domain} has no web root`);
  return walkTree(d.webRoot, (rel) => webPath(d.domain, rel), { component: "web", domain: d.domain }, onSkip);
}
