/** verify, inspect, decrypt and entry streaming on top of the reader. */
import { PassThrough, type Readable, type Writable } from "node:stream";
import { once } from "node:events";
import type { ArchiveBinding, DecryptionKey, Progress } from "./types";
import { ArchiveError, corrupt } from "./errors";
import { ENC_MAGIC, MAX_HEADER_JSON, parseEncHeader, type Kdf, type ScryptLimits } from "./crypto";
import { openArchive, readFrames, type ArchiveSource } from "./reader";
import { forEachEntry } from "./entries";
import { LocalDestination } from "../destinations/local";
import { basename, dirname, resolve } from "node:path";
import type { ManifestEntry } from "./manifest-types";
import { CAIRN_SKIPPABLE_MAGIC, decodeHeaderFrame } from "./frames";

interface ReadOpts {
  source: ArchiveSource;
  fileName?: string;
  key: DecryptionKey;
  binding?: ArchiveBinding;
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
  kdf?: Kdf;
  scryptLimits?: ScryptLimits;
}

export interface VerifyResult {
  ok: true;
  fileName: string;
  mode: string;
  entries: number;
  bytes: number;
  frames: number;
  binding: ArchiveBinding;
  warnings: string[];
}

/** Full integrity check (every segment tag, frame hash, tar entry hash, seek table, size); writes nothing. */
export async function verifyArchive(o: ReadOpts): Promise<VerifyResult> {
  const h = await openArchive(o);
  let bytes = 0;
  let last = 0;
  const r = await forEachEntry(h, { signal: o.signal }, () => ({
    write(c: Buffer) {
      bytes += c.length;
      if (o.onProgress && bytes - last >= 8 * 1024 * 1024) {
        last = bytes;
        o.onProgress({ bytes, files: 0, totalBytes: h.manifest.totals.bytes, phase: "verify" });
      }
    },
    end() {},
  }));
  return {
    ok: true,
    fileName: h.fileName,
    mode: h.mode,
    entries: r.entries,
    bytes: r.bytes,
    frames: h.manifest.frames.length,
    binding: h.manifest.binding,
    warnings: h.manifest.warnings,
  };
}

export interface InspectResult {
  fileName: string;
  size: number;
  mode: string;
  header: Record<string, unknown>;
  manifest?: {
    name: string;
    kind: string;
    createdAt: string;
    binding: ArchiveBinding;
    totals: { files: number; entries: number; bytes: number; tarBytes: number };
    frames: number;
    chunkSize: number;
    domains: Record<string, number>;
    components: Record<string, number>;
    warnings: string[];
  };
}

/** Header (never secrets) and, when the key opens it, the manifest summary. */
export async function inspectArchive(
  o: Omit<ReadOpts, "key"> & { key?: DecryptionKey },
): Promise<InspectResult> {
  const { dest, fileName } =
    typeof o.source === "string"
      ? { dest: new LocalDestination(dirname(resolve(o.source))), fileName: basename(o.source) }
      : { dest: o.source, fileName: o.fileName! };
  const info = await dest.stat(fileName);
  if (!info) throw new ArchiveError("NOT_FOUND", `archive ${fileName} not found`);
  const s = await dest.createReadStream(fileName, {
    start: 0,
    end: Math.min(info.size, 14 + MAX_HEADER_JSON + 32) - 1,
  });
  const parts: Buffer[] = [];
  for await (const c of s) parts.push(c as Buffer);
  const head = Buffer.concat(parts);
  let header: Record<string, unknown>;
  let mode: string;
  if (head.subarray(0, 8).equals(ENC_MAGIC)) {
    const p = parseEncHeader(head);
    if (!p) throw new ArchiveError("TRUNCATED", "archive ends inside its header");
    const j = p.json;
    mode = j.mode;
    header = {
      format: "cairn-enc/1",
      mode: j.mode,
      binding: j.binding,
      chunkSize: j.chunkSize,
      kdf: j.kdf ? { id: j.kdf.id, N: j.kdf.N, r: j.kdf.r, p: j.kdf.p } : undefined,
      keyId: j.keyId,
      cipher: "AES-256-GCM STREAM",
    };
  } else if (head.length >= 8 && head.readUInt32LE(0) === CAIRN_SKIPPABLE_MAGIC) {
    const len = head.readUInt32LE(4);
    if (head.length < 8 + len) throw new ArchiveError("TRUNCATED", "archive ends inside its header frame");
    const hf = decodeHeaderFrame(head.subarray(0, 8 + len));
    mode = "none";
    header = { format: "cairn-tar-zst/1", ...hf };
  } else throw corrupt("not a Cairn archive");
  const key: DecryptionKey | undefined = mode === "none" ? { mode: "none" } : o.key;
  const result: InspectResult = { fileName, size: info.size, mode, header };
  if (key && key.mode === (mode as DecryptionKey["mode"])) {
    const h = await openArchive({ ...o, dest: undefined, key } as ReadOpts);
    const m = h.manifest;
    const domains: Record<string, number> = {};
    const components: Record<string, number> = {};
    for await (const batch of h.entries.batches(o.signal))
      for (const e of batch) {
        if (e.d) domains[e.d] = (domains[e.d] ?? 0) + 1;
        if (e.c) components[e.c] = (components[e.c] ?? 0) + 1;
      }
    result.manifest = {
      name: m.name,
      kind: m.kind,
      createdAt: m.createdAt,
      binding: m.binding,
      totals: m.totals,
      frames: m.frames.length,
      chunkSize: m.chunkSize,
      domains,
      components,
      warnings: m.warnings,
    };
  }
  return result;
}

/**
 * Writes the plaintext `.tar.zst` (header frame, data frames, seek table) to `out`. Each frame is
 * authenticated before it is written; sizes are checked before the first byte goes out.
 */
export async function decryptArchive(o: ReadOpts & { out: Writable }): Promise<{ bytes: number }> {
  const h = await openArchive(o);
  let bytes = 0;
  for await (const { frame } of readFrames(h, 0, h.manifest.frames.length, o.signal)) {
    bytes += frame.length;
    if (!o.out.write(frame)) await once(o.out, "drain");
  }
  return { bytes };
}

/**
 * Streams selected entries out of an archive (e.g. a database dump into pg_restore). Each body's
 * bytes are authenticated per frame; a body whose hash differs from the manifest errors at its end.
 */
export async function* readEntries(
  o: ReadOpts & { filter?: string[] | ((e: ManifestEntry) => boolean) },
): AsyncGenerator<{ entry: ManifestEntry; body: Readable }> {
  const h = await openArchive(o);
  const only = Array.isArray(o.filter) ? o.filter : undefined;
  const pred = typeof o.filter === "function" ? o.filter : () => true;
  // The parser runs in the background; each body is a PassThrough whose backpressure pauses it.
  const queue: ({ entry: ManifestEntry; body: PassThrough } | null)[] = [];
  let wake: (() => void) | null = null;
  let failure: unknown = null;
  const open = new Set<PassThrough>();
  const notify = () => {
    wake?.();
    wake = null;
  };
  const run = forEachEntry(
    h,
    { only, select: typeof o.filter === "function" ? o.filter : undefined, signal: o.signal },
    (entry) => {
      if (entry.t !== "file" || !pred(entry)) return null;
      const body = new PassThrough();
      open.add(body);
      queue.push({ entry, body });
      notify();
      return {
        write: (b: Buffer) => void body.write(b),
        end: () => {
          open.delete(body);
          body.end();
        },
      };
    },
    async () => {
      for (const b of open)
        if (b.writableNeedDrain && !b.destroyed) await Promise.race([once(b, "drain"), once(b, "close")]);
    },
  ).then(
    () => {
      queue.push(null);
      notify();
    },
    (err: unknown) => {
      failure = err;
      for (const b of open) b.destroy(err as Error);
      queue.push(null);
      notify();
    },
  );
  try {
    for (;;) {
      if (queue.length === 0) await new Promise<void>((r) => (wake = r));
      const item = queue.shift();
      if (!item) break;
      yield item;
      if (!item.body.readableEnded && !item.body.destroyed) {
        item.body.resume();
        await Promise.race([once(item.body, "end"), once(item.body, "close")]).catch(() => {});
      }
    }
    await run;
    if (failure) throw failure;
  } finally {
    for (const b of open) b.destroy();
  }
}
