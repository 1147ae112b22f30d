/**
 * zstd through @mongodb-js/zstd 1.2.x's native binding. Its JS wrapper (index.js) drops the level
 * argument (every call runs at level 3), so we call the binding, which honours it.
 * Frames it writes carry no content checksum (frame header descriptor 0x00); integrity comes from
 * the per-frame SHA-256 in the manifest (mode none) or the AES-GCM tag per frame (encrypted).
 */
import { createRequire } from "node:module";
import * as wrapper from "@mongodb-js/zstd";

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
  out[4] = 0xa0; // FCS field 4 bytes, single segment, no checksum, no dictionary
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
/** A sample that level 1 cannot shrink below this share of its size counts as incompressible. */
const INCOMPRESSIBLE = 0.97;

/**
 * Compresses one chunk, but stores it raw when it is incompressible (media uploads, archives):
 * zstd would spend its full per-byte cost to produce raw blocks anyway. The test is three small
 * level-1 samples (start, middle, end); all three must fail to shrink, so a chunk with a compressible
 * file anywhere in it is still compressed, and a wrong guess costs ratio, never correctness.
 */
export async function compressChunk(data: Buffer, level: number): Promise<Buffer> {
  if (data.length >= 8 * SAMPLE) {
    const at = [0, (data.length >> 1) - SAMPLE / 2, data.length - SAMPLE];
    const sizes = await Promise.all(at.map((o) => compress(data.subarray(o, o + SAMPLE), 1)));
    if (sizes.every((s) => s.length >= SAMPLE * INCOMPRESSIBLE)) return rawFrame(data);
  }
  return compress(data, level);
}
