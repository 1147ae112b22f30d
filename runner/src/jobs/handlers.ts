import type { JobHandlers } from "./types";
import { backupHandler } from "./backup";
import { restoreHandler } from "./restore";
import { verifyHandler } from "./verify";
import { syncHandler } from "./sync";
import { testDestinationHandler } from "./test-destination";
import { relayUploadHandler } from "./relay-upload";
import { loadCreateBackup, loadRestoreArchive, loadVerifyArchive } from "./engine";

/** The executors the daemon runs in production. Job types absent here are rejected UNSUPPORTED_JOB. */
export function productionHandlers(): JobHandlers {
  return {
    backup: backupHandler(loadCreateBackup),
    restore: restoreHandler(loadRestoreArchive),
    verify: verifyHandler(loadVerifyArchive),
    "test-destination": testDestinationHandler(),
    sync: syncHandler(),
    "relay-upload": relayUploadHandler(),
  };
}
