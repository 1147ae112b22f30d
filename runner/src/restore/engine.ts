/**
 * Restore: extract into a staging directory inside the target, verify everything, then move into
 * place. Nothing touches the live tree until the whole selection has checked out.
 */
import {
  lchownSync,
  lstatSync,
  mkdirSync,
  realpathSync,
  renameSync,
  statfsSync,
  chmodSync,
  utimesSync,
} from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { dirname, join } from "node:path";
import type { ArchiveBinding, DecryptionKey, Progress } from "../archive/types";
import { ArchiveError, unsafe, toArchiveError } from "../archive/errors";
import { openArchive, type ArchiveSource } from "../archive/reader";
import { forEachEntry, selectFromArchive, selectionBatches, type EntrySink } from "../archive/entries";
import type { ManifestEntry } from "../archive/manifest-types";
import type { Kdf, ScryptLimits } from "../archive/crypto";
import { checkEntryPath, checkSymlinkTarget, MAX_ENTRIES, safeMode } from "./safety";
import { StageWriter } from "./stage-writer";

export type ConflictAction = "skip" | "overwrite" | "rename";

export interface RestoreOptions {
  source: ArchiveSource;
  fileName?: string;
  target: string;
  key: DecryptionKey;
  binding?: ArchiveBinding;
  /** Path globs, `domain:NAME` or `component:NAME`. */
  only?: string[];
  conflict?: ConflictAction;
  /** Keep archived uid/gid: only honoured when running as root. Otherwise files belong to the restoring user. */
  preserveOwner?: boolean;
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
  kdf?: Kdf;
  scryptLimits?: ScryptLimits;
}

export interface RestoreResult {
  target: string;
  entries: number;
  files: number;
  bytes: number;
  skipped: string[];
  renamed: { from: string; to: string }[];
  warnings: string[];
}

export async function restoreArchive(o: RestoreOptions): Promise<RestoreResult> {
  let staging: string | null = null;
  let writer: StageWriter | null = null;
  try {
    const h = await openArchive({
      source: o.source,
      fileName: o.fileName,
      key: o.key,
      binding: o.binding,
      signal: o.signal,
      kdf: o.kdf,
      scryptLimits: o.scryptLimits,
    });
    const m = h.manifest;
    const sel = await selectFromArchive(h, o.only, o.signal);
    const selCount = sel.all ? sel.count : sel.entries.length;
    if (o.only?.length && selCount === 0)
      throw new ArchiveError("NOT_FOUND", `nothing in the archive matches ${o.only.join(", ")}`);
    if (selCount > MAX_ENTRIES) throw unsafe(`archive lists ${selCount} entries (limit ${MAX_ENTRIES})`);
    let declared = 0;
    // A streamed pass: every path, link and size is checked before anything is written.
    for await (const batch of selectionBatches(h, sel, o.signal))
      for (const e of batch) {
        checkEntryPath(e.p);
        if (e.t === "symlink") checkSymlinkTarget(e.p, e.l ?? "");
        if (e.t === "hardlink") checkEntryPath(e.l ?? "");
        if (e.t === "file") {
          if (!Number.isSafeInteger(e.s) || e.s < 0 || e.s > m.totals.tarBytes)
            throw new ArchiveError(
              "CORRUPT",
              `entry ${e.p} declares ${e.s} bytes, more than the whole archive holds`,
            );
          declared += e.s;
        }
      }
    if (declared > m.totals.bytes || m.totals.tarBytes !== m.frames.reduce((a, f) => a + f.d, 0))
      throw new ArchiveError("CORRUPT", "manifest totals are inconsistent");
    mkdirSync(o.target, { recursive: true });
    const target = realpathSync(o.target);
    if (!lstatSync(target).isDirectory()) throw new ArchiveError("USAGE", `${o.target} is not a directory`);
    try {
      const fsStat = statfsSync(target);
      if (declared > fsStat.bavail * fsStat.bsize)
        throw new ArchiveError("IO_ERROR", `not enough space in ${target}: ${declared} bytes needed`);
    } catch (err) {
      if (err instanceof ArchiveError) throw err;
    }
    staging = await mkdtemp(join(target, ".cairn-restore-"));
    const stage = staging;
    const asRoot = process.getuid?.() === 0;
    const keepOwner = asRoot && o.preserveOwner === true;
    // No set of every path: the staging directory itself refuses duplicates and paths below a
    // file (O_EXCL, mkdir, link: EEXIST/ENOTDIR -> UNSAFE_ENTRY), so memory does not grow with the
    // entry count. Symlinks are tracked: nothing may be written through one.
    const symlinks = new Set<string>();
    const dirs: ManifestEntry[] = [];
    let placed = 0;
    const w = (writer = new StageWriter(stage));
    // Files are created with their final mode; only bits the umask strips need a chmod afterwards.
    const umask = process.umask();
    let bytes = 0;
    let fileCount = 0;
    let lastProgress = 0;

    // Paths are built by concatenation: checkEntryPath admits only plain names between single
    // slashes, so `${stage}/${p}` is what path.join would make, without its per-call normalising.
    const ensureParents = (p: string) => {
      const slash = p.lastIndexOf("/");
      if (slash === -1) return;
      if (symlinks.size)
        for (let i = p.indexOf("/"); i !== -1; i = p.indexOf("/", i + 1)) {
          const pre = p.slice(0, i);
          if (symlinks.has(pre)) throw unsafe(`entry ${p} would be written through the symlink ${pre}`);
        }
      // One recursive mkdir per new parent, not per file: the staging tree is ours alone, so a
      // directory we created stays there (47k files/GiB made this ~10% of the restore's main thread).
      const parent = p.slice(0, slash);
      if (!madeDirs.has(parent)) {
        w.mkdirp(`${stage}/${parent}`);
        madeDirs.add(parent);
      }
    };
    const madeDirs = new Set<string>();

    const DEVICE_TYPES: Record<string, string> = {
      "3": "character device",
      "4": "block device",
      "6": "FIFO",
    };
    await forEachEntry(
      h,
      // transient: the stage writer copies each frame's file bytes at its flush (afterChunk).
      { selection: sel, signal: o.signal, transient: true },
      (e, header): EntrySink | null => {
        checkEntryPath(e.p);
        const t = header.typeflag;
        if (t !== "0" && t !== "7" && t !== "1" && t !== "2" && t !== "5") {
          throw unsafe(
            `entry ${e.p} is a ${DEVICE_TYPES[t] ?? `special file (type ${JSON.stringify(t)})`}: device nodes, FIFOs and other special files are refused`,
          );
        }
        ensureParents(e.p);
        const dest = `${stage}/${e.p}`;
        placed++;
        if (e.t === "directory") {
          w.mkdir(dest);
          madeDirs.add(e.p);
          dirs.push(e);
          return null;
        }
        if (e.t === "symlink") {
          checkSymlinkTarget(e.p, e.l ?? "");
          w.symlink(e.l!, dest, keepOwner ? { uid: e.u, gid: e.g } : null, e.mt);
          symlinks.add(e.p);
          return null;
        }
        if (e.t === "hardlink") {
          const l = e.l ?? "";
          checkEntryPath(l);
          // Its target is named by its own path, never through an archived symlink; the worker then
          // links only to a regular file already in staging, i.e. restored earlier from this archive.
          for (let i = l.indexOf("/"); i !== -1; i = l.indexOf("/", i + 1))
            if (symlinks.has(l.slice(0, i)))
              throw unsafe(
                `hardlink ${e.p} -> ${l}: target is not a regular file restored earlier from this archive`,
              );
          w.link(`${stage}/${l}`, dest);
          return null;
        }
        const mode = safeMode(e.m);
        // Whichever thread has room hashes the file; both check it before anything is moved.
        const writerHashes = !w.behind;
        w.open(dest, mode, writerHashes ? (e.h ?? "") : null);
        return {
          checksContent: writerHashes,
          write(c: Buffer) {
            w.write(c);
            bytes += c.length;
            if (bytes > declared)
              throw new ArchiveError("CORRUPT", "archive holds more data than its manifest declares");
            if (o.onProgress && bytes - lastProgress >= 8 * 1024 * 1024) {
              lastProgress = bytes;
              o.onProgress({
                bytes,
                files: fileCount,
                totalBytes: declared,
                currentFile: e.p,
                phase: "restore",
              });
            }
          },
          end() {
            w.close(mode & umask ? mode : -1, keepOwner ? { uid: e.u, gid: e.g } : null, e.mt);
            fileCount++;
          },
        };
      },
      () => w.flush(),
    );
    // Verify-before-commit: every op has run and every hash has matched before anything moves.
    await w.finish();
    writer = null;

    // Directory metadata last, deepest first, so creating children did not disturb it.
    for (const d of [...dirs].reverse()) {
      const p = join(stage, ...d.p.split("/"));
      if (keepOwner) lchownSync(p, d.u, d.g);
      chmodSync(p, safeMode(d.m) | 0o700);
      utimesSync(p, d.mt, d.mt);
    }
    const committed = await commit(target, stage, selectionBatches(h, sel, o.signal), o.conflict ?? "skip");
    // Now that children are in place, give directories their archived mode (owner write was kept for the moves).
    const movedUnder = (p: string) => {
      const parts = p.split("/");
      for (let i = 1; i <= parts.length; i++)
        if (committed.movedDirs.has(parts.slice(0, i).join("/"))) return true;
      return false;
    };
    for (const d of [...dirs].reverse()) {
      if (!movedUnder(d.p)) continue;
      const p = join(target, ...d.p.split("/"));
      chmodSync(p, safeMode(d.m));
      utimesSync(p, d.mt, d.mt);
    }
    await rm(stage, { recursive: true, force: true });
    staging = null;
    o.onProgress?.({ bytes, files: fileCount, totalBytes: declared, phase: "done" });
    return {
      target,
      entries: placed,
      files: fileCount,
      bytes,
      skipped: committed.skipped,
      renamed: committed.renamed,
      warnings: [...m.warnings, ...committed.warnings],
    };
  } catch (err) {
    if (writer) await writer.abort().catch(() => {});
    if (staging) await rm(staging, { recursive: true, force: true }).catch(() => {});
    throw toArchiveError(err);
  }
}

type Staged = { p: string; t: ManifestEntry["t"] };
type Action =
  | { kind: "move"; e: Staged; to: string; whole: boolean }
  | { kind: "merge"; e: Staged }
  | { kind: "skip"; e: Staged; under: boolean };

function lstatOrNull(p: string) {
  try {
    return lstatSync(p);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
    throw err;
  }
}

/**
 * Plans every move first (refusing existing symlinks in the path), then performs the moves. The
 * staged entries are walked again from the manifest (the same selection, in the same order).
 */
async function commit(
  target: string,
  stage: string,
  staged: AsyncIterable<ManifestEntry[]>,
  conflict: ConflictAction,
) {
  const actions: Action[] = [];
  const covered = new Set<string>(); // directories moved or skipped as a whole
  const isCovered = (p: string) => {
    for (let i = p.indexOf("/"); i !== -1; i = p.indexOf("/", i + 1))
      if (covered.has(p.slice(0, i))) return true;
    return false;
  };
  const skipped: string[] = [];
  const renamed: { from: string; to: string }[] = [];
  const warnings: string[] = [];
  const movedDirs = new Set<string>();
  const checkedParents = new Set<string>();
  for await (const batch of staged)
    for (const full of batch) {
      if (isCovered(full.p)) continue;
      const e: Staged = { p: full.p, t: full.t };
      const parts = e.p.split("/");
      let parentMissing = false;
      for (let i = 1; i < parts.length; i++) {
        const pre = parts.slice(0, i).join("/");
        if (checkedParents.has(pre)) continue;
        const st = lstatOrNull(join(target, ...parts.slice(0, i)));
        if (st?.isSymbolicLink())
          throw unsafe(`refusing to restore ${e.p}: ${pre} in the target is a symlink`);
        if (st && !st.isDirectory())
          throw unsafe(`refusing to restore ${e.p}: ${pre} in the target is not a directory`);
        if (!st) parentMissing = true;
        else checkedParents.add(pre);
      }
      const to = join(target, ...parts);
      const existing = parentMissing ? null : lstatOrNull(to);
      const isDir = e.t === "directory";
      if (!existing) {
        actions.push({ kind: "move", e, to, whole: isDir });
        if (isDir) covered.add(e.p);
      } else if (isDir && existing.isSymbolicLink()) {
        throw unsafe(
          `refusing to restore ${e.p}: it is a symlink in the target and the archive's entries would go through it`,
        );
      } else if (isDir && existing.isDirectory()) {
        actions.push({ kind: "merge", e });
        checkedParents.add(e.p);
      } else if (existing.isDirectory() && !isDir) {
        warnings.push(`kept existing directory ${e.p} (the archive has a ${e.t} there)`);
        actions.push({ kind: "skip", e, under: false });
      } else if (conflict === "skip" || (isDir && conflict === "overwrite")) {
        actions.push({ kind: "skip", e, under: isDir });
        if (isDir) covered.add(e.p);
      } else if (conflict === "overwrite") {
        actions.push({ kind: "move", e, to, whole: false });
      } else {
        let alt = `${to}.restored`;
        for (let i = 2; lstatOrNull(alt); i++) alt = `${to}.restored-${i}`;
        renamed.push({ from: e.p, to: alt.slice(target.length + 1) });
        actions.push({ kind: "move", e, to: alt, whole: isDir });
        if (isDir) covered.add(e.p);
      }
    }
  for (const a of actions) {
    if (a.kind === "skip") {
      skipped.push(a.e.p);
      continue;
    }
    if (a.kind === "merge") continue;
    const from = join(stage, ...a.e.p.split("/"));
    mkdirSync(dirname(a.to), { recursive: true });
    renameSync(from, a.to);
    if (a.whole) movedDirs.add(a.e.p);
  }
  return { skipped, renamed, warnings, movedDirs };
}
