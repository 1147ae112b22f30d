import type { CreateBackup } from "./backup";

/**
 * The archive engine, loaded on first use so the daemon starts (and rejects jobs cleanly) even in a
 * build where an engine entry point is missing.
 */
export async function loadCreateBackup(): Promise<CreateBackup> {
  const mod = (await import(/* engine entry */ `../archive/${"index"}`)) as { createBackup?: CreateBackup };
  if (typeof mod.createBackup !== "function") throw new Error("archive engine has no createBackup");
  return mod.createBackup;
}
