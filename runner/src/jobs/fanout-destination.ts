import { createHash, type Hash } from "node:crypto";
import { Writable } from "node:stream";
import type { CopyResult } from "../../../shared/destinations";
import type { Destination, ObjectInfo, ObjectWriter } from "../destinations";

/** One remote copy target of a backup. */
export interface CopyTarget {
  destinationId: string;
  dest: Destination;
}

interface CopyState extends CopyTarget {
  error?: { code: string; message: string };
  /** Archive bytes this copy's destination has acknowledged so far (live monitor; the manifest is not counted). */
  bytes: number;
  /** Per object name: bytes written and their hash, as committed. */
  objects: Map<string, { size: number; sha256: string }>;
}

const codeOf = (err: unknown): string => {
  const c = (err as { code?: unknown } | null)?.code;
  return typeof c === "string" && /^[A-Z0-9_]{1,64}$/.test(c) ? c : "IO_ERROR";
};

/**
 * Auto-sync: the archive engine writes one stream; this destination tees it into the primary (local)
 * writer and every remote writer, so the sources are read once. A remote that fails is aborted and
 * dropped (its copy fails alone); the primary failing fails the backup. Backpressure: each chunk is
 * handed on only when every live writer has taken the previous one, so memory stays bounded by the
 * slowest writer's own buffer.
 */
export class FanoutDestination implements Destination {
  readonly url: string;
  readonly supportsRanges: boolean;
  private readonly copies: CopyState[];
  private archiveName?: string;

  constructor(
    private readonly primary: Destination,
    targets: CopyTarget[],
    /** Called when a copy's server acknowledged more archive bytes (the live monitor re-reads progress()). */
    private readonly onAcked?: () => void,
  ) {
    this.url = primary.url;
    this.supportsRanges = primary.supportsRanges;
    this.copies = targets.map((t) => ({ ...t, bytes: 0, objects: new Map() }));
  }

  async createWriter(
    name: string,
    opts?: { signal?: AbortSignal; sizeHint?: number },
  ): Promise<ObjectWriter> {
    const main = await this.primary.createWriter(name, opts);
    // The engine writes the archive first, then its manifest: progress counts the archive.
    this.archiveName ??= name;
    const counted = name === this.archiveName;
    const side: { copy: CopyState; w: ObjectWriter; hash: Hash; bytes: number }[] = [];
    for (const copy of this.copies) {
      if (copy.error) continue;
      try {
        // Progress counts what the destination acknowledged, not what its writer buffered.
        const w = await copy.dest.createWriter(name, {
          ...opts,
          onAcked: (n) => {
            if (!counted || copy.error) return;
            copy.bytes += n;
            this.onAcked?.();
          },
        });
        // Errors surface through write callbacks; this keeps a late 'error' from crashing the process.
        w.stream.on("error", () => {});
        side.push({ copy, w, hash: createHash("sha256"), bytes: 0 });
      } catch (err) {
        copy.error = { code: codeOf(err), message: (err as Error).message };
      }
    }
    main.stream.on("error", () => {});
    const fail = (s: (typeof side)[number], err: unknown) => {
      if (s.copy.error) return;
      s.copy.error = { code: codeOf(err), message: (err as Error).message };
      // Abort (multipart / temp file cleanup), then destroy so no pending write waits on a dead copy.
      void s.w
        .abort(err)
        .catch(() => {})
        .finally(() => s.w.stream.destroy());
    };
    const writeTo = (w: Writable, chunk: Buffer) =>
      new Promise<void>((resolve, reject) => w.write(chunk, (err) => (err ? reject(err) : resolve())));
    const endOf = (w: Writable) =>
      new Promise<void>((resolve, reject) => {
        if (w.writableFinished) return resolve();
        w.once("finish", resolve);
        w.once("error", reject);
        w.end();
      });
    const live = () => side.filter((s) => !s.copy.error);
    const stream = new Writable({
      highWaterMark: 1,
      write(chunk: Buffer, _enc, cb) {
        const jobs = live().map((s) =>
          writeTo(s.w.stream, chunk).then(
            () => {
              s.hash.update(chunk);
              s.bytes += chunk.length;
            },
            (err) => fail(s, err),
          ),
        );
        Promise.all([writeTo(main.stream, chunk), ...jobs]).then(() => cb(), cb);
      },
      final(cb) {
        const jobs = live().map((s) => endOf(s.w.stream).catch((err) => fail(s, err)));
        Promise.all([endOf(main.stream), ...jobs]).then(() => cb(), cb);
      },
    });
    return {
      stream,
      commit: async (): Promise<ObjectInfo> => {
        const info = await main.commit();
        await Promise.all(
          live().map(async (s) => {
            try {
              const got = await s.w.commit();
              if (got.size !== info.size || s.bytes !== info.size)
                throw Object.assign(
                  new Error(`${s.copy.dest.url}: stored ${got.size} bytes, expected ${info.size}`),
                  {
                    code: "INTEGRITY_MISMATCH",
                  },
                );
              s.copy.objects.set(name, { size: got.size, sha256: s.hash.digest("hex") });
            } catch (err) {
              fail(s, err);
            }
          }),
        );
        return info;
      },
      abort: async (reason?: unknown) => {
        await Promise.all([
          main.abort(reason).catch(() => {}),
          ...side.map((s) => s.w.abort(reason).catch(() => {})),
        ]);
      },
    };
  }

  createReadStream(name: string, range?: { start: number; end?: number }) {
    return this.primary.createReadStream(name, range);
  }
  stat(name: string) {
    return this.primary.stat(name);
  }
  list(prefix?: string) {
    return this.primary.list(prefix);
  }
  /** The engine deletes an archive whose manifest failed: the copies must not keep it either. */
  async delete(name: string): Promise<void> {
    await this.primary.delete(name);
    for (const c of this.copies) await c.dest.delete(name).catch(() => {});
  }
  test() {
    return this.primary.test();
  }
  async close(): Promise<void> {
    await Promise.all(this.copies.map((c) => c.dest.close().catch(() => {})));
  }

  /** Archive bytes each copy's destination has acknowledged so far, by destination id. */
  progress(): Record<string, number> {
    return Object.fromEntries(this.copies.map((c) => [c.destinationId, c.bytes]));
  }

  /** Each copy's outcome for the archive `fileName` (and its manifest, when one was written). */
  results(fileName: string, manifestFileName?: string): CopyResult[] {
    return this.copies.map((c) => {
      const obj = c.objects.get(fileName);
      const manifestOk = !manifestFileName || c.objects.has(manifestFileName);
      if (c.error || !obj || !manifestOk)
        return {
          destinationId: c.destinationId,
          status: "failed" as const,
          error: c.error ?? { code: "IO_ERROR", message: `${c.dest.url}: copy incomplete` },
        };
      return { destinationId: c.destinationId, status: "completed" as const, objectName: fileName, ...obj };
    });
  }
}
