/**
 * The one conformance suite every destination passes. Call it inside a test file with a factory that
 * opens the destination against a real server started by that file.
 */
import { createHash, randomBytes } from "node:crypto";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DestinationError, type Destination, type ObjectWriter } from "../../runner/src/destinations/types";

export interface ConformanceOptions {
  /** Peak of live ArrayBuffer memory allowed while streaming the big object (default 16 MiB). */
  maxLiveBufferBytes?: number;
  bigObjectBytes?: number;
}

setFlagsFromString("--expose-gc");
const gc = runInNewContext("gc") as () => void;

export async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Uint8Array));
  return Buffer.concat(chunks);
}

export async function writeObject(dest: Destination, name: string, body: Buffer): Promise<void> {
  const w = await dest.createWriter(name, { sizeHint: body.length });
  try {
    await pipeline(Readable.from([body]), w.stream);
    await w.commit();
  } catch (err) {
    // The documented contract: whoever writes aborts a failed writer.
    await w.abort(err);
    throw err;
  }
}

/** The DestinationError `p` rejects with (it must reject with one). */
export async function failure(p: Promise<unknown>): Promise<DestinationError> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DestinationError);
  return err as DestinationError;
}

/** Writes `body` with a writer that continues the suspended upload `token`; the committed writer. */
export async function writeResumed(
  dest: Destination,
  name: string,
  token: unknown,
  body: Buffer,
): Promise<ObjectWriter> {
  const w = await dest.createWriter(name, { resume: token, keepOnFailure: true });
  await pipeline(Readable.from([body]), w.stream);
  await w.commit();
  return w;
}

/** Deterministic pseudo-random data (xorshift32) in 1 MiB chunks, holding one chunk at a time. */
function* bigChunks(total: number, onChunk: (chunk: Buffer) => void): Generator<Buffer> {
  const chunk = 1024 * 1024;
  let x = 0x9e3779b9;
  for (let off = 0; off < total; off += chunk) {
    const out = Buffer.alloc(Math.min(chunk, total - off));
    const words = new Uint32Array(out.buffer, out.byteOffset, Math.floor(out.length / 4));
    for (let k = 0; k < words.length; k++) {
      x ^= x << 13;
      x ^= x >>> 17;
      x ^= x << 5;
      words[k] = x >>> 0;
    }
    onChunk(out);
    yield out;
  }
}

async function expectCode(p: Promise<unknown>, code: string): Promise<void> {
  const err = await p.then(
    () => null,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(DestinationError);
  expect((err as DestinationError).code).toBe(code);
}

export function destinationConformance(
  label: string,
  open: () => Promise<Destination>,
  opts: ConformanceOptions = {},
): void {
  describe(`${label}: conformance`, () => {
    let dest: Destination;
    const run = randomBytes(4).toString("hex");
    const n = (s: string) => `conf-${run}/${s}`;

    beforeAll(async () => {
      dest = await open();
    });
    afterAll(async () => {
      await dest?.close();
    });

    it("writes, commits, stats, lists and reads back byte for byte", async () => {
      const body = randomBytes(300_001);
      await writeObject(dest, n("a.bin"), body);
      const st = await dest.stat(n("a.bin"));
      expect(st?.size).toBe(body.length);
      const listed = await dest.list(`conf-${run}/`);
      expect(listed.map((o) => o.name)).toContain(n("a.bin"));
      expect(listed.find((o) => o.name === n("a.bin"))?.size).toBe(body.length);
      expect((await readAll(await dest.createReadStream(n("a.bin")))).equals(body)).toBe(true);
    });

    it("reads ranges (end inclusive) and open-ended ranges", async () => {
      const body = randomBytes(100_000);
      await writeObject(dest, n("r.bin"), body);
      const mid = await readAll(await dest.createReadStream(n("r.bin"), { start: 1000, end: 1999 }));
      expect(mid.equals(body.subarray(1000, 2000))).toBe(true);
      const tail = await readAll(await dest.createReadStream(n("r.bin"), { start: 99_990 }));
      expect(tail.equals(body.subarray(99_990))).toBe(true);
    });

    it("shows nothing under the final name before commit", async () => {
      const w = await dest.createWriter(n("pending.bin"));
      await pipeline(Readable.from([randomBytes(50_000)]), w.stream);
      expect(await dest.stat(n("pending.bin"))).toBeNull();
      expect((await dest.list(`conf-${run}/`)).map((o) => o.name)).not.toContain(n("pending.bin"));
      const info = await w.commit();
      expect(info.size).toBe(50_000);
      expect((await dest.stat(n("pending.bin")))?.size).toBe(50_000);
    });

    it("abort leaves nothing behind, and is safe to call twice", async () => {
      const w = await dest.createWriter(n("aborted.bin"));
      await new Promise<void>((resolve, reject) =>
        w.stream.write(randomBytes(70_000), (e) => (e ? reject(e) : resolve())),
      );
      await w.abort(new Error("test abort"));
      await w.abort();
      expect(await dest.stat(n("aborted.bin"))).toBeNull();
      expect((await dest.list(`conf-${run}/`)).map((o) => o.name)).not.toContain(n("aborted.bin"));
    });

    it("deletes", async () => {
      await writeObject(dest, n("d.bin"), randomBytes(10));
      await dest.delete(n("d.bin"));
      expect(await dest.stat(n("d.bin"))).toBeNull();
    });

    it("test() writes, reads back and deletes a probe", async () => {
      const before = (await dest.list()).length;
      await dest.test();
      expect((await dest.list()).length).toBe(before);
    });

    it("a missing object is null on stat and NOT_FOUND on read", async () => {
      expect(await dest.stat(n("missing.bin"))).toBeNull();
      await expectCode(dest.createReadStream(n("missing.bin")).then(readAll), "NOT_FOUND");
    });

    it("handles names with spaces and unicode", async () => {
      const name = n("dir one/ünïcødé fïlé € 日本.bin");
      const body = randomBytes(1234);
      await writeObject(dest, name, body);
      expect((await dest.stat(name))?.size).toBe(1234);
      expect((await dest.list(`conf-${run}/dir one/`)).map((o) => o.name)).toEqual([name]);
      expect((await readAll(await dest.createReadStream(name))).equals(body)).toBe(true);
    });

    it("onAcked: acknowledged bytes never run ahead of the bytes written and add up to the size at commit", async () => {
      const size = 11 * 1024 * 1024 + 7;
      const body = randomBytes(size);
      let written = 0;
      let acked = 0;
      const ahead: number[] = [];
      const w = await dest.createWriter(n("acked.bin"), {
        sizeHint: size,
        onAcked: (bytes) => {
          expect(bytes).toBeGreaterThan(0);
          acked += bytes;
          if (acked > written) ahead.push(acked - written);
        },
      });
      // 64 KiB pieces, counted as the writer's stream takes them.
      const pieces = function* () {
        for (let off = 0; off < size; off += 64 * 1024) {
          const piece = body.subarray(off, Math.min(size, off + 64 * 1024));
          written += piece.length;
          yield piece;
        }
      };
      await pipeline(Readable.from(pieces(), { objectMode: false }), w.stream);
      expect((await w.commit()).size).toBe(size);
      expect(ahead).toEqual([]);
      expect(acked).toBe(size);
    });

    it("refuses names that escape the destination", async () => {
      await expectCode(dest.createWriter("../escape.bin"), "PROTOCOL_ERROR");
      await expectCode(dest.createWriter("/abs.bin"), "PROTOCOL_ERROR");
    });

    it("streams a big object with bounded memory and reads it back exactly", async () => {
      const size = opts.bigObjectBytes ?? 20 * 1024 * 1024;
      const limit = opts.maxLiveBufferBytes ?? 16 * 1024 * 1024;
      gc();
      const base = process.memoryUsage().arrayBuffers;
      let peak = 0;
      const sha = createHash("sha256");
      // Byte-mode source with a small buffer: the default object mode would queue 16 chunks.
      const source = Readable.from(
        bigChunks(size, (chunk) => {
          sha.update(chunk);
          gc();
          peak = Math.max(peak, process.memoryUsage().arrayBuffers - base);
        }),
        { objectMode: false, highWaterMark: 64 * 1024 },
      );
      const w = await dest.createWriter(n("big.bin"), { sizeHint: size });
      await pipeline(source, w.stream);
      expect((await w.commit()).size).toBe(size);
      expect(peak).toBeLessThan(limit);
      const back = createHash("sha256");
      for await (const c of await dest.createReadStream(n("big.bin"))) back.update(c as Buffer);
      expect(back.digest("hex")).toBe(sha.digest("hex"));
    });
  });
}
