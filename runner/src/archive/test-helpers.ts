/** Helpers shared by the archive and restore tests (small generated trees, temp dirs). */
import {
  mkdirSync,
  mkdtempSync,
  writeFileSync,
  symlinkSync,
  linkSync,
  utimesSync,
  chmodSync,
  readdirSync,
  lstatSync,
  readFileSync,
  readlinkSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import type { ArchiveBinding } from "./types";

export const BINDING: ArchiveBinding = {
  backupId: "bk_1",
  tenantId: "tn_1",
  chainRootId: "bk_1",
  parentId: null,
};

export function tempDir(prefix = "cairn-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A small tree with text, random data, long names, symlinks, a hardlink, odd modes and fixed mtimes. */
export function makeTree(root: string, opts: { bigBytes?: number } = {}): void {
  const t = new Date("2025-06-01T12:00:00Z");
  mkdirSync(join(root, "site/public_html/wp-content/uploads"), { recursive: true });
  mkdirSync(join(root, "mail/example.com/info/Maildir/cur"), { recursive: true });
  writeFileSync(join(root, "site/public_html/index.php"), "<?php echo 'hello'; ?>\n".repeat(2000));
  writeFileSync(
    join(root, "site/public_html/wp-content/uploads/photo.bin"),
    randomBytes(opts.bigBytes ?? 3 * 1024 * 1024 + 17),
  );
  writeFileSync(join(root, "site/empty.txt"), "");
  const longDir = join(root, "site", "d".repeat(60), "e".repeat(60));
  mkdirSync(longDir, { recursive: true });
  writeFileSync(join(longDir, "f".repeat(120) + ".txt"), "long name\n");
  writeFileSync(join(root, "site/ünïcödé.txt"), "unicode\n");
  for (let i = 0; i < 30; i++)
    writeFileSync(
      join(root, `mail/example.com/info/Maildir/cur/${i}.msg`),
      `Subject: ${i}\n\n` + "body ".repeat(i * 50),
    );
  symlinkSync("index.php", join(root, "site/public_html/link.php"));
  symlinkSync("../public_html", join(root, "site/public_html/wp-content/up"));
  linkSync(join(root, "site/public_html/index.php"), join(root, "site/hardlink.php"));
  writeFileSync(join(root, "site/script.sh"), "#!/bin/sh\necho hi\n");
  chmodSync(join(root, "site/script.sh"), 0o750);
  writeFileSync(join(root, "site/private.key"), "secret\n");
  chmodSync(join(root, "site/private.key"), 0o600);
  setTimes(root, t);
}

function setTimes(dir: string, t: Date): void {
  for (const n of readdirSync(dir)) {
    const p = join(dir, n);
    const st = lstatSync(p);
    if (st.isDirectory()) setTimes(p, t);
    if (!st.isSymbolicLink()) utimesSync(p, t, t);
  }
  utimesSync(dir, t, t);
}

/** Everything a round trip must preserve, as one comparable list. */
export function describeTree(root: string): string[] {
  const out: string[] = [];
  const inodes = new Map<number, string>();
  const walk = (dir: string, rel: string) => {
    for (const n of readdirSync(dir).sort()) {
      const p = join(dir, n);
      const r = rel ? `${rel}/${n}` : n;
      const st = lstatSync(p);
      const mode = (st.mode & 0o7777).toString(8);
      if (st.isSymbolicLink()) out.push(`L ${r} -> ${readlinkSync(p)}`);
      else if (st.isDirectory()) {
        out.push(`D ${r} ${mode} ${Math.floor(st.mtimeMs / 1000)}`);
        walk(p, r);
      } else {
        const first = inodes.get(st.ino);
        if (!first) inodes.set(st.ino, r);
        const h = readFileSync(p).toString("base64").slice(0, 0) + require_hash(readFileSync(p));
        out.push(
          `F ${r} ${mode} ${Math.floor(st.mtimeMs / 1000)} ${st.size} ${h}${first ? ` =${first}` : ""}`,
        );
      }
    }
  };
  walk(root, "");
  return out;
}

import { createHash } from "node:crypto";
function require_hash(b: Buffer): string {
  return createHash("sha256").update(b).digest("hex").slice(0, 16);
}

import { writeFileSync as wfs } from "node:fs";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createWriteStream } from "node:fs";
import { FrameEncoder } from "./frames";
import { createSealContext } from "./crypto";
import { encodeManifest, manifestFileName } from "./manifest";
import type { Manifest, ManifestEntry } from "./manifest-types";
import type { EncryptionSpec } from "./types";

/** Minimal tar walker for tests: manifest entries (with offsets and hashes) for any raw tar. */
export function manifestEntriesOf(tar: Buffer): ManifestEntry[] {
  const out: ManifestEntry[] = [];
  let pos = 0;
  let start = 0;
  let pax: Record<string, string> = {};
  const str = (a: number, b: number) => tar.subarray(a, b).toString("utf8").replace(/\0.*$/s, "");
  const oct = (a: number, b: number) => parseInt(str(a, b).trim() || "0", 8);
  while (pos + 512 <= tar.length && tar.subarray(pos, pos + 512).some((x) => x !== 0)) {
    const flag = String.fromCharCode(tar[pos + 156]!);
    const size = pax.size ? Number(pax.size) : oct(pos + 124, pos + 136);
    const dataStart = pos + 512;
    const next = dataStart + size + ((512 - (size % 512)) % 512);
    if (flag === "x") {
      pax = {};
      for (const rec of tar
        .subarray(dataStart, dataStart + size)
        .toString("utf8")
        .split("\n")) {
        const m = /^\d+ ([^=]+)=(.*)$/.exec(rec);
        if (m) pax[m[1]!] = m[2]!;
      }
      pos = next;
      continue;
    }
    const prefix = str(pos + 345, pos + 500);
    let name = pax.path ?? (prefix ? `${prefix}/${str(pos, pos + 100)}` : str(pos, pos + 100));
    const t =
      (
        { "0": "file", "\0": "file", "1": "hardlink", "2": "symlink", "5": "directory" } as Record<
          string,
          ManifestEntry["t"]
        >
      )[flag] ?? "file";
    if (t === "directory") name = name.replace(/\/+$/, "");
    const link = pax.linkpath ?? str(pos + 157, pos + 257);
    const e: ManifestEntry = {
      p: name,
      t,
      s: t === "file" ? size : 0,
      m: oct(pos + 100, pos + 108),
      u: 0,
      g: 0,
      mt: oct(pos + 136, pos + 148),
      o: start,
      e: next,
    };
    if (t === "symlink" || t === "hardlink") e.l = link;
    if (t === "file")
      e.h = createHash("sha256")
        .update(tar.subarray(dataStart, dataStart + size))
        .digest("hex");
    out.push(e);
    pax = {};
    pos = next;
    start = next;
  }
  return out;
}

/** Packages raw tar bytes (hostile or not) as a Cairn archive with a consistent manifest. */
export async function packTar(
  tar: Buffer,
  outDir: string,
  o: {
    enc?: EncryptionSpec;
    chunkSize?: number;
    entries?: ManifestEntry[];
    frames?: (chunks: Buffer[]) => Buffer[];
    fileName?: string;
  } = {},
): Promise<string> {
  const enc = o.enc ?? { mode: "none" };
  const chunkSize = o.chunkSize ?? 64 * 1024;
  const seal =
    enc.mode === "none"
      ? undefined
      : await createSealContext({
          mode: enc.mode,
          binding: BINDING,
          chunkSize,
          password: enc.mode === "password" ? enc.password : undefined,
          dataKey: enc.mode === "panel" ? enc.dataKey : undefined,
          scrypt: { N: 1024, r: 8, p: 1 },
        });
  const chunks: Buffer[] = [];
  for (let i = 0; i < tar.length; i += chunkSize) chunks.push(tar.subarray(i, i + chunkSize));
  const encoder = new FrameEncoder({
    level: 3,
    seal,
    header: { v: 1, mode: enc.mode, binding: BINDING, chunkSize },
  });
  const fileName = o.fileName ?? `hostile_full_20260101_000000.tar.zst${seal ? ".enc" : ""}`;
  const path = join(outDir, fileName);
  await pipeline(Readable.from(chunks, { objectMode: true }), encoder, createWriteStream(path));
  const entries = o.entries ?? manifestEntriesOf(tar);
  const m: Manifest = {
    v: 1,
    name: "hostile",
    kind: "full",
    createdAt: new Date(0).toISOString(),
    mode: enc.mode,
    binding: BINDING,
    archive: { fileName, size: encoder.bytesOut, sha256: "" },
    chunkSize,
    frames: encoder.frames,
    entries,
    totals: {
      files: entries.filter((e) => e.t === "file").length,
      entries: entries.length,
      bytes: entries.reduce((a, e) => a + e.s, 0),
      tarBytes: encoder.tarBytes,
    },
    warnings: [],
  };
  wfs(join(outDir, manifestFileName(fileName)), await encodeManifest(m, seal));
  return path;
}
