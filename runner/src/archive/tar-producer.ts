/**
 * The tar stream of source directories, produced on a worker thread (tar-worker.ts). Walking,
 * reading and hashing ~50k files is serial work that kept the main thread busy while compression
 * on the libuv pool waited for chunks; on its own thread it runs beside compression, sealing and
 * writing. Hosting backups, whose entries come from dumps running in this thread, use tarChunks
 * directly.
 */
import { createRequire } from "node:module";
import { fileURLToPath, pathToFileURL } from "node:url";
import { Worker } from "node:worker_threads";
import { ArchiveError, ArchiveErrorCode } from "./errors";
import type { ManifestBuilder } from "./manifest";
import type { TarSink } from "./source";

export interface ProducerInit {
  sources: string[];
  chunkSize: number;
  /** chunks the worker may have handed over and not yet got back */
  maxAhead: number;
}

/** A slot's chunk is compressed: the worker may fill it again. */
export type ToProducer = { type: "free"; slot: number };

export type FromProducer =
  /** a new chunk buffer, shared; chunks name it by `id` from then on */
  | { type: "slot"; id: number; sab: SharedArrayBuffer }
  | {
      type: "chunk";
      slot: number;
      length: number;
      bytes: number;
      files: number;
      currentFile?: string;
    }
  | { type: "entries"; json: string; n: number }
  | { type: "end"; count: number; warnings: string[]; bytesIn: number; files: number }
  | { type: "error"; code: ArchiveErrorCode; message: string };

const PROGRESS_EVERY = 8 * 1024 * 1024;

export class TarProducer {
  private readonly worker: Worker;
  private readonly inbox: FromProducer[] = [];
  private waiting: (() => void) | undefined;
  private finished = false;
  private readonly slots: Buffer[] = [];
  private readonly slotIds = new Map<ArrayBufferLike, number>();

  private constructor(
    script: URL,
    sources: string[],
    chunkSize: number,
    private readonly sink: TarSink,
    private readonly manifest: ManifestBuilder,
    maxAhead: number,
  ) {
    const init: ProducerInit = { sources, chunkSize, maxAhead };
    // A small young generation: the worker allocates little that lives, and RSS is budgeted.
    this.worker = new Worker(script, { workerData: init, resourceLimits: { maxYoungGenerationSizeMb: 4 } });
    this.worker.on("message", (m: FromProducer) => this.deliver(m));
    this.worker.on("error", (err) =>
      this.deliver({ type: "error", code: ArchiveErrorCode.Io, message: err.message }),
    );
    this.worker.on("exit", (code) => {
      if (!this.finished)
        this.deliver({ type: "error", code: ArchiveErrorCode.Io, message: `tar worker exited (${code})` });
    });
  }

  /** Starts the worker; the first call also prepares its script (see workerScript). */
  static async start(
    sources: string[],
    chunkSize: number,
    sink: TarSink,
    manifest: ManifestBuilder,
    maxAhead: number,
  ): Promise<TarProducer> {
    return new TarProducer(await workerScript(), sources, chunkSize, sink, manifest, maxAhead);
  }

  private deliver(m: FromProducer): void {
    this.inbox.push(m);
    this.waiting?.();
    this.waiting = undefined;
  }

  private async next(): Promise<FromProducer> {
    while (this.inbox.length === 0) await new Promise<void>((r) => (this.waiting = r));
    return this.inbox.shift()!;
  }

  /** Gives a chunk's slot back once nothing reads the chunk any more: the worker overwrites it. */
  release(chunk: Buffer): void {
    const slot = this.slotIds.get(chunk.buffer);
    if (this.finished || slot === undefined) return;
    this.worker.postMessage({ type: "free", slot } satisfies ToProducer);
  }

  /** Stops the worker (idempotent); chunks() does it itself when it ends or fails. */
  async close(): Promise<void> {
    this.finished = true;
    await this.worker.terminate();
  }

  /** The tar stream in chunks of chunkSize bytes (the last one shorter); entries go to the manifest. */
  async *chunks(): AsyncGenerator<Buffer> {
    let lastProgress = 0;
    try {
      for (;;) {
        this.sink.signal?.throwIfAborted();
        const m = await this.next();
        if (m.type === "error") throw new ArchiveError(m.code, m.message);
        if (m.type === "slot") {
          this.slots[m.id] = Buffer.from(m.sab);
          this.slotIds.set(m.sab, m.id);
          continue;
        }
        if (m.type === "entries") {
          this.manifest.addJson(m.json, m.n);
          continue;
        }
        if (m.type === "end") {
          this.finished = true;
          if (m.count !== this.manifest.count)
            throw new ArchiveError(ArchiveErrorCode.Io, "tar worker lost manifest entries");
          this.sink.warnings.push(...m.warnings);
          this.sink.bytesIn = m.bytesIn;
          this.sink.files = m.files;
          return;
        }
        this.sink.bytesIn = m.bytes;
        this.sink.files = m.files;
        if (this.sink.onProgress && m.bytes - lastProgress >= PROGRESS_EVERY) {
          lastProgress = m.bytes;
          this.sink.onProgress({
            bytes: m.bytes,
            files: m.files,
            currentFile: m.currentFile,
            phase: "backup",
          });
        }
        yield this.slots[m.slot]!.subarray(0, m.length);
      }
    } finally {
      await this.close();
    }
  }
}

let script: Promise<URL> | undefined;

/**
 * The worker as one plain-JS module. The runner runs its TypeScript through tsx, whose loader
 * would have to be registered again in the worker (another loader thread, ~10 MiB and ~0.2 s);
 * esbuild (tsx's own compiler) bundles tar-worker.ts in ~50 ms instead. Packages stay external,
 * imported by absolute path, so the native bindings load from node_modules as usual.
 */
function workerScript(): Promise<URL> {
  const entry = new URL("./tar-worker.ts", import.meta.url);
  return (script ??= bundle(fileURLToPath(entry)));
}

async function bundle(entry: string): Promise<URL> {
  const { build } = await import("esbuild");
  const req = createRequire(entry);
  const out = await build({
    entryPoints: [entry],
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    write: false,
    logLevel: "silent",
    // zstd.ts resolves the binding with createRequire(import.meta.url); a data: URL cannot anchor that.
    define: { "import.meta.url": JSON.stringify(pathToFileURL(entry).href) },
    plugins: [
      {
        name: "packages-by-absolute-path",
        setup(b) {
          b.onResolve({ filter: /^[^./]/ }, (a) =>
            a.path.startsWith("node:")
              ? { path: a.path, external: true }
              : { path: pathToFileURL(req.resolve(a.path)).href, external: true },
          );
        },
      },
    ],
  });
  const code = out.outputFiles[0]!.text;
  return new URL(`data:text/javascript;base64,${Buffer.from(code).toString("base64")}`);
}
