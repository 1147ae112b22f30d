export { createBackup } from "./backup";
export { ArchiveError } from "./errors";
export type * from "./types";
