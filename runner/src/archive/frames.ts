/**
 * zstd framing (docs/FORMAT.md §2): a Cairn header skippable frame, independent data frames,
 * and the zstd seekable-format seek table as the last (skippable) frame.
 */
import { createHash } from "node:crypto";
import { availableParallelism } from "node:os";
import { Transform, type TransformCallback } from "node:stream";
import { compressChunkParts } from "./zstd";
import { corrupt } from "./errors";
import { sealSegmentParts, type SealContext } from "./crypto";
import type { ArchiveBinding } from "./types";

export const ZSTD_MAGIC = 0xfd2fb528;
export const CAIRN_SKIPPABLE_MAGIC = 0x184d2a50;
export const SEEK_TABLE_MAGIC = 0x184d2a5e;
export const SEEKABLE_FOOTER_MAGIC = 0x8f92eab1;
export const HDR_TAG = Buffer.from("CAIRNHDR", "ascii");
/** 1 MiB: same ratio as 4 MiB on hosting trees, less waste on selective reads, less memory in flight. */
export const DEFAULT_CHUNK_SIZE = 1024 * 1024;
/** Readers refuse chunk sizes above this (bounds memory per frame and the decompression cap). */
export const MAX_CHUNK_SIZE = 32 * 1024 * 1024;
export const MAX_WINDOW = 64 * 1024 * 1024;

export interface FrameInfo {
  /** compressed (stored) size of the zstd frame */
  c: number;
  /** decompressed size */
  d: number;
  /** SHA-256 (hex) of the stored frame bytes */
  h: string;
}

export interface PlainHeader {
  v: 1;
  mode: "none" | "password" | "panel";
  binding: ArchiveBinding;
  chunkSize: number;
  name?: string;
  kind?: string;
  createdAt?: string;
}

export function encodeHeaderFrame(h: PlainHeader): Buffer {
  const payload = Buffer.concat([HDR_TAG, Buffer.from(JSON.stringify(h), "utf8")]);
  const f = Buffer.alloc(8);
  f.writeUInt32LE(CAIRN_SKIPPABLE_MAGIC, 0);
  f.writeUInt32LE(payload.length, 4);
  return Buffer.concat([f, payload]);
}

export function decodeHeaderFrame(frame: Buffer): PlainHeader {
  if (frame.length < 16 || frame.readUInt32LE(0) !== CAIRN_SKIPPABLE_MAGIC)
    throw corrupt("missing Cairn header frame");
  if (frame.readUInt32LE(4) !== frame.length - 8 || !frame.subarray(8, 16).equals(HDR_TAG))
    throw corrupt("bad Cairn header frame");
  try {
    const h = JSON.parse(frame.subarray(16).toString("utf8")) as PlainHeader;
    if (h.v !== 1 || typeof h.chunkSize !== "number" || !h.binding) throw new Error("fields");
    return h;
  } catch {
    throw corrupt("Cairn header frame is not valid");
  }
}

/** Seek table frame for the given frames (zstd seekable format, no per-frame checksums). */
export function encodeSeekTable(frames: { c: number; d: number }[]): Buffer {
  const size = frames.length * 8 + 9;
  const b = Buffer.alloc(8 + size);
  b.writeUInt32LE(SEEK_TABLE_MAGIC, 0);
  b.writeUInt32LE(size, 4);
  frames.forEach((f, i) => {
    b.writeUInt32LE(f.c, 8 + i * 8);
    b.writeUInt32LE(f.d, 12 + i * 8);
  });
  b.writeUInt32LE(frames.length, 8 + frames.length * 8);
  b[12 + frames.length * 8] = 0;
  b.writeUInt32LE(SEEKABLE_FOOTER_MAGIC, 13 + frames.length * 8);
  return b;
}

export function decodeSeekTable(frame: Buffer): { c: number; d: number }[] {
  if (frame.length < 17 || frame.readUInt32LE(0) !== SEEK_TABLE_MAGIC) throw corrupt("missing seek table");
  if (frame.readUInt32LE(4) !== frame.length - 8) throw corrupt("seek table size mismatch");
  const n = frame.readUInt32LE(frame.length - 9);
  if (frame.readUInt32LE(frame.length - 4) !== SEEKABLE_FOOTER_MAGIC || frame[frame.length - 5] !== 0)
    throw corrupt("bad seek table footer");
  if (n * 8 + 17 !== frame.length) throw corrupt("seek table entry count mismatch");
  const out: { c: number; d: number }[] = [];
  for (let i = 0; i < n; i++)
    out.push({ c: frame.readUInt32LE(8 + i * 8), d: frame.readUInt32LE(12 + i * 8) });
  return out;
}

/**
 * Walks a zstd frame's block headers without decompressing and returns an upper bound of its output.
 * This is the decompression-bomb guard: a frame whose bound exceeds what the manifest declares is
 * refused before any decompression.
 */
export function zstdFrameOutputBound(frame: Buffer): number {
  const { bound, end } = scanZstdFrame(frame);
  if (end !== frame.length) throw corrupt("zstd frame length does not match its blocks");
  return bound;
}

/** Cuts concatenated zstd frames apart by walking their block headers (no decompression). */
export function splitZstdFrames(buf: Buffer): Buffer[] {
  const out: Buffer[] = [];
  let rest = buf;
  while (rest.length > 0) {
    const { end } = scanZstdFrame(rest);
    out.push(rest.subarray(0, end));
    rest = rest.subarray(end);
  }
  if (out.length === 0) throw corrupt("no zstd frame");
  return out;
}

function scanZstdFrame(frame: Buffer): { bound: number; end: number } {
  if (frame.length < 6 || frame.readUInt32LE(0) !== ZSTD_MAGIC) throw corrupt("not a zstd frame");
  const fhd = frame[4]!;
  const fcsFlag = fhd >> 6;
  const single = (fhd >> 5) & 1;
  if ((fhd >> 3) & 1) throw corrupt("zstd frame header reserved bit set");
  const checksum = (fhd >> 2) & 1;
  const dictFlag = fhd & 3;
  let pos = 5;
  let window = 0;
  if (!single) {
    const wd = frame[pos++]!;
    const log = 10 + (wd >> 3);
    window = 2 ** log + (2 ** log / 8) * (wd & 7);
  }
  pos += [0, 1, 2, 4][dictFlag]!;
  if (dictFlag !== 0) throw corrupt("zstd frames with dictionaries are not used by Cairn");
  const fcsLen = [single ? 1 : 0, 2, 4, 8][fcsFlag]!;
  let fcs = -1;
  if (fcsLen === 1) fcs = frame[pos]!;
  else if (fcsLen === 2) fcs = frame.readUInt16LE(pos) + 256;
  else if (fcsLen === 4) fcs = frame.readUInt32LE(pos);
  else if (fcsLen === 8) fcs = Number(frame.readBigUInt64LE(pos));
  pos += fcsLen;
  if (single) window = fcs;
  if (window > MAX_WINDOW) throw corrupt(`zstd window ${window} exceeds the limit`);
  const maxBlock = Math.min(window, 128 * 1024);
  let bound = 0;
  for (;;) {
    if (pos + 3 > frame.length) throw corrupt("zstd frame truncated");
    const bh = frame[pos]! | (frame[pos + 1]! << 8) | (frame[pos + 2]! << 16);
    pos += 3;
    const last = bh & 1;
    const type = (bh >> 1) & 3;
    const size = bh >>> 3;
    if (type === 0) {
      bound += size;
      pos += size;
    } else if (type === 1) {
      bound += size;
      pos += 1;
    } else if (type === 2) {
      if (size > maxBlock) throw corrupt("zstd block larger than allowed");
      bound += maxBlock;
      pos += size;
    } else throw corrupt("reserved zstd block type");
    if (last) break;
  }
  if (checksum) pos += 4;
  if (pos > frame.length) throw corrupt("zstd frame truncated");
  if (fcs >= 0) bound = Math.min(bound, fcs);
  return { bound, end: pos };
}

export interface FrameEncoderOptions {
  level: number;
  /** Gets each input chunk back once it is compressed (buffer reuse). */
  release?: (chunk: Buffer) => void;
  header: PlainHeader;
  seal?: SealContext;
  concurrency?: number;
}

interface Done {
  /** the frame, in pieces (frame, checksum) */
  frame: Buffer[];
  /** the stored bytes: the sealed segment (length prefix, ciphertext+tag), or the frame itself */
  stored: Buffer[];
  d: number;
}

/**
 * Chunks in (objectMode, each <= chunkSize) -> archive bytes out. Compresses up to `concurrency`
 * frames at once on the libuv pool and emits them in order; seals each frame as one segment when
 * encrypting. The bounded queue is the backpressure: a full queue holds the writer's callback.
 */
export class FrameEncoder extends Transform {
  readonly frames: FrameInfo[] = [];
  readonly fileHash = createHash("sha256");
  bytesOut = 0;
  tarBytes = 0;
  private queue: Promise<Done>[] = [];
  private readonly max: number;
  private segment = 0;

  constructor(private readonly o: FrameEncoderOptions) {
    super({ writableObjectMode: true, writableHighWaterMark: 1 });
    // One frame per core plus one. Two per core plus two ran ~20% faster on 2 cores but raised the CLI's
    // peak RSS from ~225-280 MiB to ~270-315 MiB (over the 256 MiB budget), so it is opt-in via `concurrency`.
    this.max = o.concurrency ?? Math.max(2, availableParallelism()) + 1;
    if (o.seal) this.emitBytes(o.seal.header);
    this.emitFrame(encodeHeaderFrame(o.header), 0, false);
  }

  private emitBytes(b: Buffer): void {
    this.fileHash.update(b);
    this.bytesOut += b.length;
    this.push(b);
  }

  private emitFrame(frame: Buffer | Buffer[], d: number, last: boolean, stored?: Buffer[]): void {
    const pieces = Array.isArray(frame) ? frame : [frame];
    // Encrypted frames are authenticated by their GCM tag; a hash would only cost time.
    if (!last)
      this.frames.push({
        c: pieces.reduce((n, p) => n + p.length, 0),
        d,
        h: this.o.seal ? "" : pieces.reduce((h, p) => h.update(p), createHash("sha256")).digest("hex"),
      });
    const out =
      stored ?? (this.o.seal ? sealSegmentParts(this.o.seal, this.segment++, last, pieces) : pieces);
    for (const b of out) this.emitBytes(b);
  }

  private async drain(keep: number): Promise<void> {
    while (this.queue.length > keep) {
      const done = await this.queue.shift()!;
      this.emitFrame(done.frame, done.d, false, done.stored);
    }
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.tarBytes += chunk.length;
    const seal = this.o.seal;
    const counter = seal ? this.segment++ : 0;
    const d = chunk.length;
    const p = compressChunkParts(chunk, this.o.level).then((frame) => {
      this.o.release?.(chunk);
      return { frame, stored: seal ? sealSegmentParts(seal, counter, false, frame) : frame, d };
    });
    p.catch(() => {});
    this.queue.push(p);
    this.drain(this.max - 1).then(() => cb(), cb);
  }

  override _flush(cb: TransformCallback): void {
    this.drain(0).then(() => {
      this.emitFrame(encodeSeekTable(this.frames), 0, true);
      cb();
    }, cb);
  }
}
