import type { ArchiveBinding } from "./types";
import type { FrameInfo } from "./frames";
import type { TarType } from "./tar-header";

/** One archive entry as recorded in the manifest (short keys: the manifest of a big tree is large). */
export interface ManifestEntry {
  /** path inside the archive */
  p: string;
  t: TarType;
  /** size of the file body in the tar stream */
  s: number;
  m: number;
  u: number;
  g: number;
  /** mtime, seconds since the epoch */
  mt: number;
  l?: string;
  /** SHA-256 (hex) of the body as written to the tar stream */
  h?: string;
  /** offset of the entry's first header block (pax or ustar) in the tar stream */
  o: number;
  /** offset just past the entry's padded body */
  e: number;
  c?: string;
  d?: string;
}

export interface Manifest {
  v: 1;
  name: string;
  kind: "full" | "incremental";
  createdAt: string;
  mode: "none" | "password" | "panel";
  binding: ArchiveBinding;
  archive: { fileName: string; size: number; sha256: string };
  chunkSize: number;
  /** frame 0 is the Cairn header frame (d = 0); the seek-table frame is not listed */
  frames: FrameInfo[];
  entries: ManifestEntry[];
  totals: { files: number; entries: number; bytes: number; tarBytes: number };
  warnings: string[];
}
