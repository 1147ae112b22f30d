import type { JobHandlers } from "./types";
import { backupHandler } from "./backup";
import { restoreHandler } from "./restore";
import { verifyHandler } from "./verify";
import { loadCreateBackup, loadRestoreArchive, loadVerifyArchive } from "./engine";

/** The executors the daemon runs in production. Job types absent here are rejected UNSUPPORTED_JOB. */
export function productionHandlers(): JobHandlers {
  return {
    backup: backupHandler(loadCreateBackup),
    restore: restoreHandler(loadRestoreArchive),
    verify: verifyHandler(loadVerifyArchive),
  };
}
