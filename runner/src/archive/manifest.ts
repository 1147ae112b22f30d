/** Manifest file `<archive>.manifest` (docs/FORMAT.md §4). */
import { createHash } from "node:crypto";
import { TextDecoder } from "node:util";
import { compress, decompress } from "./zstd";
import { ArchiveError, corrupt } from "./errors";
import { openBlob, sealBlob, type SealContext } from "./crypto";
import { splitZstdFrames, zstdFrameOutputBound } from "./frames";
import type { Manifest, ManifestEntry } from "./manifest-types";
import { ManifestEntryText } from "./manifest-text";

export const MANIFEST_MAGIC = Buffer.from("CAIRNMAN", "ascii");
export const MAX_MANIFEST_JSON = 512 * 1024 * 1024;

export function manifestFileName(archiveFileName: string): string {
  return `${archiveFileName}.manifest`;
}

/**
 * Builds the manifest body while the tar stream is written: entries are serialised and compressed
 * in ~1 MiB pieces as they arrive, so memory holds compressed bytes (~2-3 MB per GiB of hosting
 * tree) instead of every entry as an object. The pieces are independent zstd frames, concatenated
 * (manifest version 2, docs/FORMAT.md §4).
 */
export class ManifestBuilder {
  private readonly text = new ManifestEntryText((json, n) => this.addJson(json, n));
  private pieces: Promise<Buffer>[] = [];
  private entries = 0;

  get count(): number {
    return this.entries + this.text.pending;
  }

  add(e: ManifestEntry): void {
    this.text.add(e);
  }

  /** Entries serialised elsewhere (ManifestEntryText, in the tar worker), in order. */
  addJson(json: string, n: number): void {
    const p = compress(Buffer.from((this.pieces.length === 0 ? "" : ",") + json, "utf8"), 3);
    p.catch(() => {});
    this.pieces.push(p);
    this.entries += n;
  }

  /** The manifest file's bytes; `m.entries` must be empty (the builder holds them). */
  async encode(m: Manifest, seal?: SealContext): Promise<Buffer> {
    if (m.entries.length) throw new Error("ManifestBuilder.encode: entries are held by the builder");
    this.text.flush();
    const { entries: _none, ...rest } = m;
    const head = JSON.stringify(rest);
    const frames = [
      await compress(Buffer.from(`${head.slice(0, -1)},"entries":[`, "utf8"), 3),
      ...(await Promise.all(this.pieces)),
      await compress(Buffer.from("]}", "utf8"), 3),
    ];
    const z = Buffer.concat(frames);
    const pre = Buffer.from([...MANIFEST_MAGIC, 2, seal ? (m.mode === "password" ? 1 : 2) : 0]);
    if (seal) return Buffer.concat([pre, sealBlob(seal.keys.manifestKey, seal.aad, z)]);
    const body = Buffer.concat([pre, z]);
    return Buffer.concat([body, createHash("sha256").update(body).digest()]);
  }
}

export async function encodeManifest(m: Manifest, seal?: SealContext): Promise<Buffer> {
  const b = new ManifestBuilder();
  for (const e of m.entries) b.add(e);
  return b.encode({ ...m, entries: [] }, seal);
}

/** The manifest without its entry list (which a reader streams: see ManifestReader). */
export type ManifestMeta = Omit<Manifest, "entries">;

/**
 * Splits the manifest JSON, fed in pieces cut anywhere (even inside a string), into the entries of
 * its top-level "entries" array and the rest (the meta, returned with `"entries":[]`). A scanner,
 * not a parser: JSON.parse still checks every entry batch and the meta, so malformed JSON fails.
 */
class EntrySplitter {
  private depth = 0;
  private inEntries = false;
  private found = false;
  private lastKey: string | null = null;
  private colon = false;
  private carry = "";
  private readonly meta: string[] = [];
  count = 0;
  /**
   * Per piece fed: where its complete entries lie in (carried text + piece) and where the carry
   * for the next piece starts (-1: none). Later walks replay these cuts instead of scanning again.
   */
  readonly cuts: number[] = [];

  feed(piece: string): void {
    const text = this.carry + piece;
    this.carry = "";
    const n = text.length;
    let metaFrom = this.inEntries ? -1 : 0;
    let batchFrom = -1;
    let batchTo = -1;
    let entryStart = -1;
    let i = 0;
    while (i < n) {
      const c = text.charCodeAt(i);
      // Between entries only separators may appear (a stray value would otherwise be dropped).
      if (this.inEntries && this.depth === 2 && c !== 123 && c !== 93 && c !== 44 && c > 32)
        throw corrupt("manifest entry is not an object");
      if (c === 34) {
        // Skip the string: the next quote not escaped by an odd run of backslashes.
        let j = i;
        for (;;) {
          j = text.indexOf('"', j + 1);
          if (j === -1) break;
          let k = j - 1;
          while (text.charCodeAt(k) === 92) k--;
          if ((j - 1 - k) % 2 === 0) break;
        }
        if (j === -1) break; // string continues in the next piece
        if (this.depth === 1 && !this.inEntries) {
          this.lastKey = this.colon ? null : text.slice(i + 1, j);
          this.colon = false;
        }
        i = j + 1;
        continue;
      }
      if (c === 123 || c === 91) {
        if (this.depth === 1 && c === 91 && !this.inEntries && this.colon && this.lastKey === "entries") {
          if (this.found) throw corrupt("manifest lists its entries twice");
          this.found = this.inEntries = true;
          this.meta.push(text.slice(metaFrom, i), "[]");
          metaFrom = -1;
        } else if (this.inEntries && this.depth === 2) {
          entryStart = i;
          if (batchFrom === -1) batchFrom = i;
        }
        this.depth++;
        this.colon = false;
      } else if (c === 125 || c === 93) {
        this.depth--;
        if (this.inEntries && this.depth === 2 && c === 125) {
          batchTo = i + 1;
          entryStart = -1;
          this.count++;
        } else if (this.inEntries && this.depth === 1) {
          this.inEntries = false;
          metaFrom = i + 1;
        }
      } else if (c === 58) {
        if (this.depth === 1) this.colon = this.lastKey !== null;
      } else if (c === 44) {
        if (this.depth === 1) {
          this.lastKey = null;
          this.colon = false;
        }
      }
      i++;
    }
    let carryFrom = -1;
    if (i < n || entryStart !== -1) {
      // An unfinished string or entry: keep its text and scan it again with the next piece.
      const from = entryStart !== -1 ? entryStart : i;
      if (entryStart !== -1) this.depth = 2;
      if (metaFrom !== -1) this.meta.push(text.slice(metaFrom, from));
      this.carry = text.slice(from);
      carryFrom = from;
    } else if (metaFrom !== -1) this.meta.push(text.slice(metaFrom));
    this.cuts.push(batchFrom, batchTo, carryFrom);
  }

  finish(): ManifestMeta {
    if (this.carry || this.depth !== 0 || !this.found) throw corrupt("manifest is not valid JSON");
    return JSON.parse(this.meta.join("")) as ManifestMeta;
  }
}

/**
 * A decoded manifest whose entries stay compressed: the meta (frames, totals, binding, ...) is held,
 * the entry list is decompressed and parsed piece by piece each time it is walked, so a restore's
 * memory does not grow with the number of entries (~1 KB per entry as JS objects).
 */
export class ManifestReader {
  private constructor(
    private readonly frames: Buffer[],
    readonly meta: ManifestMeta,
    /** number of entries */
    readonly count: number,
    /** EntrySplitter.cuts of the checking walk: 3 numbers per frame */
    private readonly cuts: number[],
  ) {}

  /** Checks the container (checksum or tag, frame bounds) and the JSON; entries are not kept. */
  static async open(buf: Buffer, seal?: SealContext): Promise<ManifestReader> {
    const frames = openManifestFrames(buf, seal);
    const split = new EntrySplitter();
    const utf8 = new TextDecoder("utf-8");
    for (let i = 0; i < frames.length; i++)
      feed(split, await inflate(frames[i]!, utf8, i === frames.length - 1));
    let meta: ManifestMeta;
    try {
      meta = split.finish();
    } catch {
      throw corrupt("manifest is not valid JSON");
    }
    const m = meta as Partial<Manifest>;
    if (m.v !== 1 || !Array.isArray(m.frames) || !m.binding || !m.totals)
      throw corrupt("manifest fields missing");
    delete m.entries;
    return new ManifestReader(frames, meta, split.count, split.cuts);
  }

  /** The entries in manifest order, a decompressed piece (~1 MiB of JSON) at a time. */
  async *batches(signal?: AbortSignal): AsyncGenerator<ManifestEntry[]> {
    const utf8 = new TextDecoder("utf-8");
    let n = 0;
    let carry = "";
    for (let i = 0; i < this.frames.length; i++) {
      signal?.throwIfAborted();
      // The same bytes as in open(), so the same cuts: only the entries are parsed (JSON.parse
      // still checks each batch), the structure scan is not repeated.
      const text = carry + (await inflate(this.frames[i]!, utf8, i === this.frames.length - 1));
      const from = this.cuts[3 * i]!;
      const to = this.cuts[3 * i + 1]!;
      const carryFrom = this.cuts[3 * i + 2]!;
      carry = carryFrom >= 0 ? text.slice(carryFrom) : "";
      let out: ManifestEntry[] = [];
      if (to > from) {
        try {
          out = JSON.parse(`[${text.slice(from, to)}]`) as ManifestEntry[];
        } catch {
          throw corrupt("manifest is not valid JSON");
        }
      }
      for (const e of out)
        if (typeof e !== "object" || e === null || Array.isArray(e))
          throw corrupt("manifest entry is not an object");
      n += out.length;
      if (out.length) yield out;
    }
    if (n !== this.count) throw corrupt("manifest changed while read");
  }

  /** Every entry at once (small manifests, tests, tools); restores stream `batches()` instead. */
  async all(): Promise<ManifestEntry[]> {
    const all: ManifestEntry[] = [];
    for await (const b of this.batches()) for (const e of b) all.push(e);
    return all;
  }
}

/** Decompresses one manifest frame to text; `utf8` carries a UTF-8 sequence cut by a frame boundary. */
async function inflate(frame: Buffer, utf8: TextDecoder, last: boolean): Promise<string> {
  let out: Buffer;
  try {
    out = await decompress(frame);
  } catch {
    throw corrupt("manifest does not decompress");
  }
  return utf8.decode(out, { stream: !last });
}

/** One piece through the splitter; anything but an ArchiveError means malformed JSON. */
function feed(split: EntrySplitter, text: string): void {
  try {
    split.feed(text);
  } catch (err) {
    if (err instanceof ArchiveError) throw err;
    throw corrupt("manifest is not valid JSON");
  }
}

/** Container checks: magic, version, mode, checksum (none) or tag (encrypted), frame bounds. */
function openManifestFrames(buf: Buffer, seal?: SealContext): Buffer[] {
  // Version 1: one zstd frame; version 2: one or more concatenated frames.
  if (buf.length < 10 + 32 || !buf.subarray(0, 8).equals(MANIFEST_MAGIC) || (buf[8] !== 1 && buf[8] !== 2))
    throw corrupt("not a Cairn manifest");
  const multi = buf[8] === 2;
  const mode = buf[9];
  let z: Buffer;
  if (seal) {
    if (mode === 0) throw corrupt("manifest is not encrypted but the archive is");
    z = openBlob(seal.keys.manifestKey, seal.aad, buf.subarray(10), "manifest");
  } else {
    if (mode !== 0) throw corrupt("manifest is encrypted but the archive is not");
    const body = buf.subarray(0, buf.length - 32);
    if (
      !createHash("sha256")
        .update(body)
        .digest()
        .equals(buf.subarray(buf.length - 32))
    )
      throw corrupt("manifest checksum mismatch");
    z = body.subarray(10);
  }
  // An unauthenticated (mode none) manifest could be a decompression bomb: bound every frame first.
  const frames = multi ? splitZstdFrames(z) : [z];
  let bound = 0;
  for (const f of frames) bound += zstdFrameOutputBound(f);
  if (bound > MAX_MANIFEST_JSON) throw corrupt("manifest would decompress beyond the size limit");
  return frames;
}

/** The whole manifest, entries included (tests and small tools; readers use ManifestReader). */
export async function decodeManifest(buf: Buffer, seal?: SealContext): Promise<Manifest> {
  const r = await ManifestReader.open(buf, seal);
  return { ...r.meta, entries: await r.all() } as Manifest;
}
