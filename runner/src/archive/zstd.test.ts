import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { compressChunk, decompress, rawFrame, withChecksum } from "./zstd";
import { zstdFrameOutputBound } from "./frames";

const text = (n: number) =>
  Buffer.from('GET /index.php HTTP/1.1 200 5123 "Mozilla/5.0"\n'.repeat(n / 46 + 1)).subarray(0, n);

describe("raw frames for incompressible chunks", () => {
  it("rawFrame is a zstd frame that our decoder and stock `zstd -d` both read back exactly", async () => {
    for (const n of [1, 131072, 131073, 1024 * 1024 + 5]) {
      const data = randomBytes(n);
      const f = rawFrame(data);
      expect(zstdFrameOutputBound(f)).toBe(n);
      expect((await decompress(f)).equals(data)).toBe(true);
      const r = spawnSync("zstd", ["-d", "-c", "-q"], { input: f, maxBuffer: 1 << 26 });
      expect(r.status).toBe(0);
      expect(Buffer.from(r.stdout).equals(data)).toBe(true);
    }
  });

  it("stores random data raw and still compresses text, and mixed chunks", async () => {
    const rnd = randomBytes(1024 * 1024);
    const raw = await compressChunk(rnd, 3);
    expect(raw.length).toBe(rnd.length + 9 + 8 * 3 + 4);
    expect((await decompress(raw)).equals(rnd)).toBe(true);

    const txt = text(1024 * 1024);
    const z = await compressChunk(txt, 3);
    expect(z.length).toBeLessThan(txt.length / 10);
    expect((await decompress(z)).equals(txt)).toBe(true);

    // Random data around a compressible middle: one sample shrinks, so the chunk is compressed.
    const mixed = Buffer.concat([randomBytes(400 * 1024), text(200 * 1024), randomBytes(400 * 1024)]);
    const m = await compressChunk(mixed, 3);
    expect(m.length).toBeLessThan(mixed.length - 100 * 1024);
    expect((await decompress(m)).equals(mixed)).toBe(true);
  });
});

describe("frame content checksums", () => {
  const zstdTest = (f: Buffer) => spawnSync("zstd", ["-t", "-q"], { input: f, maxBuffer: 1 << 26 });

  it("every frame compressChunk writes carries a checksum that stock `zstd -t` verifies", async () => {
    for (const data of [randomBytes(1024 * 1024), text(1024 * 1024), text(100)]) {
      const f = await compressChunk(data, 3);
      expect(f[4]! & 0x04).toBe(0x04);
      expect(zstdTest(f).status).toBe(0);
      expect((await decompress(f)).equals(data)).toBe(true);
    }
  });

  it("a frame whose content does not match its checksum is refused by our decoder and by zstd -t", async () => {
    for (const data of [randomBytes(300 * 1024), text(300 * 1024)]) {
      const good = await compressChunk(data, 3);
      const bad = Buffer.from(good);
      bad.writeUInt32LE((bad.readUInt32LE(bad.length - 4) ^ 1) >>> 0, bad.length - 4);
      await expect(decompress(bad)).rejects.toThrow();
      expect(zstdTest(bad).status).not.toBe(0);
      // a raw frame's content bytes are stored as-is: flip one and only the checksum can tell
      if (good.length > data.length) {
        const flipped = Buffer.from(good);
        flipped[20] = flipped[20]! ^ 0x40;
        await expect(decompress(flipped)).rejects.toThrow();
      }
    }
  });

  it("withChecksum refuses a frame that already has one", () => {
    expect(() => withChecksum(withChecksum(rawFrame(Buffer.from("x")), 0), 0)).toThrow(/without checksum/);
  });
});
