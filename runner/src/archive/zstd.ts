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
