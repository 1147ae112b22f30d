import { randomBytes } from "node:crypto";
import { createWriteStream } from "node:fs";
import { chmod, chown, lstat, mkdir, rename, rm, symlink, utimes } from "node:fs/promises";
import { dirname, join, resolve, sep } from "node:path";
import type { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import { HostingError } from "../sources/errors";
import type { EntryHeader } from "./source";

const isRoot = process.getuid?.() === 0;

/** Joins an archive-relative path under a root, refusing anything that would leave it. */
export function safeJoin(root: string, rel: string): string {
  if (rel === "") return resolve(root);
  const parts = rel.split("/");
  if (rel.startsWith("/") || parts.some((p) => p === ".." || p === "." || p === "")) {
    throw new HostingError("UNSAFE_ENTRY", `unsafe path in archive: ${JSON.stringify(rel)}`);
  }
  const abs = resolve(root, ...parts);
  if (!abs.startsWith(resolve(root) + sep))
    throw new HostingError("UNSAFE_ENTRY", `path escapes its root: ${rel}`);
  return abs;
}

export async function exists(p: string): Promise<boolean> {
  return (await lstat(p).catch(() => null)) !== null;
}

async function applyMeta(abs: string, e: EntryHeader): Promise<void> {
  if (isRoot) await chown(abs, e.uid, e.gid).catch(() => {});
  await chmod(abs, e.mode & 0o7777);
}

/**
 * Writes one entry below `root`. Files go to a temp name and are renamed into place, so a reader
 * never sees half a file and an interrupted restore leaves the old file intact. Symlinks are
 * returned to be created after all files: a link from the archive must never redirect a later write.
 */
export async function writeEntry(
  root: string,
  rel: string,
  e: EntryHeader,
  body: Readable,
  conflict: "skip" | "overwrite",
): Promise<{ written: boolean; deferredLink?: { abs: string; entry: EntryHeader } }> {
  const abs = safeJoin(root, rel);
  if (e.type === "directory") {
    await mkdir(abs, { recursive: true });
    await applyMeta(abs, e);
    return { written: true };
  }
  if (e.type === "symlink") return { written: false, deferredLink: { abs, entry: e } };
  if (e.type !== "file") return { written: false };
  if (conflict === "skip" && (await exists(abs))) {
    body.resume();
    return { written: false };
  }
  await mkdir(dirname(abs), { recursive: true });
  const tmp = join(dirname(abs), `.cairn-tmp-${randomBytes(6).toString("hex")}`);
  try {
    await pipeline(body, createWriteStream(tmp, { mode: 0o600, flags: "wx" }));
    await applyMeta(tmp, e);
    await utimes(tmp, e.mtime, e.mtime);
    await rename(tmp, abs);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  return { written: true };
}

export async function createLink(
  abs: string,
  e: EntryHeader,
  conflict: "skip" | "overwrite",
): Promise<boolean> {
  if (await exists(abs)) {
    if (conflict === "skip") return false;
    await rm(abs, { force: true });
  }
  await mkdir(dirname(abs), { recursive: true });
  await symlink(e.linkname ?? "", abs);
  return true;
}

/** Directory mtimes last: writing files into them changed them. */
export async function fixDirTimes(dirs: { abs: string; mtime: Date }[]): Promise<void> {
  for (const d of dirs.reverse()) await utimes(d.abs, d.mtime, d.mtime).catch(() => {});
}
