import { createHash } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";

/**
 * Hashes (sha256) and counts the bytes that pass: in a pipeline between source and writer, or as its
 * end with `discard` (a read-back that only needs the digest keeps nothing).
 */
export class Sha256Meter extends Transform {
  /** Bytes seen so far. */
  size = 0;
  private readonly hash = createHash("sha256");
  private readonly discard: boolean;
  private readonly onBytes?: (size: number) => void;

  constructor(opts: { discard?: boolean; onBytes?: (size: number) => void } = {}) {
    super();
    this.discard = opts.discard ?? false;
    this.onBytes = opts.onBytes;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.size += chunk.length;
    this.onBytes?.(this.size);
    if (this.discard) cb();
    else cb(null, chunk);
  }

  /** Hex sha256 of every byte seen; call once, after the last. */
  digest(): string {
    return this.hash.digest("hex");
  }
}
