import path from "node:path";
import { JobRejectCode } from "../../../shared/errors";
import { ARCHIVE_FILE_PATTERN } from "../../../shared/naming";
import { JobRejection } from "../daemon/job-verifier";

/** Archives named by a job live directly in the runner's backup directory: no paths, no `..`. */
export function localArchivePath(backupDir: string, fileName: string): string {
  if (!ARCHIVE_FILE_PATTERN.test(fileName) || fileName.includes("..")) {
    throw new JobRejection(JobRejectCode.InvalidParams, "fileName is not a Cairn archive name");
  }
  return path.join(backupDir, fileName);
}
