/**
 * Sources -> tar stream cut into fixed-size chunks. Our own tar writer, so every entry's offset is
 * known exactly (the manifest records it) and a file that changes while read is padded/truncated
 * to the size in its header instead of corrupting the stream.
 *
 * Everything per entry is synchronous (the walk, the writer): the tar worker spent more time in
 * async-generator hops per entry than in its own code. Only full chunks leave a generator.
 */
import * as crypto from "node:crypto";
import { closeSync, lstatSync, openSync, readdirSync, readlinkSync, readSync } from "node:fs";
import { basename, join } from "node:path";
import type { ArchiveEntry, Progress } from "./types";
import type { ManifestEntry } from "./manifest-types";
import { encodeTarHeader, padding, TAR_BLOCK, TAR_END, writeUstarHeader } from "./tar-header";
import { ArchiveError } from "./errors";

/** Walks source directories depth-first in sorted order; each is stored under its basename. */
export function* walkSources(sources: string[], warnings: string[]): Generator<ArchiveEntry> {
  const seenInodes = new Map<string, string>();
  const usedRoots = new Set<string>();
  for (const src of sources) {
    let root = basename(src) || "root";
    for (let i = 2; usedRoots.has(root); i++) root = `${basename(src)}-${i}`;
    usedRoots.add(root);
    yield* walkTree(src, root, seenInodes, warnings);
  }
}

interface OpenDirectory {
  /** the directory's path with a trailing slash, normalised as path.join would */
  prefix: string;
  rel: string;
  names: string[];
  next: number;
}

/** One tree in pre-order, with an explicit stack: a recursive generator resumed every frame per entry. */
function* walkTree(
  absRoot: string,
  relRoot: string,
  seen: Map<string, string>,
  warnings: string[],
): Generator<ArchiveEntry> {
  const stack: OpenDirectory[] = [];
  let abs = absRoot;
  let rel = relRoot;
  for (;;) {
    const e = listEntry(abs, rel, seen, warnings);
    if (e) {
      yield e;
      if (e.type === "directory") {
        const names = readNames(abs, rel, warnings);
        if (names?.length) stack.push({ prefix: join(abs, "/"), rel, names, next: 0 });
      }
    }
    let top = stack[stack.length - 1];
    while (top && top.next === top.names.length) {
      stack.pop();
      top = stack[stack.length - 1];
    }
    if (!top) return;
    const n = top.names[top.next++]!;
    // prefix is normalised and n is one plain component, so this equals join(dir, n)
    abs = top.prefix + n;
    rel = `${top.rel}/${n}`;
  }
}

function readNames(abs: string, rel: string, warnings: string[]): string[] | null {
  try {
    return readdirSync(abs).sort();
  } catch (err) {
    warnings.push(`unreadable directory ${rel}: ${(err as Error).message}`);
    return null;
  }
}

function listEntry(
  abs: string,
  rel: string,
  seen: Map<string, string>,
  warnings: string[],
): ArchiveEntry | null {
  let st;
  try {
    st = lstatSync(abs);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") {
      warnings.push(`vanished before it was read: ${rel}`);
      return null;
    }
    throw err;
  }
  const entry = (type: ArchiveEntry["type"], size: number): ArchiveEntry => ({
    name: rel,
    type,
    size,
    mode: st.mode & 0o7777,
    uid: st.uid,
    gid: st.gid,
    mtime: st.mtime,
  });
  if (st.isDirectory()) return entry("directory", 0);
  if (st.isFile()) {
    if (st.nlink > 1) {
      const key = `${st.dev}:${st.ino}`;
      const first = seen.get(key);
      if (first) {
        const e = entry("hardlink", 0);
        e.linkname = first;
        return e;
      }
      seen.set(key, rel);
    }
    const e = entry("file", st.size);
    e.body = { kind: "file", absPath: abs };
    return e;
  }
  if (st.isSymbolicLink()) {
    const e = entry("symlink", 0);
    e.linkname = readlinkSync(abs);
    return e;
  }
  warnings.push(`skipped special file (socket, FIFO or device): ${rel}`);
  return null;
}

/** An empty, "..", absolute or NUL-carrying path component (path.split("/") without the array). */
const UNSAFE_NAME = /(?:^|\/)(?:\.\.)?(?:\/|$)|\0/;

function checkName(name: string): void {
  if (UNSAFE_NAME.test(name)) {
    throw new ArchiveError("USAGE", `refusing to archive unsafe entry name ${JSON.stringify(name)}`);
  }
}

const READ_SIZE = 1024 * 1024;

/** Where a ChunkBuffer gets its next chunk from. */
export interface ChunkSource {
  acquire(): Buffer;
}

/**
 * Recycles chunk buffers once their frame is compressed: allocating a fresh 1 MiB ArrayBuffer per
 * chunk kept V8's garbage collector busy (external memory pressure).
 */
export class ChunkPool implements ChunkSource {
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

/** The chunk being filled. Invariant: pos < size (a full chunk is handed out at once). */
class ChunkBuffer {
  buf: Buffer;
  pos = 0;
  offset = 0; // tar offset of buf[0]
  constructor(
    readonly size: number,
    private readonly source: ChunkSource,
  ) {
    this.buf = source.acquire();
  }
  get tarPos(): number {
    return this.offset + this.pos;
  }
  get room(): number {
    return this.size - this.pos;
  }
  /** Counts n bytes written at pos (n <= room); returns the chunk if that filled it. */
  advance(n: number): Buffer | null {
    this.pos += n;
    if (this.pos < this.size) return null;
    const full = this.buf;
    this.offset += this.size;
    this.buf = this.source.acquire();
    this.pos = 0;
    return full;
  }
  *write(b: Uint8Array): Generator<Buffer> {
    let i = 0;
    while (i < b.length) {
      const n = Math.min(b.length - i, this.room);
      this.buf.set(b.subarray(i, i + n), this.pos);
      i += n;
      const full = this.advance(n);
      if (full) yield full;
    }
  }
  *zeros(n: number): Generator<Buffer> {
    while (n > 0) {
      const k = Math.min(n, this.room);
      this.buf.fill(0, this.pos, this.pos + k);
      n -= k;
      const full = this.advance(k);
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

/** One-shot SHA-256 (Node >= 20.12): a file read in one piece skips the Hash object. */
const oneShotSha256: ((data: Uint8Array) => string) | undefined =
  typeof crypto.hash === "function" ? (data) => crypto.hash("sha256", data, "hex") : undefined;

const EMPTY_SHA256 = crypto.createHash("sha256").digest("hex");

const PROGRESS_EVERY = 8 * 1024 * 1024;

/** Writes entries into a tar stream cut into chunks; each entry's generator yields the chunks it filled. */
class TarWriter {
  private readonly cb: ChunkBuffer;
  private lastProgress = 0;

  constructor(
    chunkSize: number,
    private readonly sink: TarSink,
    source: ChunkSource,
  ) {
    this.cb = new ChunkBuffer(chunkSize, source);
  }

  *entry(e: ArchiveEntry): Generator<Buffer> {
    const { sink, cb } = this;
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
          return;
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
      const fields = {
        name: e.name,
        type: e.type,
        size,
        mode: e.mode,
        uid: e.uid,
        gid: e.gid,
        mtime: me.mt,
        linkname: e.linkname,
      };
      if (cb.room >= TAR_BLOCK && writeUstarHeader(fields, cb.buf, cb.pos)) {
        const full = cb.advance(TAR_BLOCK);
        if (full) yield full;
      } else yield* cb.write(encodeTarHeader(fields));
      if (e.type === "file") {
        if (fd !== null) me.h = yield* this.fileBody(fd, size, e.name);
        else if (e.body?.kind === "buffer") {
          me.h = sha256Hex(e.body.data);
          yield* cb.write(e.body.data);
        } else if (size > 0) {
          throw new ArchiveError("USAGE", `entry ${e.name} has a size but no body`);
        } else me.h = EMPTY_SHA256;
        const pad = padding(size);
        if (pad <= cb.room) {
          cb.buf.fill(0, cb.pos, cb.pos + pad);
          const full = cb.advance(pad);
          if (full) yield full;
        } else yield* cb.zeros(pad);
        sink.files++;
        sink.bytesIn += size;
      }
      me.e = cb.tarPos;
      sink.manifest.add(me);
    } finally {
      if (fd !== null) closeSync(fd);
    }
    if (sink.onProgress && sink.bytesIn - this.lastProgress >= PROGRESS_EVERY) {
      this.lastProgress = sink.bytesIn;
      sink.onProgress({ bytes: sink.bytesIn, files: sink.files, currentFile: e.name, phase: "backup" });
    }
  }

  /** Reads `size` bytes of the file straight into the chunks; returns their SHA-256 (hex). */
  private *fileBody(fd: number, size: number, name: string): Generator<Buffer, string> {
    const cb = this.cb;
    let hash: crypto.Hash | undefined;
    let digest: string | undefined;
    let left = size;
    // whether the last read asked for one byte past `size`, which answers "did it grow?" too
    let probed = false;
    let grew = false;
    while (left > 0) {
      const room = cb.room;
      const want = Math.min(left, room, READ_SIZE);
      // the byte past the body is spare room: padding or the next header overwrites it
      probed = want === left && want < room;
      const start = cb.pos;
      let n = readSync(fd, cb.buf, start, probed ? want + 1 : want, null);
      if (n === 0) {
        probed = false;
        this.sink.warnings.push(`file shrank while being read (padded with zeros to ${size} bytes): ${name}`);
        // hash the padding too: the manifest describes the bytes that are in the archive
        hash ??= crypto.createHash("sha256");
        const pad = Buffer.alloc(Math.min(left, 1024 * 1024));
        for (let z = left; z > 0; z -= pad.length) hash.update(pad.subarray(0, Math.min(z, pad.length)));
        yield* cb.zeros(left);
        break;
      }
      if (n > want) {
        grew = true;
        n = want;
      }
      const got = cb.buf.subarray(start, start + n);
      if (n === size && oneShotSha256) digest = oneShotSha256(got);
      else (hash ??= crypto.createHash("sha256")).update(got);
      left -= n;
      const full = cb.advance(n);
      if (full) yield full;
    }
    if (!grew && !probed) grew = this.readsPastEnd(fd);
    if (grew) this.sink.warnings.push(`file grew while being read (truncated to ${size} bytes): ${name}`);
    return digest ?? (hash ? hash.digest("hex") : EMPTY_SHA256);
  }

  /** One read past the end, into the chunk's spare room (overwritten by whatever comes next). */
  private readsPastEnd(fd: number): boolean {
    return readSync(fd, this.cb.buf, this.cb.pos, 1, null) > 0;
  }

  *end(): Generator<Buffer> {
    yield* this.cb.write(TAR_END);
    const rest = this.cb.rest();
    if (rest) yield rest;
  }
}

function sha256Hex(data: Uint8Array): string {
  return oneShotSha256 ? oneShotSha256(data) : crypto.createHash("sha256").update(data).digest("hex");
}

/** Yields the tar stream as chunks of exactly `chunkSize` bytes (the last one shorter). */
export async function* tarChunks(
  entries: AsyncIterable<ArchiveEntry>,
  chunkSize: number,
  sink: TarSink,
  source: ChunkSource = new ChunkPool(chunkSize),
): AsyncGenerator<Buffer> {
  const w = new TarWriter(chunkSize, sink, source);
  for await (const e of entries) yield* w.entry(e);
  yield* w.end();
}

/** tarChunks for entries listed synchronously (walkSources): no promise per entry. */
export function* tarChunksSync(
  entries: Iterable<ArchiveEntry>,
  chunkSize: number,
  sink: TarSink,
  source: ChunkSource = new ChunkPool(chunkSize),
): Generator<Buffer> {
  const w = new TarWriter(chunkSize, sink, source);
  for (const e of entries) yield* w.entry(e);
  yield* w.end();
}
