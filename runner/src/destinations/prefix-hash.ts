/**
 * sha256 of any prefix of a stream that ends in its last `window` bytes. A resumable writer needs the
 * hash of exactly the bytes the server holds after a cut (SFTP: the acknowledged run; FTP: whatever
 * SIZE reports), which trails what was sent by the requests or socket buffers in flight. The tail is
 * kept as references to the chunks already passed on (no copies); older bytes go into one running hash.
 */
import { createHash, type Hash } from "node:crypto";

export class PrefixHash {
  private readonly base: Hash = createHash("sha256");
  /** Bytes folded into `base`. */
  private baseLen = 0;
  private readonly tail: Buffer[] = [];
  private tailLen = 0;

  constructor(private readonly window: number) {}

  get length(): number {
    return this.baseLen + this.tailLen;
  }

  update(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.tail.push(chunk);
    this.tailLen += chunk.length;
    // Fold whole chunks only while the rest still covers the window.
    while (this.tail.length > 1 && this.tailLen - (this.tail[0] as Buffer).length >= this.window) {
      const c = this.tail.shift() as Buffer;
      this.base.update(c);
      this.baseLen += c.length;
      this.tailLen -= c.length;
    }
  }

  /** Hex sha256 of the first `n` bytes; undefined when `n` is no longer (or not yet) covered. */
  digestAt(n: number): string | undefined {
    if (n < this.baseLen || n > this.length) return undefined;
    const h = this.base.copy();
    let left = n - this.baseLen;
    for (const c of this.tail) {
      if (left <= 0) break;
      const piece = c.length <= left ? c : c.subarray(0, left);
      h.update(piece);
      left -= piece.length;
    }
    return h.digest("hex");
  }
}
