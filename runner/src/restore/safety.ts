/**
 * Rules that keep a restore inside its target even when run as root on a hostile archive
 * (docs/FORMAT.md §6). Each violation is UNSAFE_ENTRY.
 */
import { posix } from "node:path";
import { unsafe } from "../archive/errors";

export const MAX_PATH_DEPTH = 128;
export const MAX_PATH_BYTES = 4096;
export const MAX_ENTRIES = 10_000_000;

export function checkEntryPath(p: string): string[] {
  if (typeof p !== "string" || p.length === 0) throw unsafe("empty entry name");
  if (p.includes("\0")) throw unsafe(`entry name with NUL byte: ${JSON.stringify(p)}`);
  if (p.startsWith("/")) throw unsafe(`absolute entry name: ${JSON.stringify(p)}`);
  if (Buffer.byteLength(p) > MAX_PATH_BYTES) throw unsafe(`entry name longer than ${MAX_PATH_BYTES} bytes`);
  const parts = p.split("/");
  if (parts.some((c) => c === ".." || c === "." || c === ""))
    throw unsafe(`entry name with '..', '.' or empty component: ${JSON.stringify(p)}`);
  if (parts.length > MAX_PATH_DEPTH)
    throw unsafe(`entry nested deeper than ${MAX_PATH_DEPTH} levels: ${p.slice(0, 80)}...`);
  if (parts[0]!.startsWith(".cairn-restore-"))
    throw unsafe(`entry name collides with the staging directory: ${p}`);
  return parts;
}

/**
 * A symlink target must be relative, of the form `../`* then names only, and stay inside the
 * target lexically. Leading `..` climbs real directories (parents of an entry are never symlinks),
 * and names only descend, so by induction every link resolves inside the target, chains included.
 */
export function checkSymlinkTarget(p: string, target: string): void {
  if (!target || target.includes("\0")) throw unsafe(`symlink ${p} has an empty or invalid target`);
  if (target.startsWith("/")) throw unsafe(`symlink ${p} points to an absolute path (${target})`);
  const parts = target.split("/").filter((c) => c !== "" && c !== ".");
  let seenName = false;
  for (const c of parts) {
    if (c === "..") {
      if (seenName)
        throw unsafe(
          `symlink ${p} -> ${target}: '..' after a name is not allowed (it could climb out through another link)`,
        );
    } else seenName = true;
  }
  const resolved = posix.normalize(posix.join(posix.dirname(p), target));
  if (resolved === ".." || resolved.startsWith("../") || posix.isAbsolute(resolved))
    throw unsafe(`symlink ${p} -> ${target} resolves outside the target`);
}

/** Permission bits only: setuid, setgid and sticky are never restored. */
export function safeMode(mode: number): number {
  return mode & 0o777;
}
