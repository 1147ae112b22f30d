/**
 * Opening an archive for reading: header, key, manifest, binding; then verified frames and tar
 * bytes. Every byte handed on has passed its segment tag (encrypted) or its frame hash (none).
 */
import { createHash } from "node:crypto";
import { availableParallelism } from "node:os";
import { open, type FileHandle } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import type { Readable } from "node:stream";
import { decompress } from "./zstd";
import { LocalDestination } from "../destinations/local";
import { DestinationError, type Destination } from "../destinations/types";
import type { ArchiveBinding, DecryptionKey } from "./types";
import { ArchiveError, corrupt, truncated } from "./errors";
import {
  ENC_MAGIC,
  MAX_HEADER_JSON,
  openSealContext,
  openSegment,
  parseEncHeader,
  SEG_LEN_FIELD,
  TAG_LEN,
  type OpenOptions,
  type SealContext,
} from "./crypto";
import {
  CAIRN_SKIPPABLE_MAGIC,
  decodeHeaderFrame,
  decodeSeekTable,
  encodeSeekTable,
  MAX_CHUNK_SIZE,
  zstdFrameOutputBound,
  type PlainHeader,
} from "./frames";
import { ManifestReader, manifestFileName, type ManifestMeta } from "./manifest";
import { FrameDecoder } from "./frame-decoder";

export type ArchiveSource = Destination | string;

export interface OpenArchiveOptions extends OpenOptions {
  source: ArchiveSource;
  /** Object name when `source` is a Destination. */
  fileName?: string;
  key: DecryptionKey;
  /** When given, the archive's bound ids must equal these (else CORRUPT: refused). */
  binding?: ArchiveBinding;
  signal?: AbortSignal;
}

export interface ArchiveHandle {
  dest: Destination;
  fileName: string;
  size: number;
  mode: "none" | "password" | "panel";
  seal?: SealContext;
  encHeaderLen: number;
  header: PlainHeader;
  /** The manifest without entries; walk those with `entries.batches()` (they are not held in memory). */
  manifest: ManifestMeta;
  entries: ManifestReader;
  /** stored offset of frame i; frameOffsets[n] = offset of the seek-table frame */
  frameOffsets: number[];
  expectedSize: number;
}

function resolveSource(source: ArchiveSource, fileName?: string): { dest: Destination; fileName: string } {
  if (typeof source === "string") {
    const abs = resolve(source);
    return { dest: new LocalDestination(dirname(abs)), fileName: basename(abs) };
  }
  if (!fileName) throw new ArchiveError("USAGE", "fileName is required with a Destination");
  return { dest: source, fileName };
}

async function readRange(
  dest: Destination,
  name: string,
  start: number,
  end: number,
  signal?: AbortSignal,
): Promise<Buffer> {
  if (end < start) return Buffer.alloc(0);
  const s = await dest.createReadStream(name, { start, end });
  const parts: Buffer[] = [];
  let n = 0;
  for await (const c of s) {
    signal?.throwIfAborted();
    parts.push(c as Buffer);
    n += (c as Buffer).length;
    if (n > end - start + 1) {
      s.destroy();
      break;
    }
  }
  return Buffer.concat(parts).subarray(0, end - start + 1);
}

async function readWhole(dest: Destination, name: string, max: number): Promise<Buffer> {
  const info = await dest.stat(name);
  if (!info) throw new ArchiveError("NOT_FOUND", `${name} not found at ${dest.url}`);
  if (info.size > max) throw corrupt(`${name} is larger than allowed`);
  return readRange(dest, name, 0, info.size - 1);
}

function sameBinding(a: ArchiveBinding, b: ArchiveBinding): boolean {
  return (
    a.backupId === b.backupId &&
    a.tenantId === b.tenantId &&
    a.chainRootId === b.chainRootId &&
    (a.parentId ?? null) === (b.parentId ?? null)
  );
}

/** Reads the header and manifest and checks key, binding and sizes. No tar bytes are read yet. */
export async function openArchive(o: OpenArchiveOptions): Promise<ArchiveHandle> {
  const { dest, fileName } = resolveSource(o.source, o.fileName);
  try {
    const info = await dest.stat(fileName);
    if (!info) throw new ArchiveError("NOT_FOUND", `archive ${fileName} not found at ${dest.url}`);
    // Read a small head first; only a big header costs a second read (selective restores stay lean).
    let head = await readRange(dest, fileName, 0, Math.min(info.size, 4096) - 1, o.signal);
    if (head.length >= 14 && head.subarray(0, 8).equals(ENC_MAGIC)) {
      const need = 14 + head.readUInt32BE(10) + 32;
      if (need > head.length && need <= 14 + MAX_HEADER_JSON + 32)
        head = await readRange(dest, fileName, 0, Math.min(info.size, need) - 1, o.signal);
    }
    let seal: SealContext | undefined;
    let encHeaderLen = 0;
    let mode: ArchiveHandle["mode"];
    if (head.length >= 8 && head.subarray(0, 8).equals(ENC_MAGIC)) {
      const parsed = parseEncHeader(head);
      if (!parsed) throw truncated("archive ends inside its header");
      seal = await openSealContext(parsed.json, parsed.header, o.key, o);
      encHeaderLen = parsed.header.length;
      mode = parsed.json.mode;
    } else if (head.length >= 4 && head.readUInt32LE(0) === CAIRN_SKIPPABLE_MAGIC) {
      mode = "none";
    } else if (head.length < 8) {
      throw truncated("archive is too short");
    } else throw corrupt("not a Cairn archive");

    const mBuf = await readWhole(dest, manifestFileName(fileName), 1024 * 1024 * 1024).catch((err) => {
      if (err instanceof DestinationError && err.code === "NOT_FOUND")
        throw new ArchiveError("NOT_FOUND", `manifest ${manifestFileName(fileName)} not found`);
      throw err;
    });
    const entries = await ManifestReader.open(mBuf, seal);
    const manifest = entries.meta;
    if (manifest.mode !== mode) throw corrupt("manifest and archive disagree on the encryption mode");
    if (seal && !sameBinding(seal.json.binding, manifest.binding))
      throw corrupt("manifest is bound to another archive");
    if (o.binding && !sameBinding(manifest.binding, o.binding)) {
      throw corrupt(
        `archive is bound to backup ${manifest.binding.backupId} of tenant ${manifest.binding.tenantId}, not the expected backup; refused`,
      );
    }
    if (manifest.chunkSize > MAX_CHUNK_SIZE || manifest.frames.length < 1)
      throw corrupt("manifest frame layout invalid");
    const frameOffsets: number[] = [];
    let off = encHeaderLen;
    for (const f of manifest.frames) {
      if (
        !Number.isInteger(f.c) ||
        !Number.isInteger(f.d) ||
        f.c < 1 ||
        f.d < 0 ||
        f.d > manifest.chunkSize ||
        f.c > manifest.chunkSize + 1024 * 1024
      )
        throw corrupt("manifest frame entry invalid");
      frameOffsets.push(off);
      off += f.c + (seal ? SEG_LEN_FIELD + TAG_LEN : 0);
    }
    frameOffsets.push(off);
    const expectedSize = off + encodeSeekTable(manifest.frames).length + (seal ? SEG_LEN_FIELD + TAG_LEN : 0);
    if (info.size < expectedSize) throw truncated(`archive is ${info.size} bytes, ${expectedSize} expected`);
    if (info.size > expectedSize) throw corrupt(`archive has ${info.size - expectedSize} trailing bytes`);
    const handle: ArchiveHandle = {
      dest,
      fileName,
      size: info.size,
      mode,
      seal,
      encHeaderLen,
      header: undefined as unknown as PlainHeader,
      manifest,
      entries,
      frameOffsets,
      expectedSize,
    };
    // Frame 0 (the header frame) is read and checked now: it carries the binding in every mode.
    for await (const f of readFrames(handle, 0, 0, o.signal)) handle.header = decodeHeaderFrame(f.frame);
    if (!sameBinding(handle.header.binding, manifest.binding))
      throw corrupt("archive header and manifest are bound to different backups");
    if (handle.header.mode !== mode) throw corrupt("archive header mode mismatch");
    return handle;
  } catch (err) {
    if (err instanceof DestinationError && err.code === "NOT_FOUND")
      throw new ArchiveError("NOT_FOUND", err.message, { cause: err });
    throw err;
  }
}

/** Pulls exact byte counts out of a stream; a short stream is TRUNCATED. */
class ByteReader {
  private buf: Buffer = Buffer.alloc(0);
  private it: AsyncIterator<Buffer>;
  private ended = false;
  constructor(s: Readable) {
    this.it = s[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  }
  /**
   * `scratch`: a buffer of at least n bytes the result may be assembled in (valid until the next
   * read with it); without it, bytes spanning chunks are concatenated into a new buffer.
   */
  async read(n: number, scratch?: Buffer): Promise<Buffer> {
    const parts: Buffer[] = [];
    let have = 0;
    while (have < n) {
      if (this.buf.length === 0) {
        if (this.ended) throw truncated("archive ends early");
        const r = await this.it.next();
        if (r.done) {
          this.ended = true;
          throw truncated("archive ends early");
        }
        this.buf = r.value;
      }
      const k = Math.min(n - have, this.buf.length);
      parts.push(this.buf.subarray(0, k));
      this.buf = this.buf.subarray(k);
      have += k;
    }
    if (parts.length === 1) return parts[0]!;
    if (!scratch || scratch.length < n) return Buffer.concat(parts);
    let o = 0;
    for (const p of parts) o += p.copy(scratch, o);
    return scratch.subarray(0, n);
  }
  async atEnd(): Promise<boolean> {
    while (this.buf.length === 0) {
      if (this.ended) return true;
      const r = await this.it.next();
      if (r.done) {
        this.ended = true;
        return true;
      }
      this.buf = r.value;
    }
    return false;
  }
  async close(): Promise<void> {
    await this.it.return?.();
  }
}

/**
 * Yields verified plaintext frames `from..to` (inclusive; index n = the seek-table frame).
 * Reads one contiguous byte range; with `to === n` also checks the seek table and end of file.
 */
export async function* readFrames(
  h: ArchiveHandle,
  from: number,
  to: number,
  signal?: AbortSignal,
): AsyncGenerator<{ index: number; frame: Buffer }> {
  for await (const { index, frame } of readFramesDeferred(h, from, to, signal))
    yield { index, frame: await frame };
}

/**
 * As readFrames, but each frame comes as a promise (a caller may start work on it and await it
 * later). Every segment tag / frame hash, the seek table and the end of file are checked here, in
 * order, before the frame is yielded; callers still await each promise before using its bytes.
 */
export async function* readFramesDeferred(
  h: ArchiveHandle,
  from: number,
  to: number,
  signal?: AbortSignal,
): AsyncGenerator<{ index: number; frame: Promise<Buffer> }> {
  // Only where reading the file is all createReadStream would do (a subclass may count or filter).
  if (
    h.dest instanceof LocalDestination &&
    h.dest.createReadStream === LocalDestination.prototype.createReadStream
  ) {
    yield* localFrames(h, h.dest, from, to, signal);
    return;
  }
  const n = h.manifest.frames.length;
  const start = h.frameOffsets[from]!;
  const end = to === n ? h.expectedSize - 1 : h.frameOffsets[to + 1]! - 1;
  const s = await h.dest.createReadStream(h.fileName, { start, end: to === n ? undefined : end });
  const r = new ByteReader(s);
  // Segment bodies are consumed by openSegment before the next read: one buffer serves them all
  // (a fresh 1 MiB per frame was a third of the restore's allocations).
  let scratch: Buffer | undefined;
  try {
    for (let i = from; i <= to; i++) {
      signal?.throwIfAborted();
      const expected = i === n ? encodeSeekTable(h.manifest.frames) : null;
      const c = expected ? expected.length : h.manifest.frames[i]!.c;
      let frame: Buffer;
      if (h.seal) {
        const len = (await r.read(4)).readUInt32BE(0);
        if (len !== c) throw corrupt(`segment ${i} has length ${len}, ${c} expected`);
        if (!scratch || scratch.length < c + TAG_LEN) scratch = Buffer.allocUnsafeSlow(c + TAG_LEN);
        const body = await r.read(c + TAG_LEN, scratch);
        // Checked here, synchronously: with the file writes on their own thread the main thread has
        // room, and WebCrypto's job round trip cost 2.3x the CPU (1.1 vs 0.5 ms per MiB measured).
        frame = openSegment(h.seal, i, !!expected, body);
      } else {
        frame = await r.read(c);
      }
      if (expected) {
        if (!frame.equals(expected)) throw corrupt("seek table does not match the manifest");
        decodeSeekTable(frame);
        if (!(await r.atEnd())) throw corrupt("trailing bytes after the seek table");
      } else if (!h.seal && createHash("sha256").update(frame).digest("hex") !== h.manifest.frames[i]!.h) {
        throw corrupt(`frame ${i} does not match its manifest hash`);
      }
      yield { index: i, frame: Promise.resolve(frame) };
    }
  } finally {
    await r.close();
    s.destroy();
  }
}

/** Reads exactly `len` bytes at `pos` into `buf`; a file that ends first is TRUNCATED. */
async function readExactly(fh: FileHandle, buf: Buffer, len: number, pos: number): Promise<Buffer> {
  let got = 0;
  while (got < len) {
    const { bytesRead } = await fh.read(buf, got, len - got, pos + got);
    if (bytesRead === 0) throw truncated("archive ends early");
    got += bytesRead;
  }
  return buf.subarray(0, len);
}

/**
 * readFramesDeferred for an archive on local disk: each sealed segment is read whole, at its known
 * offset, into one of two scratch buffers (the next one's read runs while this one is checked), so
 * no stream chunks are allocated or copied: those were ~600 MiB of short-lived buffers per GiB,
 * whose external-memory pressure made V8 run a full GC every ~64 MiB. Checks are as in the
 * stream path: length field, tag (or frame hash), seek table, end of file.
 */
async function* localFrames(
  h: ArchiveHandle,
  dest: LocalDestination,
  from: number,
  to: number,
  signal?: AbortSignal,
): AsyncGenerator<{ index: number; frame: Promise<Buffer> }> {
  const n = h.manifest.frames.length;
  const seekTable = encodeSeekTable(h.manifest.frames);
  const stored = (i: number) => (i === n ? seekTable.length : h.manifest.frames[i]!.c);
  const extra = h.seal ? SEG_LEN_FIELD + TAG_LEN : 0;
  const fh = await open(join(dest.root, h.fileName), "r");
  const scratch: Buffer[] = [];
  // Unencrypted frames are handed on as read (the caller keeps them while they decompress).
  const read = (i: number) => {
    const len = stored(i) + extra;
    let buf: Buffer;
    if (h.seal) {
      const k = i & 1;
      if (!scratch[k] || scratch[k].length < len) scratch[k] = Buffer.allocUnsafeSlow(len);
      buf = scratch[k];
    } else buf = Buffer.allocUnsafeSlow(len);
    const p = readExactly(fh, buf, len, h.frameOffsets[i]!);
    p.catch(() => {});
    return p;
  };
  let next = read(from);
  try {
    for (let i = from; i <= to; i++) {
      signal?.throwIfAborted();
      const raw = await next;
      // The other scratch buffer is free again: this frame's bytes are consumed before the next await.
      if (i < to) next = read(i + 1);
      const last = i === n;
      let frame: Buffer;
      if (h.seal) {
        const len = raw.readUInt32BE(0);
        if (len !== stored(i)) throw corrupt(`segment ${i} has length ${len}, ${stored(i)} expected`);
        frame = openSegment(h.seal, i, last, raw.subarray(SEG_LEN_FIELD));
      } else frame = raw;
      if (last) {
        if (!frame.equals(seekTable)) throw corrupt("seek table does not match the manifest");
        decodeSeekTable(frame);
        const { bytesRead } = await fh.read(Buffer.alloc(1), 0, 1, h.expectedSize);
        if (bytesRead !== 0) throw corrupt("trailing bytes after the seek table");
      } else if (!h.seal && createHash("sha256").update(frame).digest("hex") !== h.manifest.frames[i]!.h) {
        throw corrupt(`frame ${i} does not match its manifest hash`);
      }
      yield { index: i, frame: Promise.resolve(frame) };
    }
  } finally {
    await next.catch(() => {});
    await fh.close();
  }
}

/** Decompresses one data frame after the bomb guard; output must be exactly the declared size. */
export async function decompressFrame(h: ArchiveHandle, index: number, frame: Buffer): Promise<Buffer> {
  const d = h.manifest.frames[index]!.d;
  const bound = zstdFrameOutputBound(frame);
  // zstd may split blocks, so the bound is allowed some slack; it still caps memory per frame.
  const limit = 2 * h.manifest.chunkSize + 128 * 1024;
  if (bound > limit)
    throw corrupt(
      `frame ${index} could expand to ${bound} bytes (limit ${limit}): refused as a decompression bomb`,
    );
  let out: Buffer;
  try {
    out = await decompress(frame);
  } catch (err) {
    throw corrupt(`frame ${index} does not decompress: ${(err as Error).message}`);
  }
  if (out.length !== d) throw corrupt(`frame ${index} decompressed to ${out.length} bytes, ${d} expected`);
  return out;
}

/**
 * Tar bytes of frames from..to, decompressed concurrently (bounded, in order). Including the
 * seek-table frame (to = n) makes this a full end-to-end check of the file.
 */
export async function* tarBytes(
  h: ArchiveHandle,
  from: number,
  to: number,
  signal?: AbortSignal,
  o: { transient?: boolean } = {},
): AsyncGenerator<{ index: number; data: Buffer }> {
  if (o.transient) {
    yield* transientTarBytes(h, from, to, signal);
    return;
  }
  const n = h.manifest.frames.length;
  const max = Math.max(2, availableParallelism()) + 1;
  const queue: { index: number; p: Promise<Buffer> }[] = [];
  for await (const { index, frame } of readFramesDeferred(h, from, to, signal)) {
    if (index === 0 || index === n) {
      await frame;
      continue;
    }
    // Tag check, then bomb guard and decompression, all off the main thread; yielded in order.
    const p = frame.then((f) => decompressFrame(h, index, f));
    p.catch(() => {});
    queue.push({ index, p });
    while (queue.length >= max) {
      const q = queue.shift()!;
      yield { index: q.index, data: await q.p };
    }
  }
  while (queue.length) {
    const q = queue.shift()!;
    yield { index: q.index, data: await q.p };
  }
}

/**
 * As tarBytes, decompressed on a worker into shared slots (see FrameDecoder): each yielded buffer
 * is valid only until the generator is resumed, when its slot goes back to the decoder.
 */
async function* transientTarBytes(
  h: ArchiveHandle,
  from: number,
  to: number,
  signal?: AbortSignal,
): AsyncGenerator<{ index: number; data: Buffer }> {
  const n = h.manifest.frames.length;
  const ahead = Math.max(2, availableParallelism()) + 1;
  // One slot per frame decompressing ahead, one for the frame the caller holds.
  const decoder = new FrameDecoder(h.manifest.chunkSize, ahead + 1, 2 * h.manifest.chunkSize + 128 * 1024);
  const queue: number[] = [];
  try {
    for await (const { index, frame } of readFramesDeferred(h, from, to, signal)) {
      if (index === 0 || index === n) {
        await frame;
        continue;
      }
      await decoder.submit(index, await frame);
      queue.push(index);
      while (queue.length >= ahead) {
        const i = queue.shift()!;
        yield await decoder.result(i, h.manifest.frames[i]!.d);
        decoder.release(i);
      }
    }
    while (queue.length) {
      const i = queue.shift()!;
      yield await decoder.result(i, h.manifest.frames[i]!.d);
      decoder.release(i);
    }
  } finally {
    await decoder.close();
  }
}

/** Tar offset where frame i starts. */
export function frameTarOffsets(m: ManifestMeta): number[] {
  const out: number[] = [];
  let o = 0;
  for (const f of m.frames) {
    out.push(o);
    o += f.d;
  }
  out.push(o);
  return out;
}
