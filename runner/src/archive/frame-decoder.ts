/**
 * Decompresses verified frames on a worker thread into a ring of SharedArrayBuffer slots. The main
 * thread then reads tar bytes straight out of a slot: no decompressed frame is ever allocated in
 * its heap. Those allocations (1 GiB per GiB restored, as external buffers) made V8 run a full GC
 * every 64 MiB in the main isolate, whose heap is large; the worker's heap is tiny, so its GCs are
 * cheap. Every frame handed over has passed its tag or hash already; the bomb guard and the size
 * check run here as in decompressFrame.
 */
import { Worker } from "node:worker_threads";
import { createRequire } from "node:module";
import { corrupt } from "./errors";
import { zstdFrameOutputBound } from "./frames";

// Plain JS evaluated in the worker, so it runs the same under tsx, vitest and a build (no loader).
const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
const { decompress } = require(workerData.zstd);
const slots = new Uint8Array(workerData.sab);
const size = workerData.slotSize;
// Each frame (the one handed over, and the one decompressed) is a native buffer freed only when its
// wrapper is collected, and V8 waits for 64 MiB of them before it collects on its own: a scavenge
// every few frames, and a full collection now and then for wrappers that lived through two
// scavenges while their decompression ran, keep this thread's garbage (and the restore's RSS)
// small; this heap is tiny, so both are cheap. The flag is process-wide; only new contexts see it.
const collect = (() => {
  if (typeof globalThis.gc !== "function") require("node:v8").setFlagsFromString("--expose-gc");
  const gc = typeof globalThis.gc === "function" ? globalThis.gc : require("node:vm").runInNewContext("gc");
  return (type) => gc({ type });
})();
let frames = 0;
parentPort.on("message", (m) => {
  if (m.exit) return parentPort.close();
  decompress(Buffer.from(m.buf, m.off, m.len)).then(
    (out) => {
      if (out.length > size) throw new Error("frame larger than its slot: " + out.length);
      slots.set(out, m.slot * size);
      parentPort.postMessage({ index: m.index, len: out.length });
      if (++frames % 32 === 0) collect("major");
      else if (frames % 4 === 0) collect("minor");
    },
  ).catch((err) => parentPort.postMessage({ index: m.index, error: String(err && err.message) }));
});
`;

const zstdPath = createRequire(import.meta.url).resolve("@mongodb-js/zstd");

export interface DecodedFrame {
  index: number;
  /** a view into a shared slot: valid until `release(index)` */
  data: Buffer;
}

export class FrameDecoder {
  private readonly worker: Worker;
  private readonly sab: SharedArrayBuffer;
  private readonly free: number[] = [];
  private readonly slotOf = new Map<number, number>();
  private readonly done = new Map<number, { len?: number; error?: string }>();
  private failure: Error | null = null;
  private wake: (() => void) | null = null;
  private readonly exited: Promise<void>;

  constructor(
    private readonly slotSize: number,
    slots: number,
    /** the limit a frame's zstd block headers may declare (bomb guard) */
    private readonly boundLimit: number,
  ) {
    this.sab = new SharedArrayBuffer(slotSize * slots);
    for (let i = 0; i < slots; i++) this.free.push(i);
    this.worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { sab: this.sab, slotSize, zstd: zstdPath },
      resourceLimits: { maxYoungGenerationSizeMb: 4, maxOldGenerationSizeMb: 64 },
    });
    this.exited = new Promise((res) => this.worker.once("exit", () => res()));
    this.worker.on("message", (m: { index: number; len?: number; error?: string }) => {
      this.done.set(m.index, m);
      this.notify();
    });
    this.worker.on("error", (err) => {
      this.failure ??= err;
      this.notify();
    });
    void this.exited.then(() => {
      this.failure ??= new Error("frame decoder stopped unexpectedly");
      this.notify();
    });
  }

  private notify(): void {
    const w = this.wake;
    this.wake = null;
    w?.();
  }

  private async until(cond: () => boolean): Promise<void> {
    while (!cond()) {
      if (this.failure) throw this.failure;
      await new Promise<void>((r) => (this.wake = r));
    }
  }

  /** Waits for a free slot, then hands the frame over (its buffer is transferred, not copied). */
  async submit(index: number, frame: Buffer): Promise<void> {
    const bound = zstdFrameOutputBound(frame);
    if (bound > this.boundLimit)
      throw corrupt(
        `frame ${index} could expand to ${bound} bytes (limit ${this.boundLimit}): refused as a decompression bomb`,
      );
    await this.until(() => this.free.length > 0);
    const slot = this.free.pop()!;
    this.slotOf.set(index, slot);
    // Moved, not copied, when the frame owns its memory (a decrypted segment, a frame read on its
    // own); a view into a larger buffer (a stream chunk) is copied out first.
    const owns = (b: Buffer) => b.byteOffset === 0 && b.buffer.byteLength === b.length;
    const own = owns(frame) ? frame : Buffer.from(frame);
    this.worker.postMessage(
      { index, slot, buf: own.buffer, off: own.byteOffset, len: own.length },
      owns(own) ? [own.buffer as ArrayBuffer] : [],
    );
  }

  /** The decompressed frame; CORRUPT unless it is exactly `expected` bytes. */
  async result(index: number, expected: number): Promise<DecodedFrame> {
    await this.until(() => this.done.has(index));
    const r = this.done.get(index)!;
    this.done.delete(index);
    if (r.error !== undefined) throw corrupt(`frame ${index} does not decompress: ${r.error}`);
    if (r.len !== expected)
      throw corrupt(`frame ${index} decompressed to ${r.len} bytes, ${expected} expected`);
    const slot = this.slotOf.get(index)!;
    return { index, data: Buffer.from(this.sab, slot * this.slotSize, r.len) };
  }

  /** The frame's slot may be reused: nothing refers to its bytes any more. */
  release(index: number): void {
    const slot = this.slotOf.get(index);
    if (slot === undefined) return;
    this.slotOf.delete(index);
    this.free.push(slot);
    this.notify();
  }

  async close(): Promise<void> {
    this.worker.postMessage({ exit: true });
    await this.exited;
  }
}
