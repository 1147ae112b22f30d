import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { describe, expect, it } from "vitest";
import { compressChunk, decompress, rawFrame } from "./zstd";
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
    expect(raw.length).toBe(rnd.length + 9 + 8 * 3);
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
