import type { Readable } from "node:stream";
import type { ArchiveEntry } from "../archive/types";

/** An archive entry as read back: header fields only, its bytes come separately. */
export type EntryHeader = Omit<ArchiveEntry, "body">;

/**
 * What component restores need from an archive: the entry list (from the manifest, no bytes), and
 * the entries whose names pass a filter, in archive order, from an archive that was verified before
 * anything is handed out. The archive engine's reader implements this for `.tar.zst[.enc]` archives
 * (selective restore fetches only the ranges it needs); `tarFileSource` does it for a plain tar.
 */
export interface RestoreSource {
  /** Called in the "decrypting" phase: checks the key (wrong password → error before anything is written). */
  unlock?(): Promise<void>;
  list(): Promise<EntryHeader[]>;
  /**
   * Optional: reads and authenticates every entry the filter selects, writing nothing, so a damaged
   * archive fails the restore before the first file or database is replaced. `onBytes` counts file bytes.
   */
  check?(filter: (name: string) => boolean, onBytes?: (n: number) => void): Promise<void>;
  /** The caller consumes each body fully before asking for the next entry. */
  read(filter: (name: string) => boolean): AsyncIterable<{ entry: EntryHeader; body: Readable }>;
}
