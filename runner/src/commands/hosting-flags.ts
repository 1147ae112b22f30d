/**
 * What backup and restore need to know about hosting mode before they choose it. Kept apart from
 * hosting-cli.ts, which loads the hosting sources, database drivers and restore engine (~25 MiB):
 * a plain `backup --source` must not pay for them.
 */
import { HostingError } from "../sources/errors";

export interface HostFlags {
  root?: string;
  config?: string;
  domains?: string;
  components?: string;
}

export const isHostingRun = (f: HostFlags) => !!(f.root || f.config || f.domains || f.components);

/** HostingError → `CODE message`, exit 2 for config/usage problems. */
export function hostingFail(err: unknown): number | undefined {
  if (!(err instanceof HostingError)) return undefined;
  process.stderr.write(`${err.code} ${err.message.replace(/\s+/g, " ")}\n`);
  return err.code === "CONFIG_INVALID" ? 2 : 1;
}
