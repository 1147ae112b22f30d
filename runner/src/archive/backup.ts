/** createBackup: sources -> tar chunks -> zstd frames (concurrent) -> [AEAD segments] -> destination. */
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { archiveFileName } from "../../../shared/naming";
import { LocalDestination } from "../destinations/local";
import type { Destination } from "../destinations/types";
import type { BackupOptions, BackupResult } from "./types";
import { ArchiveError, toArchiveError } from "./errors";
import { createSealContext, type Kdf, type ScryptParams } from "./crypto";
import { DEFAULT_CHUNK_SIZE, FrameEncoder, MAX_CHUNK_SIZE } from "./frames";
import { ChunkPool, tarChunks, tarChunksSync, walkSources, type TarSink } from "./source";
import { TarProducer } from "./tar-producer";
import { ManifestBuilder, manifestFileName } from "./manifest";
import type { Manifest } from "./manifest-types";

export interface BackupInternals {
  /** Write here instead of a LocalDestination(outDir). */
  destination?: Destination;
  chunkSize?: number;
  concurrency?: number;
  /** Test-only: cheaper scrypt. Readers still bound it (crypto.SCRYPT_LIMITS). */
  scrypt?: ScryptParams;
  kdf?: Kdf;
  /** Build the tar stream of `sources` on this thread instead of the tar worker (tests compare both). */
  tarInThread?: boolean;
}

/** Chunks the tar worker may run ahead of compression (each one chunkSize bytes). */
const PRODUCER_AHEAD = 4;

function sealFor(opts: BackupOptions & BackupInternals, chunkSize: number) {
  const enc = opts.encryption;
  if (enc.mode === "none") return Promise.resolve(undefined);
  return createSealContext({
    mode: enc.mode,
    binding: opts.binding,
    chunkSize,
    password: enc.mode === "password" ? enc.password : undefined,
    dataKey: enc.mode === "panel" ? enc.dataKey : undefined,
    keyId: enc.mode === "panel" ? enc.keyId : undefined,
    wrappedKey: enc.mode === "panel" ? enc.wrappedKey : undefined,
    scrypt: opts.scrypt,
    kdf: opts.kdf,
  });
}

export async function createBackup(opts: BackupOptions & BackupInternals): Promise<BackupResult> {
  const started = Date.now();
  const now = opts.now ?? new Date();
  const chunkSize = opts.chunkSize ?? DEFAULT_CHUNK_SIZE;
  if (chunkSize < 4096 || chunkSize > MAX_CHUNK_SIZE)
    throw new ArchiveError("USAGE", "chunk size out of range");
  if (!Number.isInteger(opts.level) || opts.level < 1 || opts.level > 19)
    throw new ArchiveError("USAGE", "compression level must be 1-19");
  if (!opts.sources?.length && !opts.entries)
    throw new ArchiveError("USAGE", "nothing to back up: give sources or entries");
  const enc = opts.encryption;
  const encrypted = enc.mode !== "none";
  let fileName: string;
  try {
    fileName = archiveFileName(opts.name, opts.kind, now, encrypted);
  } catch (err) {
    throw new ArchiveError("USAGE", (err as Error).message);
  }
  const dest = opts.destination ?? new LocalDestination(opts.outDir);
  const warnings: string[] = [];
  const manifestBuilder = new ManifestBuilder();
  const sink: TarSink = {
    manifest: manifestBuilder,
    warnings,
    bytesIn: 0,
    files: 0,
    onProgress: opts.onProgress,
    signal: opts.signal,
  };
  // The KDF first: scrypt's 128 MiB would otherwise add to the pipeline's memory at its peak
  // (measured: +20 MiB peak RSS for 0.1 s saved).
  let producer: TarProducer | undefined;
  let seal: Awaited<ReturnType<typeof createSealContext>> | undefined;
  try {
    seal = await sealFor(opts, chunkSize);
    if (!opts.entries && !opts.tarInThread)
      producer = await TarProducer.start(opts.sources!, chunkSize, sink, manifestBuilder, PRODUCER_AHEAD);
  } catch (err) {
    await producer?.close();
    throw toArchiveError(err);
  }
  const pool = new ChunkPool(chunkSize);
  const encoder = new FrameEncoder({
    level: opts.level,
    release: (b) => (producer ? producer.release(b) : pool.release(b)),
    seal,
    concurrency: opts.concurrency,
    header: {
      v: 1,
      mode: enc.mode,
      binding: opts.binding,
      chunkSize,
      name: opts.name,
      kind: opts.kind,
      createdAt: now.toISOString(),
    },
  });
  let writer: Awaited<ReturnType<Destination["createWriter"]>>;
  try {
    writer = await dest.createWriter(fileName, { signal: opts.signal });
  } catch (err) {
    await producer?.close();
    throw toArchiveError(err);
  }
  let mWriter: Awaited<ReturnType<Destination["createWriter"]>> | undefined;
  let committed = false;
  try {
    const chunks = producer
      ? producer.chunks()
      : opts.entries
        ? tarChunks(opts.entries, chunkSize, sink, pool)
        : tarChunksSync(walkSources(opts.sources!, warnings), chunkSize, sink, pool);
    const source = Readable.from(chunks, {
      objectMode: true,
      highWaterMark: 1,
    });
    await pipeline(source, encoder, writer.stream, { signal: opts.signal });
    const info = await writer.commit();
    committed = true;
    if (info.size !== encoder.bytesOut)
      throw new ArchiveError("IO_ERROR", `stored size ${info.size} differs from ${encoder.bytesOut} written`);
    const sha256 = encoder.fileHash.digest("hex");
    const manifest: Manifest = {
      v: 1,
      name: opts.name,
      kind: opts.kind,
      createdAt: now.toISOString(),
      mode: enc.mode,
      binding: opts.binding,
      archive: { fileName, size: encoder.bytesOut, sha256 },
      chunkSize,
      frames: encoder.frames,
      entries: [], // held, compressed, by sink.manifest
      totals: {
        files: sink.files,
        entries: manifestBuilder.count,
        bytes: sink.bytesIn,
        tarBytes: encoder.tarBytes,
      },
      warnings,
    };
    const mName = manifestFileName(fileName);
    mWriter = await dest.createWriter(mName, { signal: opts.signal });
    const mBytes = await manifestBuilder.encode(manifest, seal);
    await pipeline(Readable.from([mBytes]), mWriter.stream, { signal: opts.signal });
    await mWriter.commit();
    opts.onProgress?.({ bytes: sink.bytesIn, files: sink.files, totalBytes: sink.bytesIn, phase: "done" });
    return {
      path:
        dest instanceof LocalDestination
          ? `${dest.root.replace(/\/$/, "")}/${fileName}`
          : `${dest.url}/${fileName}`,
      fileName,
      size: encoder.bytesOut,
      sha256,
      fileCount: sink.files,
      bytesIn: sink.bytesIn,
      durationMs: Date.now() - started,
      warnings,
      manifestFileName: mName,
    };
  } catch (err) {
    await producer?.close();
    await writer.abort(err).catch(() => {});
    await mWriter?.abort(err).catch(() => {});
    // A failure after the archive's commit (manifest write) must not leave an archive without a manifest.
    if (committed) await dest.delete(fileName).catch(() => {});
    throw toArchiveError(err);
  }
}
