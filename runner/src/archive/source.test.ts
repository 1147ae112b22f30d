import { afterAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createBackup } from "./index";
import { decodeManifest } from "./manifest";
import type { ManifestEntry } from "./manifest-types";
import { tarChunksSync, walkSources, type TarSink } from "./source";
import { padding } from "./tar-header";
import type { ArchiveEntry } from "./types";
import { BINDING, describeTree, manifestEntriesOf, tempDir } from "./test-helpers";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

function sinkFor(entries: ManifestEntry[]): TarSink {
  return { manifest: { add: (e) => entries.push(e) }, warnings: [], bytesIn: 0, files: 0 };
}

function collect(chunks: Iterable<Buffer>, chunkSize: number): Buffer {
  const all = [...chunks];
  all.slice(0, -1).forEach((c) => expect(c.length).toBe(chunkSize));
  // the chunk buffers are recycled only when released, so every chunk is still intact here
  return Buffer.concat(all);
}

/** What the writer recorded is what an independent tar parser finds: offsets, sizes, hashes. */
function expectManifestMatches(tar: Buffer, entries: ManifestEntry[]): void {
  expect(entries.map((e) => ({ ...e, u: 0, g: 0 }))).toEqual(manifestEntriesOf(tar));
}

/** A file ~3000 characters deep: its pax header is longer than a 4096-byte chunk. */
function deepFile(root: string): void {
  const deep = join(root, ...Array.from({ length: 12 }, (_, i) => String.fromCharCode(97 + i).repeat(250)));
  mkdirSync(deep, { recursive: true });
  writeFileSync(join(deep, "leaf.txt"), "leaf\n");
}

const sizes = [0, 1, 511, 512, 513, 4095, 4096, 4097, 5000, 10_001, 70_000];

describe("tar writer", () => {
  it.each([4096, 5000])("cuts a tree into %i-byte chunks that GNU tar reads back", (chunkSize) => {
    const root = tempDir();
    dirs.push(root);
    const src = join(root, "data");
    mkdirSync(join(src, "sub"), { recursive: true });
    sizes.forEach((n, i) =>
      writeFileSync(join(src, i % 2 ? "sub" : "", `f${n}.bin`), Buffer.alloc(n, i + 1)),
    );
    deepFile(src);
    const entries: ManifestEntry[] = [];
    const sink = sinkFor(entries);
    const tar = collect(tarChunksSync(walkSources([src], sink.warnings), chunkSize, sink), chunkSize);
    expect(sink.warnings).toEqual([]);
    expect(sink.files).toBe(sizes.length + 1);
    expectManifestMatches(tar, entries);
    const x = join(root, "x");
    mkdirSync(x);
    execFileSync("tar", ["-x", "-C", x], { input: tar });
    expect(describeTree(join(x, "data"))).toEqual(describeTree(src));
  });

  // A body that ends with spare room in its chunk is checked for growth by its last read asking
  // one byte more; one that ends exactly at the chunk's end needs a read of its own.
  // "lead" fills [0, 1536), the body's header [1536, 2048): its body starts at 2048 of a 4096 chunk.
  it.each([
    ["spare room after the body", 1948],
    ["the body ending the chunk", 2048],
    ["the body crossing into the next chunk", 2100],
  ])("growth, shrinking and exact sizes are told apart with %s", (_label, listedSize) => {
    const root = tempDir();
    dirs.push(root);
    const file = (name: string, bytes: number, listed: number): ArchiveEntry => {
      writeFileSync(join(root, name), Buffer.alloc(bytes, name.charCodeAt(0)));
      const body = { kind: "file" as const, absPath: join(root, name) };
      return { name, type: "file", size: listed, mode: 0o644, uid: 0, gid: 0, mtime: new Date(0), body };
    };
    for (const [bytes, warning] of [
      [listedSize, null],
      [listedSize + 1, /^file grew while being read \(truncated to \d+ bytes\): body$/],
      [listedSize - 7, /^file shrank while being read \(padded with zeros to \d+ bytes\): body$/],
    ] as const) {
      const entries: ManifestEntry[] = [];
      const sink = sinkFor(entries);
      const list = [file("lead", 1000, 1000), file("body", bytes, listedSize), file("tail", 10, 10)];
      const tar = collect(tarChunksSync(list, 4096, sink), 4096);
      if (warning) {
        expect(sink.warnings).toHaveLength(1);
        expect(sink.warnings[0]).toMatch(warning);
      } else expect(sink.warnings).toEqual([]);
      expectManifestMatches(tar, entries);
      expect(execFileSync("tar", ["-t"], { input: tar }).toString()).toBe("lead\nbody\ntail\n");
      const body = entries[1]!;
      expect(body.o).toBe(1536);
      const start = body.e - body.s - padding(body.s);
      const stored = Buffer.alloc(listedSize);
      stored.fill("b".charCodeAt(0), 0, Math.min(bytes, listedSize));
      expect(tar.subarray(start, start + listedSize).equals(stored)).toBe(true);
      expect(tar.subarray(start + listedSize, body.e).equals(Buffer.alloc(body.e - start - listedSize))).toBe(
        true,
      );
      expect(entries[2]!.o).toBe(body.e);
    }
  });

  it("the tar worker and the main thread write the same archive", async () => {
    const root = tempDir();
    dirs.push(root);
    const src = join(root, "site");
    mkdirSync(join(src, "a"), { recursive: true });
    sizes.forEach((n, i) => writeFileSync(join(src, "a", `f${i}.bin`), Buffer.alloc(n, i + 1)));
    deepFile(src);
    const run = async (tarInThread: boolean) => {
      const out = join(root, `out-${tarInThread}`);
      const r = await createBackup({
        sources: [src],
        tarInThread,
        outDir: out,
        name: "w",
        kind: "full",
        level: 1,
        encryption: { mode: "none" },
        binding: BINDING,
        chunkSize: 4096,
        now: new Date("2026-01-02T03:04:05Z"),
      });
      const m = await decodeManifest(readFileSync(join(out, r.manifestFileName!)));
      return { archive: readFileSync(r.path), m };
    };
    const worker = await run(false);
    const inThread = await run(true);
    expect(worker.m.frames.length).toBeGreaterThan(10);
    expect(worker.m.entries).toEqual(inThread.m.entries);
    expect(worker.archive.equals(inThread.archive)).toBe(true);
  });
});
