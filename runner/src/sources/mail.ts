import type { ArchiveEntry } from "../archive/types";
import type { DomainInventory } from "../inventory/discover";
import { mailboxPath, mailConfigPath } from "./layout";
import { walkTree } from "./walk";

/**
 * Mailboxes (`<domain>/mail/boxes/<mailbox>/Maildir/...`) and each mail configuration path
 * (`<domain>/mail/config/<n>/...`, n = its index in domain.json's `mailConfig`).
 */
export async function* mailEntries(
  d: DomainInventory,
  onSkip?: (m: string) => void,
): AsyncGenerator<ArchiveEntry> {
  const tag = { component: "mail", domain: d.domain };
  if (d.mailDir) yield* walkTree(d.mailDir, (rel) => mailboxPath(d.domain, rel), tag, onSkip);
  for (const [i, p] of d.mailConfig.entries())
    yield* walkTree(p, (rel) => mailConfigPath(d.domain, i, rel), tag, onSkip);
}
