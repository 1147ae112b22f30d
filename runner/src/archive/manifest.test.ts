import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { decodeManifest, encodeManifest, ManifestReader, MANIFEST_MAGIC } from "./manifest";
import { splitZstdFrames } from "./frames";
import { compress } from "./zstd";
import type { Manifest, ManifestEntry } from "./manifest-types";

function manifestWith(n: number): Manifest {
  const entries: ManifestEntry[] = [];
  for (let i = 0; i < n; i++)
    entries.push({
      p: `home/user${i % 8}/public_html/wp-content/uploads/2024/${String(i).padStart(6, "0")}-a-long-file-name.jpg`,
      t: "file",
      s: i,
      m: 0o644,
      u: 1000,
      g: 1000,
      mt: 1700000000 + i,
      h: createHash("sha256").update(String(i)).digest("hex"),
      o: i * 1024,
      e: i * 1024 + 512,
    });
  return {
    v: 1,
    name: "web1",
    kind: "full",
    createdAt: "2026-01-01T00:00:00.000Z",
    mode: "none",
    binding: { backupId: "b", tenantId: "t", chainRootId: "b", parentId: null },
    archive: { fileName: "x.tar.zst", size: 1, sha256: "0".repeat(64) },
    chunkSize: 1 << 20,
    frames: [{ c: 10, d: 0, h: "" }],
    entries,
    totals: { files: n, entries: n, bytes: 0, tarBytes: 0 },
    warnings: ['a "quoted" warning'],
  };
}

describe("manifest encoding", () => {
  it("writes large manifests as several zstd frames (version 2) that decode to the same manifest", async () => {
    const m = manifestWith(20000);
    const buf = await encodeManifest(m);
    expect(buf[8]).toBe(2);
    const frames = splitZstdFrames(buf.subarray(10, buf.length - 32));
    expect(frames.length).toBeGreaterThan(3);
    expect(await decodeManifest(buf)).toEqual(m);
  });

  it("still reads a version 1 manifest (one zstd frame)", async () => {
    const m = manifestWith(3);
    const z = await compress(Buffer.from(JSON.stringify(m), "utf8"), 3);
    const body = Buffer.concat([MANIFEST_MAGIC, Buffer.from([1, 0]), z]);
    const buf = Buffer.concat([body, createHash("sha256").update(body).digest()]);
    expect(await decodeManifest(buf)).toEqual(m);
  });

  it("refuses a version 1 manifest that holds more than one frame", async () => {
    const z = Buffer.concat([await compress(Buffer.from("{"), 3), await compress(Buffer.from("}"), 3)]);
    const body = Buffer.concat([MANIFEST_MAGIC, Buffer.from([1, 0]), z]);
    const buf = Buffer.concat([body, createHash("sha256").update(body).digest()]);
    await expect(decodeManifest(buf)).rejects.toMatchObject({ code: "CORRUPT" });
  });
});

/** A mode-none manifest whose JSON bytes are cut into zstd frames at the given byte offsets. */
async function manifestCutAt(json: string, cuts: number[]): Promise<Buffer> {
  const bytes = Buffer.from(json, "utf8");
  const at = [0, ...cuts.filter((c) => c < bytes.length), bytes.length];
  const frames: Buffer[] = [];
  for (let i = 0; i + 1 < at.length; i++)
    if (at[i + 1]! > at[i]!) frames.push(await compress(bytes.subarray(at[i], at[i + 1]), 3));
  const body = Buffer.concat([MANIFEST_MAGIC, Buffer.from([2, 0]), ...frames]);
  return Buffer.concat([body, createHash("sha256").update(body).digest()]);
}

describe("manifest streaming reader", () => {
  it("gives the same entries whatever the frame boundaries (inside strings, escapes, UTF-8 sequences)", async () => {
    const m = manifestWith(3);
    m.entries[0]!.p = 'dir/"quoted" \\ back\\slash } ] { [ , : "entries":[';
    m.entries[1]!.p = "dir/ünïcødé-名前-😀";
    m.name = "entries";
    // v1 writers put "entries" before "totals" and "warnings": the meta continues after the list.
    const json = JSON.stringify(m);
    expect(json.indexOf('"totals"')).toBeGreaterThan(json.indexOf('"entries":['));
    const len = Buffer.byteLength(json);
    for (let cut = 1; cut < len; cut += 5) {
      const buf = await manifestCutAt(json, [cut, cut + 1, cut + 3]);
      const r = await ManifestReader.open(buf);
      expect(r.count).toBe(3);
      expect({ ...r.meta, entries: await r.all() }).toEqual(m);
    }
  });

  it("walks a large manifest in batches without holding the list", async () => {
    const m = manifestWith(20000);
    const r = await ManifestReader.open(await encodeManifest(m));
    expect(r.meta).not.toHaveProperty("entries");
    let n = 0;
    let batches = 0;
    for await (const b of r.batches()) {
      expect(b[0]).toEqual(m.entries[n]);
      n += b.length;
      batches++;
    }
    expect(n).toBe(20000);
    expect(batches).toBeGreaterThan(3);
  });

  it("refuses malformed lists: a non-object entry, a second entry list, broken JSON", async () => {
    const good = JSON.stringify(manifestWith(2));
    const bad = [
      good.replace('"entries":[', '"entries":[5,'),
      good.replace('"entries":[', '"entries":[],"entries":['),
      good.replace('"entries":[{', '"entries":[{{'),
      good.slice(0, -1),
    ];
    for (const json of bad) {
      const buf = await manifestCutAt(json, [json.length >> 1]);
      await expect(
        ManifestReader.open(buf).then((r) => r.all()),
        json.slice(0, 80),
      ).rejects.toMatchObject({ code: "CORRUPT" });
    }
  });
});
