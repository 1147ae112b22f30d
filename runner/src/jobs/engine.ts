import { createBackup, restoreArchive, verifyArchive } from "../archive";
import type { CreateBackup } from "./backup";
import type { RestoreArchive } from "./restore";
import type { VerifyArchive } from "./verify";

/** The real archive engine; tests inject fakes through each handler's loader instead. */
export const loadCreateBackup = async (): Promise<CreateBackup> => createBackup;
export const loadRestoreArchive = async (): Promise<RestoreArchive> => restoreArchive;
export const loadVerifyArchive = async (): Promise<VerifyArchive> => verifyArchive;
