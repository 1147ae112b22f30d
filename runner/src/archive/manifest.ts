/** Manifest file `<archive>.manifest` (docs/FORMAT.md §4). */
import { createHash } from "node:crypto";
import { compress, decompress } from "./zstd";
import { corrupt } from "./errors";
import { openBlob, sealBlob, type SealContext } from "./crypto";
import { zstdFrameOutputBound } from "./frames";
import type { Manifest } from "./manifest-types";

export const MANIFEST_MAGIC = Buffer.from("CAIRNMAN", "ascii");
export const MAX_MANIFEST_JSON = 512 * 1024 * 1024;

export function manifestFileName(archiveFileName: string): string {
  return `${archiveFileName}.manifest`;
}

export async function encodeManifest(m: Manifest, seal?: SealContext): Promise<Buffer> {
  const z = await compress(Buffer.from(JSON.stringify(m), "utf8"), 3);
  const pre = Buffer.from([...MANIFEST_MAGIC, 1, seal ? (m.mode === "password" ? 1 : 2) : 0]);
  if (seal) return Buffer.concat([pre, sealBlob(seal.keys.manifestKey, seal.aad, z)]);
  const body = Buffer.concat([pre, z]);
  return Buffer.concat([body, createHash("sha256").update(body).digest()]);
}

export async function decodeManifest(buf: Buffer, seal?: SealContext): Promise<Manifest> {
  if (buf.length < 10 + 32 || !buf.subarray(0, 8).equals(MANIFEST_MAGIC) || buf[8] !== 1)
    throw corrupt("not a Cairn manifest");
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
  // An unauthenticated (mode none) manifest could be a decompression bomb: bound it first.
  if (zstdFrameOutputBound(z) > MAX_MANIFEST_JSON)
    throw corrupt("manifest would decompress beyond the size limit");
  try {
    json = await decompress(z);
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
