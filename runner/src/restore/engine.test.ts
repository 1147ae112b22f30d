import { afterAll, afterEach, describe, expect, it, vi } from "vitest";
import { execFileSync } from "node:child_process";
import {
  mkdirSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
  existsSync,
  createWriteStream,
} from "node:fs";
import { join } from "node:path";
import { createHash, randomBytes } from "node:crypto";
import {
  createBackup,
  decryptArchive,
  restoreArchive,
  verifyArchive,
  readEntries,
  inspectArchive,
} from "../archive/index";
import type { EncryptionSpec, DecryptionKey } from "../archive/types";
import {
  BINDING,
  describeTree,
  makeTree,
  manifestEntriesOf,
  packTar,
  tempDir,
} from "../archive/test-helpers";
import { encodeTarHeader, padding, TAR_END } from "../archive/tar-header";
import { StageWriter } from "./stage-writer";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const FAST = { N: 2 ** 10, r: 8, p: 1 };
const PW = "Correct-Horse-9!battery";
const panelKey = randomBytes(32);

const modes: { name: string; enc: EncryptionSpec; key: DecryptionKey }[] = [
  { name: "none", enc: { mode: "none" }, key: { mode: "none" } },
  { name: "password", enc: { mode: "password", password: PW }, key: { mode: "password", password: PW } },
  {
    name: "panel",
    enc: { mode: "panel", dataKey: panelKey, keyId: "pk_1", wrappedKey: "opaque" },
    key: { mode: "panel", dataKey: panelKey },
  },
];

async function backup(enc: EncryptionSpec) {
  const root = tempDir();
  dirs.push(root);
  const src = join(root, "data");
  mkdirSync(src);
  makeTree(src);
  const r = await createBackup({
    sources: [src],
    outDir: join(root, "out"),
    name: "web1",
    kind: "full",
    level: 3,
    encryption: enc,
    binding: BINDING,
    chunkSize: 128 * 1024,
    scrypt: FAST,
  });
  return { root, src, r };
}

describe.each(modes)("round trip, mode $name", ({ enc, key, name }) => {
  it("restores byte for byte (content, modes, mtimes, symlinks, hardlinks) and verifies", async () => {
    const { root, src, r } = await backup(enc);
    expect(r.fileName.endsWith(name === "none" ? ".tar.zst" : ".tar.zst.enc")).toBe(true);
    const v = await verifyArchive({
      source: r.path,
      key,
      binding: BINDING,
      scryptLimits: { maxLogN: 22, minLogN: 10, maxR: 32, maxP: 16 },
    });
    expect(v.entries).toBeGreaterThan(40);
    const target = join(root, "restore");
    const res = await restoreArchive({
      source: r.path,
      target,
      key,
      binding: BINDING,
      scryptLimits: { maxLogN: 22, minLogN: 10, maxR: 32, maxP: 16 },
    });
    expect(res.files).toBe(r.fileCount);
    expect(readdirSync(target)).toEqual(["data"]);
    expect(describeTree(join(target, "data"))).toEqual(describeTree(src));
    const hl = describeTree(join(target, "data")).find(
      (l) => l.startsWith("F site/public_html/index.php") || l.startsWith("F site/hardlink.php"),
    );
    expect(describeTree(join(target, "data")).some((l) => l.includes(" =site/"))).toBe(true);
    void hl;
  });

  it("decrypt/plain output is readable by zstd -dc | tar -t", async () => {
    const { root, r } = await backup(enc);
    let plain = r.path;
    if (name !== "none") {
      plain = join(root, "plain.tar.zst");
      const out = createWriteStream(plain);
      await decryptArchive({
        source: r.path,
        key,
        out,
        scryptLimits: { maxLogN: 22, minLogN: 10, maxR: 32, maxP: 16 },
      });
      await new Promise((res) => out.end(res));
    }
    const list = execFileSync("sh", ["-c", `zstd -dc '${plain}' | tar -t`]).toString();
    expect(list).toContain("data/site/private.key");
  });
});

describe("restore behaviour", () => {
  it("selective restore by glob reads only what it needs and restores only that", async () => {
    const { root, r } = await backup({ mode: "none" });
    const target = join(root, "sel");
    const res = await restoreArchive({
      source: r.path,
      target,
      key: { mode: "none" },
      only: ["data/mail/**"],
    });
    expect(existsSync(join(target, "data/mail/example.com/info/Maildir/cur/7.msg"))).toBe(true);
    expect(existsSync(join(target, "data/site"))).toBe(false);
    expect(res.files).toBe(30);
  });

  it("conflict skip / overwrite / rename", async () => {
    const { root, r } = await backup({ mode: "none" });
    const target = join(root, "c");
    const f = join(target, "data/site/script.sh");
    mkdirSync(join(target, "data/site"), { recursive: true });
    writeFileSync(f, "live\n");
    let res = await restoreArchive({
      source: r.path,
      target,
      key: { mode: "none" },
      only: ["data/site/script.sh"],
      conflict: "skip",
    });
    expect(readFileSync(f, "utf8")).toBe("live\n");
    expect(res.skipped).toContain("data/site/script.sh");
    res = await restoreArchive({
      source: r.path,
      target,
      key: { mode: "none" },
      only: ["data/site/script.sh"],
      conflict: "rename",
    });
    expect(readFileSync(f, "utf8")).toBe("live\n");
    expect(readFileSync(f + ".restored", "utf8")).toBe("#!/bin/sh\necho hi\n");
    res = await restoreArchive({
      source: r.path,
      target,
      key: { mode: "none" },
      only: ["data/site/script.sh"],
      conflict: "overwrite",
    });
    expect(readFileSync(f, "utf8")).toBe("#!/bin/sh\necho hi\n");
    expect(readdirSync(target).filter((n) => n.startsWith(".cairn-restore-"))).toEqual([]);
  });

  it("readEntries streams chosen entries with verified bodies", async () => {
    const { r } = await backup({ mode: "password", password: PW });
    const got: string[] = [];
    for await (const { entry, body } of readEntries({
      source: r.path,
      key: { mode: "password", password: PW },
      filter: ["data/site/*.sh", "data/site/private.key"],
      scryptLimits: { maxLogN: 22, minLogN: 10, maxR: 32, maxP: 16 },
    })) {
      const chunks: Buffer[] = [];
      for await (const c of body) chunks.push(c as Buffer);
      got.push(`${entry.p}:${Buffer.concat(chunks).toString()}`);
    }
    expect(got).toEqual(["data/site/private.key:secret\n", "data/site/script.sh:#!/bin/sh\necho hi\n"]);
  });

  it("inspect shows header without secrets and, with the key, the manifest summary", async () => {
    const { r } = await backup({ mode: "password", password: PW });
    const noKey = await inspectArchive({ source: r.path });
    expect(noKey.mode).toBe("password");
    expect(noKey.manifest).toBeUndefined();
    expect(JSON.stringify(noKey)).not.toContain("wrapped");
    const withKey = await inspectArchive({
      source: r.path,
      key: { mode: "password", password: PW },
      scryptLimits: { maxLogN: 22, minLogN: 10, maxR: 32, maxP: 16 },
    });
    expect(withKey.manifest?.totals.files).toBe(r.fileCount);
  });
});

describe("selective restore through a range-reading destination", () => {
  it("restores one domain and reads far less than the archive", async () => {
    const { LocalDestination } = await import("../destinations/local");
    class Counting extends LocalDestination {
      read = 0;
      override async createReadStream(name: string, range?: { start: number; end?: number }) {
        const s = await super.createReadStream(name, range);
        if (!name.endsWith(".manifest")) s.on("data", (c: Buffer) => (this.read += c.length));
        return s;
      }
    }
    const root = tempDir();
    dirs.push(root);
    const base = { mode: 0o644, uid: 0, gid: 0, mtime: new Date(0), type: "file" as const };
    async function* entries() {
      for (const dom of ["a.com", "b.com", "c.com", "d.com", "e.com", "f.com", "g.com", "h.com"]) {
        for (let i = 0; i < 8; i++) {
          const data = randomBytes(64 * 1024);
          yield {
            ...base,
            name: `web/${dom}/f${i}.bin`,
            size: data.length,
            domain: dom,
            component: "web",
            body: { kind: "buffer" as const, data },
          };
        }
      }
    }
    const r = await createBackup({
      entries: entries(),
      outDir: join(root, "out"),
      name: "doms",
      kind: "full",
      level: 1,
      encryption: { mode: "panel", dataKey: panelKey, keyId: "k", wrappedKey: "w" },
      binding: BINDING,
      chunkSize: 128 * 1024,
    });
    const dest = new Counting(join(root, "out"));
    const res = await restoreArchive({
      source: dest,
      fileName: r.fileName,
      target: join(root, "t"),
      key: { mode: "panel", dataKey: panelKey },
      binding: BINDING,
      only: ["domain:c.com"],
    });
    expect(res.files).toBe(8);
    expect(readdirSync(join(root, "t/web"))).toEqual(["c.com"]);
    expect(dest.read).toBeGreaterThan(8 * 64 * 1024);
    expect(dest.read).toBeLessThan(r.size / 5);
  });
});

describe("verify before commit", () => {
  it("a bad last byte leaves a live tree untouched", async () => {
    const { root, r } = await backup({ mode: "panel", dataKey: panelKey, keyId: "k", wrappedKey: "w" });
    const live = join(root, "live");
    mkdirSync(join(live, "data/site"), { recursive: true });
    writeFileSync(join(live, "data/site/script.sh"), "live version\n");
    const before = describeTree(live);
    const bytes = readFileSync(r.path);
    bytes[bytes.length - 1]! ^= 0x80;
    writeFileSync(r.path, bytes);
    await expect(
      restoreArchive({
        source: r.path,
        target: live,
        key: { mode: "panel", dataKey: panelKey },
        conflict: "overwrite",
      }),
    ).rejects.toMatchObject({ code: "CORRUPT" });
    expect(describeTree(live)).toEqual(before);
    expect(readdirSync(live)).toEqual(["data"]);
  });
});

describe("file contents are checked against the manifest before the move", () => {
  const fileTar = (files: [string, string][]) =>
    Buffer.concat([
      ...files.flatMap(([name, body]) => [
        encodeTarHeader({ name, type: "file", size: body.length, mode: 0o644, uid: 0, gid: 0, mtime: 0 }),
        Buffer.from(body),
        Buffer.alloc(padding(body.length)),
      ]),
      TAR_END,
    ]);
  afterEach(() => vi.restoreAllMocks());
  // Frames and tags are intact: only the per-file SHA-256 can catch these. The writer thread hashes
  // files unless it is behind, when the main thread does: both ways are forced here.
  for (const [what, bad] of [
    ["a file whose bytes differ from its manifest hash", "b.txt"],
    ["an empty file whose manifest hash is not the empty hash", "empty"],
  ] as const)
    for (const hasher of ["writer thread", "main thread"])
      it(`${what} (hashed on the ${hasher})`, async () => {
        const behind = vi
          .spyOn(StageWriter.prototype, "behind", "get")
          .mockReturnValue(hasher === "main thread");
        const root = tempDir();
        dirs.push(root);
        const target = join(root, "target");
        mkdirSync(target);
        writeFileSync(join(target, "live.txt"), "live");
        const tar = fileTar([
          ["a.txt", "first"],
          ["b.txt", "second"],
          ["empty", ""],
          ["c.txt", "third"],
        ]);
        const entries = manifestEntriesOf(tar).map((e) =>
          e.p === bad ? { ...e, h: createHash("sha256").update("other").digest("hex") } : e,
        );
        for (const m of modes) {
          const store = join(root, `store-${m.name}`);
          mkdirSync(store);
          const path = await packTar(tar, store, { entries, enc: m.enc });
          await expect(restoreArchive({ source: path, target, key: m.key })).rejects.toMatchObject({
            code: "CORRUPT",
            message: `content of ${bad} does not match the manifest`,
          });
          expect(readdirSync(target)).toEqual(["live.txt"]);
        }
        expect(behind).toHaveBeenCalled();
      });
});

describe("entries whose headers span several frames", () => {
  it("restores names and bodies cut across many small frames (each frame's slot is reused)", async () => {
    const root = tempDir();
    dirs.push(root);
    // A pax header of ~3 KiB (12 components of 250 bytes: each within NAME_MAX).
    const long = Array.from({ length: 12 }, (_, i) => String(i).padEnd(250, "x")).join("/");
    const files: [string, Buffer][] = [
      [long, Buffer.from("long name\n")],
      ["mid.bin", randomBytes(5000)],
      [`${"y".repeat(200)}/${"z".repeat(250)}/${"w".repeat(250)}.bin`, randomBytes(700)],
      ["last.txt", Buffer.from("last\n")],
    ];
    const tar = Buffer.concat([
      ...files.flatMap(([name, body]) => [
        encodeTarHeader({ name, type: "file", size: body.length, mode: 0o644, uid: 0, gid: 0, mtime: 0 }),
        body,
        Buffer.alloc(padding(body.length)),
      ]),
      TAR_END,
    ]);
    for (const m of modes) {
      const store = join(root, `store-${m.name}`);
      mkdirSync(store);
      const path = await packTar(tar, store, { enc: m.enc, chunkSize: 512 });
      const target = join(root, `t-${m.name}`);
      await restoreArchive({ source: path, target, key: m.key });
      for (const [name, body] of files) expect(readFileSync(join(target, name))).toEqual(body);
    }
  });
});

describe("ownership mapping", () => {
  const asRoot = process.getuid?.() === 0;
  if (!asRoot)
    console.warn("[engine.test] skipping the ownership test: not running as root, chown needs root");
  it.skipIf(!asRoot)(
    "keeps archived uid/gid only when running as root and asked (skipped when not root: needs chown)",
    async () => {
      const root = tempDir();
      dirs.push(root);
      const base = { mode: 0o640, uid: 1234, gid: 2345, mtime: new Date(0), type: "file" as const };
      async function* entries() {
        yield {
          ...base,
          name: "owned.txt",
          size: 2,
          body: { kind: "buffer" as const, data: Buffer.from("hi") },
        };
      }
      const r = await createBackup({
        entries: entries(),
        outDir: join(root, "out"),
        name: "own",
        kind: "full",
        level: 1,
        encryption: { mode: "none" },
        binding: BINDING,
      });
      await restoreArchive({
        source: r.path,
        target: join(root, "keep"),
        key: { mode: "none" },
        preserveOwner: true,
      });
      await restoreArchive({ source: r.path, target: join(root, "mine"), key: { mode: "none" } });
      const { statSync } = await import("node:fs");
      const kept = statSync(join(root, "keep/owned.txt"));
      const mine = statSync(join(root, "mine/owned.txt"));
      expect([kept.uid, kept.gid]).toEqual([1234, 2345]);
      expect([mine.uid, mine.gid]).toEqual([process.getuid!(), process.getgid!()]);
    },
  );
});
