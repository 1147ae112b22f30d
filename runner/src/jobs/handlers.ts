import type { JobHandlers } from "./types";
import { backupHandler } from "./backup";
import { loadCreateBackup } from "./engine";

/** The executors the daemon runs in production. Job types absent here are rejected UNSUPPORTED_JOB. */
export function productionHandlers(): JobHandlers {
  return {
    backup: backupHandler(loadCreateBackup),
  };
}
