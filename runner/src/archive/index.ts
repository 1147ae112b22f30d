/** The archive engine's public surface (format: docs/FORMAT.md). */
export { createBackup, type BackupInternals } from "./backup";
export { ArchiveError, ArchiveErrorCode } from "./errors";
export {
  verifyArchive,
  inspectArchive,
  decryptArchive,
  readEntries,
  type VerifyResult,
  type InspectResult,
} from "./ops";
export {
  restoreArchive,
  type RestoreOptions,
  type RestoreResult,
  type ConflictAction,
} from "../restore/engine";
export { openArchive, type ArchiveSource } from "./reader";
export { manifestFileName } from "./manifest";
export type { Manifest, ManifestEntry } from "./manifest-types";
export type * from "./types";
