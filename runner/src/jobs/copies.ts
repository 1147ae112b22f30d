import type { CopyResult } from "../../../shared/destinations";
import type { BackupJobParams, JobSecrets } from "../../../shared/protocol/job-claims";
import type { BackupResult, Progress } from "../archive/types";
import type { RunnerConfig } from "../config";
import { LocalDestination } from "../destinations/local";
import type { Destination } from "../destinations";
import { FanoutDestination, type CopyTarget } from "./fanout-destination";
import { openRemote, remoteSpec } from "./remote-destination";
import type { JobContext } from "./types";

/** Before acceptance: every auto-sync target must come with usable credentials. */
export function checkCopies(params: BackupJobParams, secrets: JobSecrets, config: RunnerConfig): void {
  for (const c of params.copies ?? []) remoteSpec(c, secrets, config);
}

/**
 * Runs a backup with its auto-sync copies: the engine writes once into a FanoutDestination (local
 * archive + every remote). A remote that cannot even be opened is a failed copy, not a failed backup.
 */
export async function withCopies(
  ctx: JobContext,
  params: BackupJobParams,
  run: (destination: Destination | undefined, onProgress: (p: Progress) => void) => Promise<BackupResult>,
): Promise<{ r: BackupResult; copies?: CopyResult[] }> {
  if (!params.copies?.length) return { r: await run(undefined, ctx.progress) };
  const targets: CopyTarget[] = [];
  const unopened: CopyResult[] = [];
  for (const c of params.copies) {
    try {
      targets.push({ destinationId: c.destinationId, dest: await openRemote(c, ctx.secrets, ctx.config) });
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      unopened.push({
        destinationId: c.destinationId,
        status: "failed",
        error: {
          code: typeof code === "string" ? code : "IO_ERROR",
          message: (err as Error).message.slice(0, 4096),
        },
      });
    }
  }
  // Live monitor: each progress update carries every copy's acknowledged bytes and the file being read.
  // Acknowledgements go on after the engine stops reading (the last parts answer during commit), so
  // they send the engine's latest state again with the new counters (the reporter throttles).
  let last: Progress = { bytes: 0, files: 0 };
  const report = () => ctx.progress({ ...last, copies: fan.progress(), message: last.currentFile });
  const fan = new FanoutDestination(new LocalDestination(ctx.config.backupDir), targets, report);
  try {
    const r = await run(fan, (p) => {
      last = p;
      report();
    });
    const copies = [...fan.results(r.fileName, r.manifestFileName), ...unopened];
    for (const c of copies)
      if (c.status === "failed")
        ctx.log.warn("copy failed", { destinationId: c.destinationId, code: c.error?.code });
    return { r, copies };
  } finally {
    await fan.close();
  }
}
