/**
 * The archive engine's public contract. Job executors (runner/src/jobs/*), the CLI and the hosting
 * sources all go through these types; the format itself is described in docs/FORMAT.md.
 */
import type { ArchiveBinding } from "../../../shared/protocol/job-claims";

export type { ArchiveBinding };

/** Key material as the engine sees it (already decrypted out of the job's JWE, or read from a file). */
export type EncryptionSpec =
  | { mode: "none" }
  | { mode: "password"; password: string }
  /** `dataKey`: the fresh per-archive key (32 bytes); `keyId`/`wrappedKey` are recorded in the header. */
  | { mode: "panel"; dataKey: Uint8Array; keyId: string; wrappedKey: string };

/** Key material for reading. Panel mode needs only the data key. */
export type DecryptionKey =
  { mode: "none" } | { mode: "password"; password: string } | { mode: "panel"; dataKey: Uint8Array };

/** One entry to put into the tar stream. Paths are relative POSIX paths inside the archive. */
export interface ArchiveEntry {
  name: string;
  type: "file" | "directory" | "symlink" | "hardlink";
  size: number;
  mode: number;
  uid: number;
  gid: number;
  mtime: Date;
  linkname?: string;
  /** Hosting component and domain this entry belongs to (manifest tags), e.g. "web" / "example.com". */
  component?: string;
  domain?: string;
  /** Where the bytes come from: a file on disk (re-checked while read) or an in-memory buffer. */
  body?: { kind: "file"; absPath: string } | { kind: "buffer"; data: Buffer };
}

export interface Progress {
  bytes: number;
  files: number;
  totalBytes?: number;
  currentFile?: string;
  phase?: string;
}

export interface BackupOptions {
  /** Source directories (absolute). Each is stored under its basename unless `entries` is given. */
  sources?: string[];
  /** Alternative to `sources`: a stream of entries produced by hosting sources. */
  entries?: AsyncIterable<ArchiveEntry>;
  outDir: string;
  name: string;
  kind: "full" | "incremental";
  level: number;
  encryption: EncryptionSpec;
  binding: ArchiveBinding;
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
  now?: Date;
}

export interface BackupResult {
  path: string;
  fileName: string;
  size: number;
  sha256: string;
  fileCount: number;
  bytesIn: number;
  durationMs: number;
  warnings: string[];
  /** Hosting backups: "partial" when a component failed (one line per failure in `warnings`); absent = complete. */
  status?: "complete" | "partial";
  manifestFileName?: string;
}
