import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { execFileSync, spawnSync } from "node:child_process";
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { join, resolve } from "node:path";
import { createBackup, openArchive } from "../archive/index";
import { manifestFileName } from "../archive/manifest";
import { BINDING, makeTree, tempDir } from "../archive/test-helpers";

const BIN = resolve(__dirname, "../../bin/cairn-runner.mjs");
const PW = "Decrypt-Test-9!key";
let root = "";
let good = "";
let bad = "";

/** Runs the CLI with stdout sent to `stdoutFile` (opened like a shell's `>`), or to a pipe. */
function cli(args: string[], stdoutFile?: string) {
  const fd = stdoutFile ? openSync(stdoutFile, "w") : undefined;
  try {
    const r = spawnSync(process.execPath, [BIN, ...args], {
      stdio: ["ignore", fd ?? "pipe", "pipe"],
      encoding: "buffer",
    });
    return { code: r.status, stderr: r.stderr.toString(), stdoutBytes: r.stdout?.length ?? 0 };
  } finally {
    if (fd !== undefined) closeSync(fd);
  }
}

beforeAll(async () => {
  root = tempDir();
  const src = join(root, "site");
  mkdirSync(src);
  makeTree(src, { bigBytes: 400 * 1024 });
  writeFileSync(join(root, "pw"), `${PW}\n`);
  const r = await createBackup({
    sources: [src],
    outDir: join(root, "good"),
    name: "w",
    kind: "full",
    level: 1,
    encryption: { mode: "password", password: PW },
    binding: BINDING,
    chunkSize: 64 * 1024,
    scrypt: { N: 1024, r: 8, p: 1 },
  });
  good = r.path;
  // A copy whose segment two thirds in fails its tag: earlier segments decrypt fine and are written.
  const h = await openArchive({ source: good, key: { mode: "password", password: PW } });
  const victim = Math.floor((h.frameOffsets.length * 2) / 3);
  expect(victim).toBeGreaterThan(3);
  mkdirSync(join(root, "bad"));
  bad = join(root, "bad", r.fileName);
  const bytes = readFileSync(good);
  bytes[h.frameOffsets[victim]! + 40]! ^= 0x01;
  writeFileSync(bad, bytes);
  writeFileSync(join(root, "bad", manifestFileName(r.fileName)), readFileSync(`${good}.manifest`));
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

describe("cairn-runner decrypt never leaves a usable-looking partial output", () => {
  it("--out writes the complete .tar.zst (zstd -dc | tar -t reads it), owner-only, no temporary left", () => {
    const dir = join(root, "ok");
    mkdirSync(dir);
    const out = join(dir, "plain.tar.zst");
    const r = cli(["decrypt", good, "--password-file", join(root, "pw"), "--out", out]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(readdirSync(dir)).toEqual(["plain.tar.zst"]);
    expect(statSync(out).mode & 0o777).toBe(0o600);
    const list = execFileSync("sh", ["-c", `zstd -dc '${out}' | tar -tf -`], { encoding: "utf8" });
    expect(list).toMatch(/site\/site\/public_html\/wp-content\/uploads\/photo\.bin/);
    // Same bytes as the stdout form.
    const viaStdout = join(root, "ok-stdout.tar.zst");
    expect(cli(["decrypt", good, "--password-file", join(root, "pw")], viaStdout).code).toBe(0);
    expect(readFileSync(viaStdout).equals(readFileSync(out))).toBe(true);
  });

  it("--out: a segment failing midway -> CORRUPT, exit 1, no output file and no temporary", () => {
    const dir = join(root, "fail-out");
    mkdirSync(dir);
    const out = join(dir, "plain.tar.zst");
    const r = cli(["decrypt", bad, "--password-file", join(root, "pw"), "--out", out]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^CORRUPT /);
    expect(existsSync(out)).toBe(false);
    expect(readdirSync(dir)).toEqual([]);
  });

  it("stdout to a file: a segment failing midway -> CORRUPT, exit 1, the file is cut back to empty", () => {
    // Through a pipe the frames before the bad one do go out (the reader must check the exit code)...
    const piped = cli(["decrypt", bad, "--password-file", join(root, "pw")]);
    expect(piped.code).toBe(1);
    expect(piped.stdoutBytes).toBeGreaterThan(64 * 1024);
    // ...so into a file they would sit there looking like a .tar.zst: the file is cut back.
    const out = join(root, "fail-stdout.tar.zst");
    const r = cli(["decrypt", bad, "--password-file", join(root, "pw")], out);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/^CORRUPT /);
    expect(statSync(out).size).toBe(0);
  });
});
