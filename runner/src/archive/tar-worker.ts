/**
 * Worker thread half of TarProducer (tar-producer.ts): walks the sources, reads and hashes every
 * file and cuts the tar stream into chunks, which it transfers (not copies) to the main thread.
 * The main thread hands each chunk's buffer back once it is compressed; that is also the credit
 * that lets this thread run ahead by at most `maxAhead` chunks.
 */
import { parentPort, workerData } from "node:worker_threads";
import { ChunkPool, tarChunks, walkSources, type TarSink } from "./source";
import { ManifestEntryText } from "./manifest-text";
import { toArchiveError } from "./errors";
import type { ProducerInit, ToProducer, FromProducer } from "./tar-producer";

const init = workerData as ProducerInit;
const port = parentPort!;
const pool = new ChunkPool(init.chunkSize, init.maxAhead);
let outstanding = 0;
let wake: (() => void) | undefined;

port.on("message", (m: ToProducer) => {
  if (m.type !== "buffer") return;
  outstanding--;
  pool.release(Buffer.from(m.buf));
  wake?.();
  wake = undefined;
});

const send = (m: FromProducer, transfer: ArrayBuffer[] = []) => port.postMessage(m, transfer);

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
  for await (const chunk of tarChunks(walkSources(init.sources, warnings), init.chunkSize, sink, pool)) {
    while (outstanding >= init.maxAhead) await new Promise<void>((r) => (wake = r));
    outstanding++;
    const buf = chunk.buffer as ArrayBuffer;
    send({ type: "chunk", buf, length: chunk.length, bytes: sink.bytesIn, files: sink.files, currentFile }, [
      buf,
    ]);
  }
  manifest.flush();
  send({ type: "end", count: manifest.count, warnings, bytesIn: sink.bytesIn, files: sink.files });
}

produce().catch((err: unknown) => {
  const e = toArchiveError(err);
  send({ type: "error", code: e.code, message: e.message });
});
