/** Helpers shared by the archive and restore tests (small generated trees, temp dirs). */
import { mkdirSync, mkdtempSync, writeFileSync, symlinkSync, linkSync, utimesSync, chmodSync, readdirSync, lstatSync, readFileSync, readlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import type { ArchiveBinding } from "./types";

export const BINDING: ArchiveBinding = { backupId: "bk_1", tenantId: "tn_1", chainRootId: "bk_1", parentId: null };

export function tempDir(prefix = "cairn-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** A small tree with text, random data, long names, symlinks, a hardlink, odd modes and fixed mtimes. */
export function makeTree(root: string, opts: { bigBytes?: number } = {}): void {
  const t = new Date("2025-06-01T12:00:00Z");
  mkdirSync(join(root, "site/public_html/wp-content/uploads"), { recursive: true });
  mkdirSync(join(root, "mail/example.com/info/Maildir/cur"), { recursive: true });
  writeFileSync(join(root, "site/public_html/index.php"), "<?php echo 'hello'; ?>\n".repeat(2000));
  writeFileSync(join(root, "site/public_html/wp-content/uploads/photo.bin"), randomBytes(opts.bigBytes ?? 3 * 1024 * 1024 + 17));
  writeFileSync(join(root, "site/empty.txt"), "");
  const longDir = join(root, "site", "d".repeat(60), "e".repeat(60));
  mkdirSync(longDir, { recursive: true });
  writeFileSync(join(longDir, "f".repeat(120) + ".txt"), "long name\n");
  writeFileSync(join(root, "site/ünïcödé.txt"), "unicode\n");
  for (let i = 0; i < 30; i++) writeFileSync(join(root, `mail/example.com/info/Maildir/cur/${i}.msg`), `Subject: ${i}\n\n` + "body ".repeat(i * 50));
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
        out.push(`F ${r} ${mode} ${Math.floor(st.mtimeMs / 1000)} ${st.size} ${h}${first ? ` =${first}` : ""}`);
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
