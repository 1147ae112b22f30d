import { afterAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { createBackup } from "./index";
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
    const r = await createBackup({ sources: [src], outDir: out, name: "web1", kind: "full", level: 3, encryption: { mode: "none" }, binding: BINDING, chunkSize: 256 * 1024, now: new Date("2026-01-02T03:04:05Z") });
    expect(r.fileName).toBe("web1_full_20260102_030405.tar.zst");
    expect(readdirSync(out).sort()).toEqual([r.fileName, `${r.fileName}.manifest`]);
    const listing = execFileSync("sh", ["-c", `zstd -dc '${r.path}' | tar -t`]).toString().trim().split("\n");
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
      sources: [src], outDir: out, name: "web1", kind: "full", level: 3, encryption: { mode: "none" }, binding: BINDING, chunkSize: 64 * 1024, signal: ac.signal,
      onProgress: () => ac.abort(),
    });
    await expect(p).rejects.toMatchObject({ code: "CANCELLED" });
    expect(readdirSync(out)).toEqual([]);
  });
});
