import { Readable } from "node:stream";
import { openArchive, readEntries, type ArchiveSource, type ManifestEntry } from "../archive";
import type { ArchiveBinding, DecryptionKey } from "../archive/types";
import type { EntryHeader, RestoreSource } from "./source";

const toHeader = (e: ManifestEntry): EntryHeader => ({
  name: e.p,
  type: e.t,
  size: e.t === "file" ? e.s : 0,
  mode: e.m,
  uid: e.u,
  gid: e.g,
  mtime: new Date(e.mt * 1000),
  linkname: e.l,
  component: e.c,
  domain: e.d,
});

/**
 * A Cairn archive (`.tar.zst[.enc]`, local path or Destination) as a RestoreSource. The engine
 * checks key, binding and each entry's hash; it streams file bodies only, so directories and
 * links come from the manifest (they have no bytes) ahead of the files of the same read.
 */
export function engineRestoreSource(o: {
  source: ArchiveSource;
  fileName?: string;
  key: DecryptionKey;
  binding?: ArchiveBinding;
  signal?: AbortSignal;
  /** Authenticate the selection before the restore writes (remote copies: the spool keeps the second read local). */
  checkFirst?: boolean;
}): RestoreSource {
  let manifest: ManifestEntry[] | undefined;
  const entries = async () => (manifest ??= await (await openArchive(o)).entries.all());
  return {
    async unlock() {
      await entries();
    },
    async list() {
      return (await entries()).map(toHeader);
    },
    ...(o.checkFirst && {
      async check(filter: (name: string) => boolean, onBytes?: (n: number) => void) {
        // Each body errors (CORRUPT) unless its frames and its SHA-256 match the manifest.
        for await (const { body } of readEntries({ ...o, filter: (e: ManifestEntry) => filter(e.p) })) {
          for await (const c of body) onBytes?.((c as Buffer).length);
        }
      },
    }),
    async *read(filter) {
      for (const e of await entries()) {
        if (e.t !== "file" && filter(e.p)) yield { entry: toHeader(e), body: Readable.from([]) };
      }
      for await (const { entry, body } of readEntries({ ...o, filter: (e: ManifestEntry) => filter(e.p) })) {
        yield { entry: toHeader(entry), body };
      }
    },
  };
}
