/**
 * Sources -> tar stream cut into fixed-size chunks. Our own tar writer, so every entry's offset is
 * known exactly (the manifest records it) and a file that changes while read is padded/truncated
 * to the size in its header instead of corrupting the stream.
 */
import { createHash } from "node:crypto";
import { closeSync, lstatSync, openSync, readdirSync, readlinkSync, readSync } from "node:fs";
import { basename, join } from "node:path";
import type { ArchiveEntry, Progress } from "./types";
import type { ManifestEntry } from "./manifest-types";
import { encodeTarHeader, padding, TAR_END } from "./tar-header";
import { ArchiveError } from "./errors";

/** Walks source directories depth-first in sorted order; each is stored under its basename. */
export async function* walkSources(sources: string[], warnings: string[]): AsyncGenerator<ArchiveEntry> {
  const seenInodes = new Map<string, string>();
  const usedRoots = new Set<string>();
  for (const src of sources) {
    let root = basename(src) || "root";
    for (let i = 2; usedRoots.has(root); i++) root = `${basename(src)}-${i}`;
    usedRoots.add(root);
    yield* walkOne(src, root, seenInodes, warnings);
  }
}

function* walkOne(
  abs: string,
  rel: string,
  seen: Map<string, string>,
  warnings: string[],
): Generator<ArchiveEntry> {
  let st;
  try {
    st = lstatSync(abs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      warnings.push(`vanished before it was read: ${rel}`);
      return;
    }
    throw err;
  }
  const base = { name: rel, size: 0, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, mtime: st.mtime };
  if (st.isDirectory()) {
    yield { ...base, type: "directory" };
    let names: string[];
    try {
      names = readdirSync(abs).sort();
    } catch (err) {
      warnings.push(`unreadable directory ${rel}: ${(err as Error).message}`);
      return;
    }
    for (const n of names) yield* walkOne(join(abs, n), `${rel}/${n}`, seen, warnings);
  } else if (st.isFile()) {
    if (st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`;
      const first = seen.get(key);
      if (first) {
        yield { ...base, type: "hardlink", linkname: first };
        return;
      }
      seen.set(key, rel);
    }
    yield { ...base, type: "file", size: st.size, body: { kind: "file", absPath: abs } };
  } else if (st.isSymbolicLink()) {
    yield { ...base, type: "symlink", linkname: readlinkSync(abs) };
  } else {
    warnings.push(`skipped special file (socket, FIFO or device): ${rel}`);
  }
}

function checkName(name: string): void {
  if (
    !name ||
    name.startsWith("/") ||
    name.includes("\0") ||
    name.split("/").some((c) => c === ".." || c === "")
  ) {
    throw new ArchiveError("USAGE", `refusing to archive unsafe entry name ${JSON.stringify(name)}`);
  }
}

const READ_SIZE = 1024 * 1024;

/**
 * Recycles chunk buffers once their frame is compressed: allocating a fresh 1 MiB ArrayBuffer per
 * chunk kept V8's garbage collector busy (external memory pressure).
 */
export class ChunkPool {
  private free: Buffer[] = [];
  constructor(
    readonly size: number,
    private readonly keep = 8,
  ) {}
  acquire(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafe(this.size);
  }
  release(b: Buffer): void {
    if (b.length === this.size && b.byteOffset === 0 && this.free.length < this.keep) this.free.push(b);
  }
}

class ChunkBuffer {
  buf: Buffer;
  pos = 0;
  offset = 0; // tar offset of buf[0]
  constructor(
    readonly size: number,
    private readonly pool: ChunkPool,
  ) {
    this.buf = pool.acquire();
  }
  get tarPos(): number {
    return this.offset + this.pos;
  }
  /** Returns the full chunk when it filled up. */
  take(): Buffer | null {
    if (this.pos < this.size) return null;
    const full = this.buf;
    this.offset += this.size;
    this.buf = this.pool.acquire();
    this.pos = 0;
    return full;
  }
  *write(b: Buffer): Generator<Buffer> {
    let i = 0;
    while (i < b.length) {
      const n = Math.min(b.length - i, this.size - this.pos);
      b.copy(this.buf, this.pos, i, i + n);
      this.pos += n;
      i += n;
      const full = this.take();
      if (full) yield full;
    }
  }
  *zeros(n: number): Generator<Buffer> {
    while (n > 0) {
      const k = Math.min(n, this.size - this.pos);
      this.buf.fill(0, this.pos, this.pos + k);
      this.pos += k;
      n -= k;
      const full = this.take();
      if (full) yield full;
    }
  }
  rest(): Buffer | null {
    return this.pos > 0 ? this.buf.subarray(0, this.pos) : null;
  }
}

export interface TarSink {
  /** Entries go straight into the (incrementally compressed) manifest, not into a held array. */
  manifest: { add(e: ManifestEntry): void };
  warnings: string[];
  bytesIn: number;
  files: number;
  onProgress?: (p: Progress) => void;
  signal?: AbortSignal;
}

/** Yields the tar stream as chunks of exactly `chunkSize` bytes (the last one shorter). */
export async function* tarChunks(
  entries: AsyncIterable<ArchiveEntry>,
  chunkSize: number,
  sink: TarSink,
  pool = new ChunkPool(chunkSize),
): AsyncGenerator<Buffer> {
  const cb = new ChunkBuffer(chunkSize, pool);
  let lastProgress = 0;
  for await (const e of entries) {
    sink.signal?.throwIfAborted();
    checkName(e.name);
    let fd: number | null = null;
    let size = e.type === "file" ? e.size : 0;
    if (e.type === "file" && e.body?.kind === "file") {
      try {
        // The size seen when the entry was listed goes in the header; the body is padded or cut to it.
        fd = openSync(e.body.absPath, "r");
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === "ENOENT") {
          sink.warnings.push(`vanished while backing up: ${e.name}`);
          continue;
        }
        throw err;
      }
    } else if (e.type === "file" && e.body?.kind === "buffer") size = e.body.data.length;
    try {
      const me: ManifestEntry = {
        p: e.name,
        t: e.type,
        s: size,
        m: e.mode & 0o7777,
        u: e.uid,
        g: e.gid,
        mt: Math.floor(e.mtime.getTime() / 1000),
        o: cb.tarPos,
        e: 0,
      };
      if (e.linkname !== undefined) me.l = e.linkname;
      if (e.component) me.c = e.component;
      if (e.domain) me.d = e.domain;
      yield* cb.write(
        encodeTarHeader({
          name: e.name,
          type: e.type,
          size,
          mode: e.mode,
          uid: e.uid,
          gid: e.gid,
          mtime: me.mt,
          linkname: e.linkname,
        }),
      );
      if (e.type === "file") {
        const hash = createHash("sha256");
        if (fd !== null) {
          let left = size;
          while (left > 0) {
            const want = Math.min(left, cb.size - cb.pos, READ_SIZE);
            const start = cb.pos;
            const n = readSync(fd, cb.buf, start, want, null);
            if (n === 0) {
              sink.warnings.push(
                `file shrank while being read (padded with zeros to ${size} bytes): ${e.name}`,
              );
              // hash the padding too: the manifest describes the bytes that are in the archive
              const pad = Buffer.alloc(Math.min(left, 1024 * 1024));
              let z = left;
              while (z > 0) {
                const k = Math.min(z, pad.length);
                hash.update(pad.subarray(0, k));
                z -= k;
              }
              yield* cb.zeros(left);
              left = 0;
              break;
            }
            hash.update(cb.buf.subarray(start, start + n));
            cb.pos += n;
            left -= n;
            const full = cb.take();
            if (full) yield full;
          }
          const probe = Buffer.alloc(1);
          if (readSync(fd, probe, 0, 1, null) > 0)
            sink.warnings.push(`file grew while being read (truncated to ${size} bytes): ${e.name}`);
        } else if (e.body?.kind === "buffer") {
          hash.update(e.body.data);
          yield* cb.write(e.body.data);
        } else if (size > 0) {
          throw new ArchiveError("USAGE", `entry ${e.name} has a size but no body`);
        }
        yield* cb.zeros(padding(size));
        me.h = hash.digest("hex");
        sink.files++;
        sink.bytesIn += size;
      }
      me.e = cb.tarPos;
      sink.manifest.add(me);
    } finally {
      if (fd !== null) closeSync(fd);
    }
    if (sink.onProgress && sink.bytesIn - lastProgress >= 8 * 1024 * 1024) {
      lastProgress = sink.bytesIn;
      sink.onProgress({ bytes: sink.bytesIn, files: sink.files, currentFile: e.name, phase: "backup" });
    }
  }
  yield* cb.write(TAR_END);
  const rest = cb.rest();
  if (rest) yield rest;
}
