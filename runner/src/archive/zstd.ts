/**
 * zstd through @mongodb-js/zstd 1.2.x's native binding. Its JS wrapper (index.js) drops the level
 * argument (every call runs at level 3), so we call the binding, which honours it.
 * The binding writes frames without a content checksum; compressChunk adds it (XXH64, RFC 8878
 * §3.1.1), so stock `zstd -d` and our decoder both check every frame's content.
 */
import { createRequire } from "node:module";
import * as wrapper from "@mongodb-js/zstd";
import { xxh64 } from "@node-rs/xxhash";

interface Binding {
  compress(data: Buffer, level?: number): Promise<Buffer>;
  decompress(data: Buffer): Promise<Buffer>;
}

const require = createRequire(import.meta.url);
let binding: Binding | null = null;
try {
  binding = require("@mongodb-js/zstd/bindings.js") as Binding;
} catch {
  binding = null;
}

export function compress(data: Buffer, level: number): Promise<Buffer> {
  return binding ? binding.compress(data, level) : wrapper.compress(data, level);
}

export function decompress(data: Buffer): Promise<Buffer> {
  return wrapper.decompress(data);
}

/** zstd's largest block (RFC 8878 §3.1.1.2.3): raw blocks are cut to this size. */
const MAX_BLOCK = 128 * 1024;

/**
 * A valid zstd frame that stores `data` uncompressed: single-segment header with a 4-byte content
 * size, then raw blocks. Stock `zstd -d` reads it; building it costs one copy and no compression.
 */
export function rawFrame(data: Buffer): Buffer {
  const blocks = Math.max(1, Math.ceil(data.length / MAX_BLOCK));
  const out = Buffer.allocUnsafe(4 + 1 + 4 + blocks * 3 + data.length);
  out.writeUInt32LE(0xfd2fb528, 0);
  out[4] = 0xa0; // FCS field 4 bytes, single segment, no checksum (see withChecksum), no dictionary
  out.writeUInt32LE(data.length, 5);
  let pos = 9;
  for (let i = 0; i < blocks; i++) {
    const start = i * MAX_BLOCK;
    const size = Math.min(MAX_BLOCK, data.length - start);
    const bh = (size << 3) | (0 << 1) | (i === blocks - 1 ? 1 : 0); // type 0 = raw
    out[pos] = bh & 0xff;
    out[pos + 1] = (bh >>> 8) & 0xff;
    out[pos + 2] = (bh >>> 16) & 0xff;
    data.copy(out, pos + 3, start, start + size);
    pos += 3 + size;
  }
  return out;
}

const SAMPLE = 16 * 1024;
/**
 * Bits per byte above which a sample counts as incompressible. Random bytes measure ~7.99 on a
 * 16 KiB sample; JPEG, MP4, ZIP and gzip data the same; source code and mail 4.5-6.
 */
const INCOMPRESSIBLE_BITS = 7.9;

/** Shannon entropy of the bytes, in bits per byte. */
export function byteEntropy(b: Uint8Array): number {
  const counts = new Uint32Array(256);
  for (let i = 0; i < b.length; i++) counts[b[i]!]!++;
  let bits = 0;
  for (const c of counts) {
    if (c === 0) continue;
    const p = c / b.length;
    bits -= p * Math.log2(p);
  }
  return bits;
}

/**
 * Compresses one chunk, but stores it raw when it is incompressible (media uploads, archives):
 * zstd would spend its full per-byte cost to produce raw blocks anyway. The test is the byte
 * entropy of three 16 KiB samples (start, middle, end); all three must look random, so a chunk
 * with a compressible file anywhere in it is still compressed, and a wrong guess costs ratio,
 * never correctness. (It replaced three level-1 trial compressions: same decisions on the
 * benchmark tree, no pool round trips, no zstd contexts allocated.)
 */
export async function compressChunk(data: Buffer, level: number): Promise<Buffer> {
  return Buffer.concat(await compressChunkParts(data, level));
}

/**
 * compressChunk's frame as two pieces, the frame with its checksum flag set and the 4-byte
 * checksum that follows it, so the frame is never copied to append 4 bytes (a copy of every
 * compressed byte, and an allocation per frame that drove the main thread's GC).
 */
export async function compressChunkParts(data: Buffer, level: number): Promise<[Buffer, Buffer]> {
  // Hashed now: the caller may recycle `data` as soon as the returned promise settles, not before.
  const sum = contentChecksum(data);
  if (data.length >= 8 * SAMPLE) {
    const at = [0, (data.length >> 1) - SAMPLE / 2, data.length - SAMPLE];
    if (at.every((o) => byteEntropy(data.subarray(o, o + SAMPLE)) > INCOMPRESSIBLE_BITS))
      return checksumParts(rawFrame(data), sum);
  }
  return checksumParts(await compress(data, level), sum);
}

/** The frame content checksum: the low 32 bits of XXH64 (seed 0) of the decompressed data. */
export function contentChecksum(data: Buffer): number {
  return Number(xxh64(data) & 0xffffffffn);
}

/**
 * Sets a single frame's Content_Checksum_flag and appends the checksum. Only valid for one frame
 * without a checksum whose last block ends the buffer, which is what the binding and rawFrame write.
 */
export function withChecksum(frame: Buffer, sum: number): Buffer {
  return Buffer.concat(checksumParts(Buffer.from(frame), sum));
}

/** withChecksum without the copy: sets the flag in `frame` itself (which the caller owns). */
function checksumParts(frame: Buffer, sum: number): [Buffer, Buffer] {
  if (frame.readUInt32LE(0) !== 0xfd2fb528 || frame[4]! & 0x04)
    throw new Error("withChecksum: not a zstd frame without checksum");
  frame[4] = frame[4]! | 0x04;
  const tail = Buffer.allocUnsafe(4);
  tail.writeUInt32LE(sum >>> 0, 0);
  return [frame, tail];
}
