/**
 * Tar entries out of an opened archive, each checked against the manifest (path, type, size,
 * link target, SHA-256) in order. Selections read only the frames that hold the chosen entries.
 */
import { createHash } from "node:crypto";
import { corrupt } from "./errors";
import { TarReader, type TarEntryHeader } from "./tar-reader";
import { frameTarOffsets, tarBytes, type ArchiveHandle } from "./reader";
import type { ManifestEntry } from "./manifest-types";
import { TAR_END } from "./tar-header";

/** Glob -> RegExp: `**` crosses '/', `*` and `?` do not. */
export function globToRegExp(glob: string): RegExp {
  let re = "";
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === "*") {
      if (glob[i + 1] === "*") {
        i++;
        if (glob[i + 1] === "/") {
          re += "(?:.*/)?";
          i++;
        } else re += ".*";
      } else re += "[^/]*";
    } else if (c === "?") re += "[^/]";
    else re += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
  }
  return new RegExp(`^${re}$`);
}

/**
 * Which manifest entries a list of selectors picks: `domain:NAME`, `component:NAME` or a path glob.
 * A selected directory brings everything below it; a selected hardlink brings its target.
 */
export function selectEntries(entries: ManifestEntry[], only?: string[]): ManifestEntry[] {
  if (!only || only.length === 0) return entries;
  const tests = only.map((s) => {
    if (s.startsWith("domain:")) return (e: ManifestEntry) => e.d === s.slice(7);
    if (s.startsWith("component:")) return (e: ManifestEntry) => e.c === s.slice(10);
    const re = globToRegExp(s.replace(/\/+$/, ""));
    return (e: ManifestEntry) => re.test(e.p);
  });
  const chosen = new Set<number>();
  const dirs: string[] = [];
  entries.forEach((e, i) => {
    if (tests.some((t) => t(e)) || dirs.some((d) => e.p.startsWith(d))) {
      chosen.add(i);
      if (e.t === "directory") dirs.push(e.p + "/");
    }
  });
  const byPath = new Map(entries.map((e, i) => [e.p, i]));
  for (const i of [...chosen]) {
    const e = entries[i]!;
    if (e.t === "hardlink" && e.l !== undefined) {
      const j = byPath.get(e.l);
      if (j !== undefined) chosen.add(j);
    }
  }
  return entries.filter((_, i) => chosen.has(i));
}

/** What a restore or read walks: every entry (streamed from the manifest), or a chosen few (held). */
export type Selection = { all: true; count: number } | { all: false; entries: ManifestEntry[] };

/**
 * selectEntries over an opened archive without holding the whole entry list: one streamed pass
 * keeps only the chosen entries (a second pass adds hardlink targets that were not chosen).
 */
export async function selectFromArchive(
  h: ArchiveHandle,
  only?: string[],
  signal?: AbortSignal,
): Promise<Selection> {
  const count = h.entries.count;
  if (!only || only.length === 0) return { all: true, count };
  const tests = only.map((s) => {
    if (s.startsWith("domain:")) return (e: ManifestEntry) => e.d === s.slice(7);
    if (s.startsWith("component:")) return (e: ManifestEntry) => e.c === s.slice(10);
    const re = globToRegExp(s.replace(/\/+$/, ""));
    return (e: ManifestEntry) => re.test(e.p);
  });
  const chosen: { i: number; e: ManifestEntry }[] = [];
  const dirs: string[] = [];
  const linkTargets = new Set<string>();
  let i = 0;
  for await (const batch of h.entries.batches(signal)) {
    for (const e of batch) {
      if (tests.some((t) => t(e)) || dirs.some((d) => e.p.startsWith(d))) {
        chosen.push({ i, e });
        if (e.t === "directory") dirs.push(e.p + "/");
        if (e.t === "hardlink" && e.l !== undefined) linkTargets.add(e.l);
      }
      i++;
    }
  }
  if (linkTargets.size) {
    // The last entry with the target's path (as a path -> index map would give), if not chosen yet.
    const last = new Map<string, { i: number; e: ManifestEntry }>();
    i = 0;
    for await (const batch of h.entries.batches(signal))
      for (const e of batch)
        if (linkTargets.has(e.p)) last.set(e.p, { i: i++, e });
        else i++;
    const have = new Set(chosen.map((c) => c.i));
    for (const c of last.values()) if (!have.has(c.i)) chosen.push(c);
    chosen.sort((a, b) => a.i - b.i);
  }
  if (chosen.length === count) return { all: true, count };
  return { all: false, entries: chosen.map((c) => c.e) };
}

/** The entries a predicate picks, streamed (only those are held). */
async function selectWhere(
  h: ArchiveHandle,
  pred: (e: ManifestEntry) => boolean,
  signal?: AbortSignal,
): Promise<Selection> {
  const entries: ManifestEntry[] = [];
  for await (const batch of h.entries.batches(signal)) for (const e of batch) if (pred(e)) entries.push(e);
  return entries.length === h.entries.count ? { all: true, count: entries.length } : { all: false, entries };
}

/** The selected entries in manifest order, in batches. */
export async function* selectionBatches(
  h: ArchiveHandle,
  sel: Selection,
  signal?: AbortSignal,
): AsyncGenerator<ManifestEntry[]> {
  if (sel.all) yield* h.entries.batches(signal);
  else if (sel.entries.length) yield sel.entries;
}

/** Tar byte runs to read for a selection: merged [start, end) intervals. */
function intervals(sel: ManifestEntry[]): [number, number][] {
  const out: [number, number][] = [];
  for (const e of [...sel].sort((a, b) => a.o - b.o)) {
    const last = out[out.length - 1];
    if (last && e.o <= last[1]) last[1] = Math.max(last[1], e.e);
    else out.push([e.o, e.e]);
  }
  return out;
}

/** Yields the tar bytes the selection needs (all of it, end-to-end checked, when `full`). */
async function* selectedTar(
  h: ArchiveHandle,
  sel: ManifestEntry[],
  full: boolean,
  signal?: AbortSignal,
  transient?: boolean,
): AsyncGenerator<Buffer> {
  const n = h.manifest.frames.length;
  if (full) {
    for await (const { data } of tarBytes(h, 0, n, signal, { transient })) yield data;
    return;
  }
  const offs = frameTarOffsets(h.manifest);
  const frameOf = (pos: number) => {
    let lo = 1;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (offs[mid]! <= pos) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  // Group intervals into runs of consecutive frames, one range read per run.
  const runs: { from: number; to: number; parts: [number, number][] }[] = [];
  for (const [s, e] of intervals(sel)) {
    const from = frameOf(s);
    const to = frameOf(e - 1);
    const last = runs[runs.length - 1];
    if (last && from <= last.to + 1) {
      last.to = Math.max(last.to, to);
      last.parts.push([s, e]);
    } else runs.push({ from, to, parts: [[s, e]] });
  }
  for (const run of runs) {
    for await (const { index, data } of tarBytes(h, run.from, run.to, signal, { transient })) {
      const fs = offs[index]!;
      const fe = fs + data.length;
      for (const [s, e] of run.parts) {
        const a = Math.max(s, fs);
        const b = Math.min(e, fe);
        if (a < b) yield data.subarray(a - fs, b - fs);
      }
    }
  }
  yield TAR_END;
}

export interface EntrySink {
  write(b: Buffer): void;
  /** Called only after the body's size (and SHA-256, unless `checksContent`) matched the manifest. */
  end(): void;
  /**
   * The sink compares the body's SHA-256 with `entry.h` itself (the restore's writer thread, so
   * hashing overlaps parsing) and fails the walk's caller before any result is used.
   */
  checksContent?: boolean;
}

const TYPEFLAGS: Record<string, ManifestEntry["t"]> = {
  "0": "file",
  "7": "file",
  "1": "hardlink",
  "2": "symlink",
  "5": "directory",
};

/**
 * Calls `onEntry` for each selected entry in archive order (bodies are streamed into the returned
 * sink). Anything in the tar stream that the manifest does not list in that order is CORRUPT.
 * `afterChunk` runs after each decompressed frame (a place to wait for backpressure).
 */
export async function forEachEntry(
  h: ArchiveHandle,
  opts: {
    only?: string[];
    select?: (e: ManifestEntry) => boolean;
    signal?: AbortSignal;
    /** a selection the caller made already (selectFromArchive), instead of `only`/`select` */
    selection?: Selection;
    /**
     * The sink's bytes are valid only until `afterChunk` resolves (they are views into reused
     * decompression slots): for sinks that copy or write them by then, such as the restore's.
     */
    transient?: boolean;
  },
  onEntry: (entry: ManifestEntry, header: TarEntryHeader) => EntrySink | null,
  afterChunk?: () => Promise<void>,
): Promise<{ entries: number; bytes: number }> {
  // A predicate narrows the read like `only` does (only the frames of the chosen entries are fetched).
  const sel =
    opts.selection ??
    (opts.select
      ? await selectWhere(h, opts.select, opts.signal)
      : await selectFromArchive(h, opts.only, opts.signal));
  const full = sel.all;
  const total = sel.all ? sel.count : sel.entries.length;
  // Manifest entries ahead of the tar parser: refilled before each chunk with at least as many
  // entries as the chunk could hold headers (one per 512 bytes), so the sync parser never waits.
  const batches = selectionBatches(h, sel, opts.signal);
  let queue: ManifestEntry[] = [];
  let qi = 0;
  let exhausted = false;
  const fill = async (need: number) => {
    while (!exhausted && queue.length - qi < need) {
      const r = await batches.next();
      if (r.done) exhausted = true;
      else {
        queue = qi < queue.length ? queue.slice(qi).concat(r.value) : r.value;
        qi = 0;
      }
    }
  };
  let i = 0;
  let bytes = 0;
  const reader = new TarReader((hd) => {
    const want = queue[qi++];
    i++;
    if (!want) throw corrupt(`tar entry ${JSON.stringify(hd.name)} is not in the manifest`);
    const type = TYPEFLAGS[hd.typeflag];
    // An unknown type (device, FIFO, ...) goes to the handler, whose safety rules refuse it.
    if (
      hd.name !== want.p ||
      (type !== undefined && type !== want.t) ||
      hd.size !== (want.t === "file" ? want.s : 0)
    ) {
      throw corrupt(
        `tar entry ${JSON.stringify(hd.name)} does not match manifest entry ${JSON.stringify(want.p)}`,
      );
    }
    if ((type === "symlink" || type === "hardlink") && hd.linkname !== want.l)
      throw corrupt(`link target of ${want.p} does not match the manifest`);
    const inner = onEntry(want, hd);
    const hash = want.t === "file" && !inner?.checksContent ? createHash("sha256") : null;
    let seen = 0;
    return {
      write(b: Buffer) {
        hash?.update(b);
        seen += b.length;
        inner?.write(b);
      },
      end() {
        if (want.t === "file" && (seen !== want.s || (hash && hash.digest("hex") !== want.h)))
          throw corrupt(`content of ${want.p} does not match the manifest`);
        bytes += seen;
        inner?.end();
      },
    };
  });
  for await (const data of selectedTar(h, sel.all ? [] : sel.entries, full, opts.signal, opts.transient)) {
    await fill(Math.ceil(data.length / 512) + 1);
    reader.push(data);
    if (afterChunk) await afterChunk();
  }
  reader.finish();
  if (i !== total) throw corrupt(`archive holds ${i} of the ${total} entries the manifest lists`);
  return { entries: i, bytes };
}
