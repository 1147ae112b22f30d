import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  appendFileSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  truncateSync,
  writeFileSync,
} from "node:fs";
import { basename, join } from "node:path";
import { availableParallelism } from "node:os";
import { createBackup } from "./index";
import { openArchive, readFrames, tarBytes, type ArchiveHandle } from "./reader";
import { BINDING, makeTree, tempDir } from "./test-helpers";
import { LocalDestination } from "../destinations/local";
import type { DecryptionKey } from "./types";

const PW = "Correct-Horse-9!battery";
const LIMITS = { maxLogN: 22, minLogN: 10, maxR: 32, maxP: 16 };
let root: string;
const archives: Record<string, { path: string; key: DecryptionKey }> = {};

/** Reads through createReadStream: the stream path, as for remote destinations. */
class StreamOnly extends LocalDestination {
  override createReadStream(name: string, range?: { start: number; end?: number }) {
    return super.createReadStream(name, range);
  }
}

beforeAll(async () => {
  root = tempDir();
  const src = join(root, "data");
  mkdirSync(src);
  makeTree(src, { bigBytes: 200 * 1024 });
  for (const [mode, encryption, key] of [
    ["none", { mode: "none" }, { mode: "none" }],
    ["password", { mode: "password", password: PW }, { mode: "password", password: PW }],
  ] as const) {
    const r = await createBackup({
      sources: [src],
      outDir: join(root, mode),
      name: "w",
      kind: "full",
      level: 3,
      encryption,
      binding: BINDING,
      chunkSize: 64 * 1024,
      scrypt: { N: 1024, r: 8, p: 1 },
    });
    archives[mode] = { path: r.path, key };
  }
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** A fresh copy of an archive and its manifest, opened through the given kind of destination. */
async function openCopy(mode: string, reader: "local" | "stream") {
  const a = archives[mode]!;
  const d = join(root, `copy-${mode}-${reader}-${Math.random().toString(36).slice(2)}`);
  mkdirSync(d);
  const name = basename(a.path);
  writeFileSync(join(d, name), readFileSync(a.path));
  writeFileSync(join(d, `${name}.manifest`), readFileSync(`${a.path}.manifest`));
  const dest = reader === "local" ? new LocalDestination(d) : new StreamOnly(d);
  const h = await openArchive({ source: dest, fileName: name, key: a.key, scryptLimits: LIMITS });
  return { h, file: join(d, name) };
}

async function readAll(h: ArchiveHandle): Promise<Buffer[]> {
  const out: Buffer[] = [];
  for await (const { frame } of readFrames(h, 0, h.manifest.frames.length)) out.push(frame);
  return out;
}

const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => "OK",
    (e: { code?: string }) => e.code,
  );

describe("frame reading: the local-file and stream paths agree", () => {
  for (const mode of ["none", "password"])
    describe(mode, () => {
      it("yields the same verified frames, each in its own buffer", async () => {
        const local = await readAll((await openCopy(mode, "local")).h);
        const stream = await readAll((await openCopy(mode, "stream")).h);
        expect(local.length).toBeGreaterThan(4);
        expect(local).toEqual(stream);
        // Callers keep frames while later ones are read: no two may share memory.
        const buffers = new Set(local.map((f) => f.buffer));
        expect(buffers.size).toBe(local.length);
      });

      for (const reader of ["local", "stream"] as const) {
        it(`${reader}: a file cut short after opening -> TRUNCATED`, async () => {
          const { h, file } = await openCopy(mode, reader);
          truncateSync(file, h.frameOffsets[3]! + 7);
          expect(await codeOf(readAll(h))).toBe("TRUNCATED");
        });
        it(`${reader}: bytes appended after opening -> CORRUPT`, async () => {
          const { h, file } = await openCopy(mode, reader);
          appendFileSync(file, "x");
          expect(await codeOf(readAll(h))).toBe("CORRUPT");
        });
        it(`${reader}: a flipped byte inside a data frame -> CORRUPT`, async () => {
          const { h, file } = await openCopy(mode, reader);
          const b = readFileSync(file);
          b[h.frameOffsets[2]! + 30]! ^= 0x10;
          writeFileSync(file, b);
          expect(await codeOf(readAll(h))).toBe("CORRUPT");
        });
      }
    });

  it("a reader stopped early closes its file (no read left pending)", async () => {
    const { h } = await openCopy("password", "local");
    const fds = () => readdirSync("/proc/self/fd").length;
    const before = fds();
    for await (const { index } of readFrames(h, 1, h.manifest.frames.length)) if (index === 2) break;
    expect(fds()).toBe(before);
  });
});

describe("transient tar bytes (decompressed into reused shared slots)", () => {
  for (const mode of ["none", "password"] as const)
    it(`${mode}: the same bytes as the plain path, frame by frame, with slots reused`, async () => {
      // 4 KiB frames: many more than there are slots.
      const r = await createBackup({
        sources: [join(root, "data")],
        outDir: join(root, `small-frames-${mode}`),
        name: "w",
        kind: "full",
        level: 3,
        encryption: mode === "none" ? { mode } : { mode, password: PW },
        binding: BINDING,
        chunkSize: 4096,
        scrypt: { N: 1024, r: 8, p: 1 },
      });
      const h = await openArchive({ source: r.path, key: archives[mode]!.key, scryptLimits: LIMITS });
      const n = h.manifest.frames.length;
      const plain: Buffer[] = [];
      for await (const { data } of tarBytes(h, 0, n)) plain.push(data);
      const transient: Buffer[] = [];
      const views = new Set<ArrayBufferLike>();
      for await (const { data } of tarBytes(h, 0, n, undefined, { transient: true })) {
        views.add(data.buffer);
        transient.push(Buffer.from(data)); // valid only until the generator resumes
      }
      expect(plain.length).toBeGreaterThan(availableParallelism() + 50); // many more frames than slots
      expect(transient).toEqual(plain);
      expect(views.size).toBe(1); // one shared ring, no per-frame allocation
    });

  it("a frame that decompresses to another size than the manifest's -> CORRUPT", async () => {
    const { h } = await openCopy("none", "local");
    h.manifest.frames[3]!.d -= 1;
    const run = async () => {
      for await (const _ of tarBytes(h, 0, h.manifest.frames.length, undefined, { transient: true }));
    };
    await expect(run()).rejects.toMatchObject({ code: "CORRUPT", message: /frame 3 decompressed to/ });
  });
});
