import { createReadStream } from "node:fs";
import { mkdir, open, readdir, rm, stat, utimes, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { Readable } from "node:stream";
import {
  DestinationError,
  type Destination,
  type ObjectInfo,
  type ObjectWriter,
} from "../destinations/types";

interface Spooled {
  info: ObjectInfo;
  path: string;
  fh: FileHandle;
  /** Byte runs held locally, [start, end) sorted and merged. */
  have: [number, number][];
}

function covered(have: [number, number][], start: number, end: number): boolean {
  return have.some(([s, e]) => s <= start && end <= e);
}

function addRun(have: [number, number][], start: number, end: number): void {
  have.push([start, end]);
  have.sort((a, b) => a[0] - b[0]);
  const merged: [number, number][] = [];
  for (const r of have) {
    const last = merged[merged.length - 1];
    if (last && r[0] <= last[1]) last[1] = Math.max(last[1], r[1]);
    else merged.push([r[0], r[1]]);
  }
  have.splice(0, have.length, ...merged);
}

/**
 * Read-only view of a remote copy that keeps every byte range it fetched in a sparse local file, so a
 * second read of the same ranges (the restore after the up-front check) comes from local disk instead
 * of the network. Only the ranges the reader asks for are fetched (ranged reads); a destination
 * without ranges is fetched whole once. The spool holds stored (still encrypted) bytes and is
 * untrusted like the remote: the archive engine authenticates every byte it reads from it again.
 */
export class RangeSpool implements Destination {
  readonly url: string;
  readonly supportsRanges = true;
  /** Bytes read from the remote (each range at most once unless reads overlap partially). */
  bytesFetched = 0;
  private readonly files = new Map<string, Promise<Spooled | null>>();
  private readonly sizes = new Map<string, number>();
  /** Next spool file number, taken before any await: objects opened at once never share a file. */
  private nextFile = 0;

  constructor(
    private readonly remote: Destination,
    private readonly dir: string,
  ) {
    this.url = remote.url;
  }

  private spooled(name: string): Promise<Spooled | null> {
    let p = this.files.get(name);
    if (!p) {
      // Numbered, not named after the object: a remote name never becomes a local path.
      const path = join(this.dir, `${this.nextFile++}.spool`);
      const opening = (async () => {
        const info = await this.remote.stat(name);
        if (!info) return null;
        this.sizes.set(name, info.size);
        await mkdir(this.dir, { recursive: true, mode: 0o700 });
        const fh = await open(path, "w+", 0o600);
        return { info, path, fh, have: [] as [number, number][] };
      })();
      // A failed look-up (connection reset) is not remembered: the next read asks again.
      opening.catch(() => {
        if (this.files.get(name) === opening) this.files.delete(name);
      });
      this.files.set(name, opening);
      p = opening;
    }
    return p;
  }

  /** Size of an object already looked at (undefined before the first read). */
  archiveBytes(name: string): number | undefined {
    return this.sizes.get(name);
  }

  async stat(name: string): Promise<ObjectInfo | null> {
    return (await this.spooled(name))?.info ?? null;
  }

  async createReadStream(name: string, range?: { start: number; end?: number }): Promise<Readable> {
    const f = await this.spooled(name);
    if (!f) throw new DestinationError("NOT_FOUND", this.url, `${name} does not exist`);
    await this.markLive();
    const start = range?.start ?? 0;
    const end = Math.min(range?.end ?? f.info.size - 1, f.info.size - 1);
    if (end < start) return Readable.from([]);
    if (!this.remote.supportsRanges && !covered(f.have, 0, f.info.size)) {
      for await (const _ of this.fetch(name, f, 0, f.info.size - 1, false));
    }
    if (covered(f.have, start, end + 1)) return createReadStream(f.path, { start, end });
    return Readable.from(this.pieces(name, f, start, end));
  }

  /**
   * A restore that reads only from the spool (after the check) writes nothing to it for as long as its
   * databases take to import: renew the dir's mtime so sweepStaleSpools never takes it for a dead one.
   */
  private async markLive(): Promise<void> {
    const now = new Date();
    await utimes(this.dir, now, now).catch(() => {});
  }

  /** start..end (inclusive): what the spool holds comes from disk, only the gaps from the remote. */
  private async *pieces(name: string, f: Spooled, start: number, end: number): AsyncGenerator<Buffer> {
    let pos = start;
    while (pos <= end) {
      const run = f.have.find(([s, e]) => s <= pos && pos < e);
      if (run) {
        const to = Math.min(end, run[1] - 1);
        for await (const c of createReadStream(f.path, { start: pos, end: to })) yield c as Buffer;
        pos = to + 1;
        continue;
      }
      const next = f.have.find(([s]) => s > pos);
      const to = Math.min(end, next ? next[0] - 1 : end);
      yield* this.fetch(name, f, pos, to, true);
      pos = to + 1;
    }
  }

  /** The remote's bytes start..end, written to the spool at their offsets as they pass through. */
  private async *fetch(
    name: string,
    f: Spooled,
    start: number,
    end: number,
    ranged: boolean,
  ): AsyncGenerator<Buffer> {
    const src = await this.remote.createReadStream(name, ranged ? { start, end } : undefined);
    let pos = start;
    try {
      for await (const c of src) {
        // Never more than was asked for: the spool must not hold bytes past the range it claims.
        const piece = (c as Buffer).subarray(0, Math.max(0, end + 1 - pos));
        if (!piece.length) break;
        await this.writeAt(f, piece, pos);
        addRun(f.have, pos, pos + piece.length);
        pos += piece.length;
        this.bytesFetched += piece.length;
        yield piece;
      }
    } finally {
      src.destroy();
    }
    if (pos <= end) throw new DestinationError("PROTOCOL_ERROR", this.url, `read ${name}: range ended early`);
  }

  /** Positional write of all of `b`: a short write (disk full) must never be taken for spooled bytes. */
  private async writeAt(f: Spooled, b: Buffer, at: number): Promise<void> {
    try {
      for (let off = 0; off < b.length;) {
        const { bytesWritten } = await f.fh.write(b, off, b.length - off, at + off);
        if (bytesWritten === 0) throw Object.assign(new Error("write returned 0 bytes"), { code: "ENOSPC" });
        off += bytesWritten;
      }
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOSPC") throw err;
      throw new DestinationError(
        "NO_SPACE",
        this.dir,
        "no space left for the restore spool (it holds the selected part of the archive); free space or restore fewer domains",
        { cause: err },
      );
    }
  }

  async list(prefix?: string): Promise<ObjectInfo[]> {
    return this.remote.list(prefix);
  }

  createWriter(): Promise<ObjectWriter> {
    return Promise.reject(new DestinationError("PROTOCOL_ERROR", this.url, "a restore spool is read-only"));
  }

  delete(): Promise<void> {
    return Promise.reject(new DestinationError("PROTOCOL_ERROR", this.url, "a restore spool is read-only"));
  }

  test(): Promise<void> {
    return this.remote.test();
  }

  /** Removes the spool; the remote itself is closed by whoever opened it. */
  async close(): Promise<void> {
    for (const p of this.files.values()) await (await p.catch(() => null))?.fh.close().catch(() => {});
    this.files.clear();
    await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * Removes spools that a crashed or killed runner left under `parent`: a live spool is written to as its
 * restore reads, so one whose newest file is older than `maxAgeMs` belongs to no running job.
 */
export async function sweepStaleSpools(
  parent: string,
  maxAgeMs: number,
  now = Date.now(),
): Promise<string[]> {
  const removed: string[] = [];
  for (const name of await readdir(parent).catch(() => [] as string[])) {
    const dir = join(parent, name);
    const files = await readdir(dir).catch(() => null);
    if (!files) continue;
    // Gone meanwhile (its job just ended): nothing to sweep.
    const st = await stat(dir).catch(() => null);
    if (!st) continue;
    let newest = st.mtimeMs;
    for (const f of files)
      newest = Math.max(newest, (await stat(join(dir, f)).catch(() => null))?.mtimeMs ?? 0);
    if (now - newest > maxAgeMs) {
      await rm(dir, { recursive: true, force: true });
      removed.push(name);
    }
  }
  return removed;
}
