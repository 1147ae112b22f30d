import { lstat, readdir, readlink } from "node:fs/promises";
import { join } from "node:path";
import type { ArchiveEntry } from "../archive/types";
import { HostingError } from "./errors";

export interface WalkTag {
  component: string;
  domain?: string;
}

function fail(e: unknown, path: string): never {
  const code = (e as NodeJS.ErrnoException).code;
  if (code === "EACCES" || code === "EPERM")
    throw new HostingError("PERMISSION_DENIED", `permission denied: ${path}`, { cause: e });
  throw new HostingError("SOURCE_FAILED", `cannot read ${path}: ${code ?? (e as Error).message}`, {
    cause: e,
  });
}

/**
 * Entries for a file or directory tree, named `toName(relPath)`. Uses lstat so symlinks are stored
 * as links, never followed out of the tree. Unreadable paths fail the component (never skipped
 * silently); sockets and FIFOs cannot be archived and are reported through `onSkip`.
 */
export async function* walkTree(
  absRoot: string,
  toName: (rel: string) => string,
  tag: WalkTag,
  onSkip?: (msg: string) => void,
): AsyncGenerator<ArchiveEntry> {
  async function* visit(abs: string, rel: string): AsyncGenerator<ArchiveEntry> {
    const st = await lstat(abs).catch((e) => fail(e, abs));
    const base = {
      name: toName(rel),
      mode: st.mode & 0o7777,
      uid: st.uid,
      gid: st.gid,
      mtime: st.mtime,
      ...tag,
    };
    if (st.isSymbolicLink()) {
      const linkname = await readlink(abs).catch((e) => fail(e, abs));
      yield { ...base, type: "symlink", size: 0, linkname };
    } else if (st.isFile()) {
      yield { ...base, type: "file", size: st.size, body: { kind: "file", absPath: abs } };
    } else if (st.isDirectory()) {
      const names = (await readdir(abs).catch((e) => fail(e, abs))).sort();
      yield { ...base, type: "directory", size: 0 };
      for (const n of names) yield* visit(join(abs, n), rel === "" ? n : `${rel}/${n}`);
    } else {
      onSkip?.(`skipped special file ${abs}`);
    }
  }
  yield* visit(absRoot, "");
}
