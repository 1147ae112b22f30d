/**
 * Worker thread half of TarProducer (tar-producer.ts): walks the sources, reads and hashes every
 * file and cuts the tar stream into chunks, which it writes into buffers shared with the main
 * thread and hands over by slot number. The main thread frees each slot once its chunk is
 * compressed; that is also the credit that lets this thread run ahead by at most `maxAhead` chunks.
 */
import { parentPort, workerData } from "node:worker_threads";
import { tarChunksSync, walkSources, type ChunkSource, type TarSink } from "./source";
import { ManifestEntryText } from "./manifest-text";
import { toArchiveError } from "./errors";
import type { ProducerInit, ToProducer, FromProducer } from "./tar-producer";

const init = workerData as ProducerInit;
const port = parentPort!;
const send = (m: FromProducer) => port.postMessage(m);

/**
 * Chunk buffers in SharedArrayBuffers, each announced to the main thread once. Transferring a
 * fresh ArrayBuffer per chunk instead made every 1 MiB chunk new external memory on the main
 * thread, which drove most of its mark-compact collections.
 */
class SharedSlots implements ChunkSource {
  private readonly views: Buffer[] = [];
  private readonly ids = new Map<ArrayBufferLike, number>();
  private readonly free: number[] = [];

  acquire(): Buffer {
    const id = this.free.pop();
    if (id !== undefined) return this.views[id]!;
    const sab = new SharedArrayBuffer(init.chunkSize);
    this.ids.set(sab, this.views.length);
    send({ type: "slot", id: this.views.length, sab });
    this.views.push(Buffer.from(sab));
    return this.views[this.views.length - 1]!;
  }

  idOf(chunk: Buffer): number {
    return this.ids.get(chunk.buffer)!;
  }

  release(id: number): void {
    this.free.push(id);
  }
}

const slots = new SharedSlots();
let outstanding = 0;
let wake: (() => void) | undefined;

port.on("message", (m: ToProducer) => {
  if (m.type !== "free") return;
  outstanding--;
  slots.release(m.slot);
  wake?.();
  wake = undefined;
});

async function produce(): Promise<void> {
  const warnings: string[] = [];
  const manifest = new ManifestEntryText((json, n) => send({ type: "entries", json, n }));
  let currentFile: string | undefined;
  const sink: TarSink = {
    manifest,
    warnings,
    bytesIn: 0,
    files: 0,
    onProgress: (p) => (currentFile = p.currentFile),
  };
  // Synchronous between chunks: the freed slots are read while this thread waits for credit.
  for (const chunk of tarChunksSync(walkSources(init.sources, warnings), init.chunkSize, sink, slots)) {
    while (outstanding >= init.maxAhead) await new Promise<void>((r) => (wake = r));
    outstanding++;
    send({
      type: "chunk",
      slot: slots.idOf(chunk),
      length: chunk.length,
      bytes: sink.bytesIn,
      files: sink.files,
      currentFile,
    });
  }
  manifest.flush();
  send({ type: "end", count: manifest.count, warnings, bytesIn: sink.bytesIn, files: sink.files });
}

produce().catch((err: unknown) => {
  const e = toArchiveError(err);
  send({ type: "error", code: e.code, message: e.message });
});
