import { afterAll, describe, expect, it } from "vitest";
import {
  mkdirSync,
  readdirSync,
  rmSync,
  writeFileSync,
  readFileSync,
  symlinkSync,
  statSync,
  writeFileSync as wf,
} from "node:fs";
import { join } from "node:path";
import { pack as tarPack, type Header } from "tar-stream";
import { compress } from "@mongodb-js/zstd";
import { createHash } from "node:crypto";
import { restoreArchive } from "../archive/index";
import { BINDING, manifestEntriesOf, packTar, tempDir } from "../archive/test-helpers";
import { encodeTarHeader, TAR_END } from "../archive/tar-header";
import { encodeHeaderFrame, encodeSeekTable } from "../archive/frames";
import { encodeManifest, manifestFileName } from "../archive/manifest";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

async function makeTar(items: (Partial<Header> & { name: string; body?: string })[]): Promise<Buffer> {
  const p = tarPack();
  const out: Buffer[] = [];
  p.on("data", (c: unknown) => void out.push(c as Buffer));
  const done = new Promise<void>((r) => p.on("end", () => r()));
  for (const it of items) {
    const { body, ...h } = it;
    await new Promise<void>((res, rej) =>
      body === undefined
        ? p.entry({ mode: 0o644, mtime: new Date(0), ...h }, (err) => (err ? rej(err) : res()))
        : p.entry({ mode: 0o644, mtime: new Date(0), ...h }, body, (err) => (err ? rej(err) : res())),
    );
  }
  p.finalize();
  await done;
  return Buffer.concat(out);
}

/** A scene: outside dir with a sentinel, target with a live file; returns a checker. */
function scene() {
  const root = tempDir();
  dirs.push(root);
  const outside = join(root, "outside");
  const target = join(root, "target");
  const store = join(root, "store");
  mkdirSync(outside);
  mkdirSync(target);
  mkdirSync(store);
  writeFileSync(join(outside, "sentinel"), "keep");
  writeFileSync(join(target, "live.txt"), "live");
  return {
    root,
    outside,
    target,
    store,
    untouched() {
      expect(readdirSync(outside)).toEqual(["sentinel"]);
      expect(readFileSync(join(outside, "sentinel"), "utf8")).toBe("keep");
      expect(readdirSync(target)).toEqual(["live.txt"]);
      expect(readFileSync(join(target, "live.txt"), "utf8")).toBe("live");
      expect(readdirSync(root).sort()).toEqual(["outside", "store", "target"]);
    },
  };
}

async function expectRefused(items: (Partial<Header> & { name: string; body?: string })[], code: string) {
  const s = scene();
  const path = await packTar(await makeTar(items), s.store);
  await expect(
    restoreArchive({ source: path, target: s.target, key: { mode: "none" } }),
  ).rejects.toMatchObject({ code });
  s.untouched();
}

describe("hostile archives are refused and nothing is written", () => {
  it("path traversal", () =>
    expectRefused(
      [
        { name: "ok.txt", body: "x" },
        { name: "../../outside/evil", body: "evil" },
      ],
      "UNSAFE_ENTRY",
    ));
  it("absolute names", () => expectRefused([{ name: "/tmp/cairn-evil-abs", body: "evil" }], "UNSAFE_ENTRY"));
  it("symlink then write through it", () =>
    expectRefused(
      [
        { name: "d", type: "directory" },
        { name: "a", type: "symlink", linkname: "d" },
        { name: "a/x", body: "through" },
      ],
      "UNSAFE_ENTRY",
    ));
  it("symlink pointing outside", () =>
    expectRefused([{ name: "a/b", type: "symlink", linkname: "../../outside" }], "UNSAFE_ENTRY"));
  it("symlink to an absolute path", () =>
    expectRefused([{ name: "etc", type: "symlink", linkname: "/etc" }], "UNSAFE_ENTRY"));
  it("symlink chains that climb out through another link", () =>
    expectRefused(
      [
        { name: "a", type: "symlink", linkname: "." },
        { name: "b", type: "symlink", linkname: "a/a/a/../.." },
      ],
      "UNSAFE_ENTRY",
    ));
  it("hardlink escape", () =>
    expectRefused([{ name: "h", type: "link", linkname: "../outside/sentinel" }], "UNSAFE_ENTRY"));
  it("hardlink to something not restored from the archive", () =>
    expectRefused([{ name: "h", type: "link", linkname: "live.txt" }], "UNSAFE_ENTRY"));
  it("device nodes", () =>
    expectRefused([{ name: "null", type: "character-device", devmajor: 1, devminor: 3 }], "UNSAFE_ENTRY"));
  it("FIFOs", () => expectRefused([{ name: "pipe", type: "fifo" }], "UNSAFE_ENTRY"));
  it("deep nesting", () =>
    expectRefused(
      [{ name: Array.from({ length: 200 }, () => "d").join("/") + "/f", body: "deep" }],
      "UNSAFE_ENTRY",
    ));
  it("duplicate entries (replace after check)", () =>
    expectRefused(
      [
        { name: "f", body: "one" },
        { name: "f", body: "two" },
      ],
      "UNSAFE_ENTRY",
    ));

  it("huge declared sizes", async () => {
    const s = scene();
    const tar = Buffer.concat([
      encodeTarHeader({
        name: "huge.bin",
        type: "file",
        size: 2 ** 40,
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: 0,
      }),
      Buffer.alloc(4096),
      TAR_END,
    ]);
    const entries = [
      {
        p: "huge.bin",
        t: "file" as const,
        s: 2 ** 40,
        m: 0o644,
        u: 0,
        g: 0,
        mt: 0,
        o: 0,
        e: 2 ** 40 + 512,
        h: "0".repeat(64),
      },
    ];
    const path = await packTar(tar, s.store, { entries });
    await expect(
      restoreArchive({ source: path, target: s.target, key: { mode: "none" } }),
    ).rejects.toMatchObject({ code: "CORRUPT" });
    s.untouched();
  });

  it("a decompression bomb (frame expanding far beyond its declared size)", async () => {
    const s = scene();
    const chunkSize = 64 * 1024;
    const inner = Buffer.concat([
      encodeTarHeader({
        name: "bomb",
        type: "file",
        size: 256 * 1024 * 1024,
        mode: 0o644,
        uid: 0,
        gid: 0,
        mtime: 0,
      }),
    ]);
    const bomb = await compress(Buffer.concat([inner, Buffer.alloc(256 * 1024 * 1024)]), 3);
    const hdr = encodeHeaderFrame({ v: 1, mode: "none", binding: BINDING, chunkSize });
    const frames = [
      { c: hdr.length, d: 0, h: createHash("sha256").update(hdr).digest("hex") },
      { c: bomb.length, d: chunkSize, h: createHash("sha256").update(bomb).digest("hex") },
    ];
    const fileName = "bomb_full_20260101_000000.tar.zst";
    wf(join(s.store, fileName), Buffer.concat([hdr, bomb, encodeSeekTable(frames)]));
    const m = {
      v: 1 as const,
      name: "bomb",
      kind: "full" as const,
      createdAt: "",
      mode: "none" as const,
      binding: BINDING,
      archive: { fileName, size: 0, sha256: "" },
      chunkSize,
      frames,
      entries: [
        {
          p: "bomb",
          t: "file" as const,
          s: 1000,
          m: 0o644,
          u: 0,
          g: 0,
          mt: 0,
          o: 0,
          e: 2048,
          h: "0".repeat(64),
        },
      ],
      totals: { files: 1, entries: 1, bytes: 1000, tarBytes: chunkSize },
      warnings: [],
    };
    wf(join(s.store, manifestFileName(fileName)), await encodeManifest(m));
    await expect(
      restoreArchive({ source: join(s.store, fileName), target: s.target, key: { mode: "none" } }),
    ).rejects.toMatchObject({ code: "CORRUPT", message: expect.stringMatching(/bomb/) });
    s.untouched();
  });

  it("an existing symlink in the target is never written through", async () => {
    const s = scene();
    symlinkSync(s.outside, join(s.target, "site"));
    const path = await packTar(
      await makeTar([
        { name: "site", type: "directory" },
        { name: "site/index.php", body: "x" },
      ]),
      s.store,
    );
    await expect(
      restoreArchive({ source: path, target: s.target, key: { mode: "none" } }),
    ).rejects.toMatchObject({ code: "UNSAFE_ENTRY" });
    expect(readdirSync(s.outside)).toEqual(["sentinel"]);
    expect(readdirSync(s.target).sort()).toEqual(["live.txt", "site"]);
  });

  it("setuid/setgid/sticky bits are stripped", async () => {
    const s = scene();
    const path = await packTar(
      await makeTar([
        { name: "suid", body: "#!/bin/sh\n", mode: 0o6755 },
        { name: "sticky", type: "directory", mode: 0o1777 },
      ]),
      s.store,
    );
    await restoreArchive({ source: path, target: s.target, key: { mode: "none" } });
    expect(statSync(join(s.target, "suid")).mode & 0o7777).toBe(0o755);
    expect(statSync(join(s.target, "sticky")).mode & 0o7777).toBe(0o777);
  });

  it("the test tar walker agrees with the manifest writer on offsets", async () => {
    const tar = await makeTar([
      { name: "x".repeat(150), body: "long" },
      { name: "y", body: "short" },
    ]);
    const e = manifestEntriesOf(tar);
    expect(e.map((x) => [x.p.length, x.o])).toEqual([
      [150, 0],
      [1, e[0]!.e],
    ]);
  });
});

// The staging directory (not a set of every path) refuses these: each must still be UNSAFE_ENTRY.
describe("conflicts inside the archive are refused and nothing is written", () => {
  it("a directory listed twice", () =>
    expectRefused(
      [
        { name: "d", type: "directory" },
        { name: "d", type: "directory" },
      ],
      "UNSAFE_ENTRY",
    ));
  it("a file, then a directory of the same name", () =>
    expectRefused(
      [
        { name: "x", body: "file" },
        { name: "x", type: "directory" },
      ],
      "UNSAFE_ENTRY",
    ));
  it("a file, then an entry below it", () =>
    expectRefused(
      [
        { name: "f", body: "file" },
        { name: "f/below", body: "x" },
      ],
      "UNSAFE_ENTRY",
    ));
  it("a hardlink to a symlink restored earlier", () =>
    expectRefused(
      [
        { name: "t", body: "target" },
        { name: "s", type: "symlink", linkname: "t" },
        { name: "h", type: "link", linkname: "s" },
      ],
      "UNSAFE_ENTRY",
    ));
  it("a hardlink to a directory restored earlier", () =>
    expectRefused(
      [
        { name: "d", type: "directory" },
        { name: "h", type: "link", linkname: "d" },
      ],
      "UNSAFE_ENTRY",
    ));
});

describe("hardlink targets are named directly", () => {
  it("a hardlink whose target path goes through an archived symlink", () =>
    expectRefused(
      [
        { name: "d", type: "directory" },
        { name: "d/f", body: "file" },
        { name: "s", type: "symlink", linkname: "d" },
        { name: "h", type: "link", linkname: "s/f" },
      ],
      "UNSAFE_ENTRY",
    ));
});
