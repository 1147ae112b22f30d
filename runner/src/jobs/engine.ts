import { createBackup } from "../archive";
import type { CreateBackup } from "./backup";

/** The real archive engine; tests inject fakes through backupHandler's loader instead. */
export async function loadCreateBackup(): Promise<CreateBackup> {
  return createBackup;
}
