import { afterAll, describe, expect, it } from "vitest";
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync, createWriteStream } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { createBackup, decryptArchive, restoreArchive, verifyArchive, readEntries, inspectArchive } from "../archive/index";
import type { EncryptionSpec, DecryptionKey } from "../archive/types";
import { BINDING, describeTree, makeTree, tempDir } from "../archive/test-helpers";

const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));
const FAST = { N: 2 ** 10, r: 8, p: 1 };
const PW = "Correct-Horse-9!battery";
const panelKey = randomBytes(32);

const modes: { name: string; enc: EncryptionSpec; key: DecryptionKey }[] = [
  { name: "none", enc: { mode: "none" }, key: { mode: "none" } },
  { name: "password", enc: { mode: "password", password: PW }, key: { mode: "password", password: PW } },
  { name: "panel", enc: { mode: "panel", dataKey: panelKey, keyId: "pk_1", wrappedKey: "opaque" }, key: { mode: "panel", dataKey: panelKey } },
];

async function backup(enc: EncryptionSpec) {
  const root = tempDir();
  dirs.push(root);
  const src = join(root, "data");
  mkdirSync(src);
  makeTree(src);
  const r = await createBackup({ sources: [src], outDir: join(root, "out"), name: "web1", kind: "full", level: 3, encryption: enc, binding: BINDING, chunkSize: 128 * 1024, scrypt: FAST });
  return { root, src, r };
}

describe.each(modes)("round trip, mode $name", ({ enc, key, name }) => {
  it("restores byte for byte (content, modes, mtimes, symlinks, hardlinks) and verifies", async () => {
    const { root, src, r } = await backup(enc);
    expect(r.fileName.endsWith(name === "none" ? ".tar.zst" : ".tar.zst.enc")).toBe(true);
    const v = await verifyArchive({ source: r.path, key, binding: BINDING, scryptLimits: { maxLogN: 22, minLogN: 10, maxR: 32, maxP: 16 } });
    expect(v.entries).toBeGreaterThan(40);
    const target = join(root, "restore");
    const res = await restoreArchive({ source: r.path, target, key, binding: BINDING, scryptLimits: { maxLogN: 22, minLogN: 10, maxR: 32, maxP: 16 } });
    expect(res.files).toBe(r.fileCount);
    expect(readdirSync(target)).toEqual(["data"]);
    expect(describeTree(join(target, "data"))).toEqual(describeTree(src));
    const hl = describeTree(join(target, "data")).find((l) => l.startsWith("F site/public_html/index.php") || l.startsWith("F site/hardlink.php"));
    expect(describeTree(join(target, "data")).some((l) => l.includes(" =site/"))).toBe(true);
    void hl;
  });

  it("decrypt/plain output is readable by zstd -dc | tar -t", async () => {
    const { root, r } = await backup(enc);
    let plain = r.path;
    if (name !== "none") {
      plain = join(root, "plain.tar.zst");
      const out = createWriteStream(plain);
      await decryptArchive({ source: r.path, key, out, scryptLimits: { maxLogN: 22, minLogN: 10, maxR: 32, maxP: 16 } });
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
    const res = await restoreArchive({ source: r.path, target, key: { mode: "none" }, only: ["data/mail/**"] });
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
    let res = await restoreArchive({ source: r.path, target, key: { mode: "none" }, only: ["data/site/script.sh"], conflict: "skip" });
    expect(readFileSync(f, "utf8")).toBe("live\n");
    expect(res.skipped).toContain("data/site/script.sh");
    res = await restoreArchive({ source: r.path, target, key: { mode: "none" }, only: ["data/site/script.sh"], conflict: "rename" });
    expect(readFileSync(f, "utf8")).toBe("live\n");
    expect(readFileSync(f + ".restored", "utf8")).toBe("#!/bin/sh\necho hi\n");
    res = await restoreArchive({ source: r.path, target, key: { mode: "none" }, only: ["data/site/script.sh"], conflict: "overwrite" });
    expect(readFileSync(f, "utf8")).toBe("#!/bin/sh\necho hi\n");
    expect(readdirSync(target).filter((n) => n.startsWith(".cairn-restore-"))).toEqual([]);
  });

  it("readEntries streams chosen entries with verified bodies", async () => {
    const { r } = await backup({ mode: "password", password: PW });
    const got: string[] = [];
    for await (const { entry, body } of readEntries({ source: r.path, key: { mode: "password", password: PW }, filter: ["data/site/*.sh", "data/site/private.key"], scryptLimits: { maxLogN: 22, minLogN: 10, maxR: 32, maxP: 16 } })) {
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
    const withKey = await inspectArchive({ source: r.path, key: { mode: "password", password: PW }, scryptLimits: { maxLogN: 22, minLogN: 10, maxR: 32, maxP: 16 } });
    expect(withKey.manifest?.totals.files).toBe(r.fileCount);
  });
});
