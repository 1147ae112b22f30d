/** Manifest file `<archive>.manifest` (docs/FORMAT.md §4). */
import { createHash } from "node:crypto";
import { compress, decompress } from "./zstd";
import { corrupt } from "./errors";
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

export async function decodeManifest(buf: Buffer, seal?: SealContext): Promise<Manifest> {
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
  let json: Buffer;
  // An unauthenticated (mode none) manifest could be a decompression bomb: bound every frame first.
  const frames = multi ? splitZstdFrames(z) : [z];
  let bound = 0;
  for (const f of frames) bound += zstdFrameOutputBound(f);
  if (bound > MAX_MANIFEST_JSON) throw corrupt("manifest would decompress beyond the size limit");
  try {
    const parts: Buffer[] = [];
    for (const f of frames) parts.push(await decompress(f));
    json = parts.length === 1 ? parts[0]! : Buffer.concat(parts);
  } catch {
    throw corrupt("manifest does not decompress");
  }
  if (json.length > MAX_MANIFEST_JSON) throw corrupt("manifest too large");
  let m: Manifest;
  try {
    m = JSON.parse(json.toString("utf8")) as Manifest;
  } catch {
    throw corrupt("manifest is not valid JSON");
  }
  if (m.v !== 1 || !Array.isArray(m.entries) || !Array.isArray(m.frames) || !m.binding || !m.totals)
    throw corrupt("manifest fields missing");
  return m;
}
