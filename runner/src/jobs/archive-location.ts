import type { JobDestination, JobSecrets } from "../../../shared/protocol/job-claims";
import type { ArchiveSource } from "../archive";
import type { RunnerConfig } from "../config";
import { localArchivePath } from "./archive-file";
import { openRemote, remoteSpec } from "./remote-destination";

/**
 * Where a restore or verify job reads its archive: the runner's backup directory, or a remote copy
 * named by the job (credentials in its JWE). The name rule is the same for both.
 */
export function checkArchiveLocation(
  dest: JobDestination,
  fileName: string,
  secrets: JobSecrets,
  config: RunnerConfig,
): void {
  localArchivePath(config.backupDir, fileName);
  if (dest.kind === "remote") remoteSpec(dest, secrets, config);
}

export async function openArchiveLocation(
  dest: JobDestination,
  fileName: string,
  secrets: JobSecrets,
  config: RunnerConfig,
): Promise<{ source: ArchiveSource; fileName?: string; close(): Promise<void> }> {
  if (dest.kind === "local")
    return { source: localArchivePath(config.backupDir, fileName), close: async () => {} };
  localArchivePath(config.backupDir, fileName);
  const d = await openRemote(dest, secrets, config);
  return { source: d, fileName, close: () => d.close().catch(() => {}) };
}
