/**
 * Where a paused or transiently failed sync keeps its destination's resume token between jobs:
 * one file per (backup, destination) in the runner's state dir, written atomically (temp + rename)
 * with mode 0600. Tokens carry upload ids, temp paths, checksums, a Drive upload session URI (a
 * capability for that one upload only), never account credentials; they never leave this file.
 */
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { z } from "zod";

const SAFE_ID = /^[A-Za-z0-9_-]{1,64}$/;

const SavedSync = z.object({
  v: z.literal(1),
  fileName: z.string(),
  /** Destination URL without secrets: a token is only offered back to the same place. */
  url: z.string(),
  bytesDone: z.number().int().nonnegative(),
  savedAt: z.number(),
  token: z.unknown(),
});
export type SavedSync = z.infer<typeof SavedSync>;

export class SyncResumeStore {
  constructor(private readonly stateDir: string) {}

  private file(backupId: string, destinationId: string): string {
    if (!SAFE_ID.test(backupId) || !SAFE_ID.test(destinationId))
      throw new Error("sync resume: unexpected id characters");
    return path.join(this.stateDir, "sync-resume", `${backupId}.${destinationId}.json`);
  }

  /** A missing or unreadable file is no saved state (the upload restarts); never an error. */
  async load(backupId: string, destinationId: string): Promise<SavedSync | undefined> {
    try {
      const raw = await readFile(this.file(backupId, destinationId), "utf8");
      const r = SavedSync.safeParse(JSON.parse(raw));
      return r.success && r.data.token !== undefined ? r.data : undefined;
    } catch {
      return undefined;
    }
  }

  async save(backupId: string, destinationId: string, s: Omit<SavedSync, "v" | "savedAt">): Promise<void> {
    const file = this.file(backupId, destinationId);
    await mkdir(path.dirname(file), { recursive: true, mode: 0o700 });
    const tmp = `${file}.${process.pid}.tmp`;
    await writeFile(tmp, JSON.stringify({ v: 1, savedAt: Date.now(), ...s }), { mode: 0o600 });
    await rename(tmp, file);
  }

  async remove(backupId: string, destinationId: string): Promise<void> {
    await rm(this.file(backupId, destinationId), { force: true });
  }
}
