import { afterAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { createBackup, restoreArchive, verifyArchive } from "./index";
import { readFileSync, writeFileSync } from "node:fs";
import { BINDING, describeTree, makeTree, tempDir } from "./test-helpers";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

describe("createBackup (mode none)", () => {
  it("writes a .tar.zst that stock zstd and tar read back identically", async () => {
    const root = tempDir();
    dirs.push(root);
    const src = join(root, "data");
    mkdirSync(src);
    makeTree(src);
    const out = join(root, "out");
    const r = await createBackup({
      sources: [src],
      outDir: out,
      name: "web1",
      kind: "full",
      level: 3,
      encryption: { mode: "none" },
      binding: BINDING,
      chunkSize: 256 * 1024,
      now: new Date("2026-01-02T03:04:05Z"),
    });
    expect(r.fileName).toBe("web1_full_20260102_030405.tar.zst");
    expect(readdirSync(out).sort()).toEqual([r.fileName, `${r.fileName}.manifest`]);
    const listing = execFileSync("sh", ["-c", `zstd -dc '${r.path}' | tar -t`])
      .toString()
      .trim()
      .split("\n");
    expect(listing).toContain("data/site/public_html/index.php");
    expect(listing.some((l) => l.endsWith("f".repeat(120) + ".txt"))).toBe(true);
    const x = join(root, "x");
    mkdirSync(x);
    execFileSync("sh", ["-c", `zstd -dc '${r.path}' | tar -x -C '${x}'`]);
    expect(describeTree(join(x, "data"))).toEqual(describeTree(src));
    expect(r.warnings).toEqual([]);
    expect(r.fileCount).toBeGreaterThan(30);
  });

  it("cancel mid-backup leaves no final-named file and no temp file", async () => {
    const root = tempDir();
    dirs.push(root);
    const src = join(root, "data");
    mkdirSync(src);
    makeTree(src, { bigBytes: 8 * 1024 * 1024 });
    const out = join(root, "out");
    const ac = new AbortController();
    const p = createBackup({
      sources: [src],
      outDir: out,
      name: "web1",
      kind: "full",
      level: 3,
      encryption: { mode: "none" },
      binding: BINDING,
      chunkSize: 64 * 1024,
      signal: ac.signal,
      onProgress: () => ac.abort(),
    });
    await expect(p).rejects.toMatchObject({ code: "CANCELLED" });
    expect(readdirSync(out)).toEqual([]);
  });

  it("a file that shrinks, grows or vanishes while read gives warnings and a valid archive", async () => {
    const root = tempDir();
    dirs.push(root);
    const f = (n: string, body: string) => {
      writeFileSync(join(root, n), body);
      return join(root, n);
    };
    const base = { mode: 0o644, uid: 0, gid: 0, mtime: new Date(0) };
    async function* entries() {
      // sizes as they were when listed; the files on disk have changed since
      yield {
        ...base,
        name: "shrank.txt",
        type: "file" as const,
        size: 1000,
        body: { kind: "file" as const, absPath: f("shrank", "x".repeat(500)) },
      };
      yield {
        ...base,
        name: "grew.txt",
        type: "file" as const,
        size: 100,
        body: { kind: "file" as const, absPath: f("grew", "y".repeat(500)) },
      };
      yield {
        ...base,
        name: "gone.txt",
        type: "file" as const,
        size: 10,
        body: { kind: "file" as const, absPath: join(root, "missing") },
      };
      yield {
        ...base,
        name: "after.txt",
        type: "file" as const,
        size: 3,
        body: { kind: "buffer" as const, data: Buffer.from("end") },
      };
    }
    const r = await createBackup({
      entries: entries(),
      outDir: join(root, "out"),
      name: "w",
      kind: "full",
      level: 3,
      encryption: { mode: "none" },
      binding: BINDING,
    });
    expect(r.warnings).toHaveLength(3);
    expect(r.warnings.join("\n")).toMatch(
      /shrank.*shrank\.txt[\s\S]*grew.*grew\.txt[\s\S]*vanished.*gone\.txt/,
    );
    await verifyArchive({ source: r.path, key: { mode: "none" } });
    const t = join(root, "t");
    const res = await restoreArchive({ source: r.path, target: t, key: { mode: "none" } });
    expect(res.warnings).toHaveLength(3);
    expect(readFileSync(join(t, "shrank.txt"))).toEqual(
      Buffer.concat([Buffer.from("x".repeat(500)), Buffer.alloc(500)]),
    );
    expect(readFileSync(join(t, "grew.txt"), "utf8")).toBe("y".repeat(100));
    expect(readFileSync(join(t, "after.txt"), "utf8")).toBe("end");
  });

  it("source directories: warnings, totals and progress come back from the tar worker", async () => {
    const root = tempDir();
    dirs.push(root);
    const src = join(root, "site");
    mkdirSync(join(src, "a/b"), { recursive: true });
    writeFileSync(join(src, "a/b/big.bin"), Buffer.alloc(9 * 1024 * 1024, 7));
    writeFileSync(join(src, "a/small.txt"), "hello");
    execFileSync("mkfifo", [join(src, "a/pipe")]);
    const progress: { bytes: number; phase?: string }[] = [];
    const r = await createBackup({
      sources: [src],
      outDir: join(root, "out"),
      name: "w",
      kind: "full",
      level: 3,
      encryption: { mode: "none" },
      binding: BINDING,
      onProgress: (p) => progress.push(p),
    });
    expect(r.warnings).toEqual(["skipped special file (socket, FIFO or device): site/a/pipe"]);
    expect(r.fileCount).toBe(2);
    expect(r.bytesIn).toBe(9 * 1024 * 1024 + 5);
    expect(progress.some((p) => p.phase === "backup" && p.bytes >= 8 * 1024 * 1024)).toBe(true);
    expect(progress.at(-1)).toMatchObject({ phase: "done", bytes: r.bytesIn });
    const t = join(root, "t");
    await restoreArchive({ source: r.path, target: t, key: { mode: "none" } });
    expect(readFileSync(join(t, "site/a/small.txt"), "utf8")).toBe("hello");
    expect(readFileSync(join(t, "site/a/b/big.bin")).equals(Buffer.alloc(9 * 1024 * 1024, 7))).toBe(true);
  });

  it.each([false, true])(
    "a read error fails the backup with IO_ERROR, no archive left (tar on this thread: %s)",
    async (tarInThread) => {
      const root = tempDir();
      dirs.push(root);
      const out = join(root, "out");
      // /proc/self/mem lists as an empty regular file; reading it at offset 0 fails with EIO.
      await expect(
        createBackup({
          sources: ["/proc/self/mem"],
          tarInThread,
          outDir: out,
          name: "w",
          kind: "full",
          level: 3,
          encryption: { mode: "none" },
          binding: BINDING,
        }),
      ).rejects.toMatchObject({ code: "IO_ERROR" });
      expect(readdirSync(out)).toEqual([]);
    },
  );
});
