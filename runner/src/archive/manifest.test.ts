import { createHash } from "node:crypto";
import { describe, expect, it } from "vitest";
import { decodeManifest, encodeManifest, MANIFEST_MAGIC } from "./manifest";
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
