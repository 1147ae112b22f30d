import { createReadStream, createWriteStream } from "node:fs";
import { Readable } from "node:stream";
import { pipeline } from "node:stream/promises";
import tar, { type Header } from "tar-stream";
import type { ArchiveEntry } from "../archive/types";
import type { EntryHeader, RestoreSource } from "./source";

/**
 * Plain (uncompressed, unencrypted) tar in and out of entry streams. Used for the pre-restore
 * safety backup when no archive writer is given, and by tests that must not depend on the archive engine.
 */
export async function writeTarFile(
  entries: AsyncIterable<ArchiveEntry>,
  path: string,
): Promise<{ files: number; bytes: number }> {
  const pack = tar.pack();
  const done = pipeline(pack, createWriteStream(path, { mode: 0o600 }));
  let files = 0;
  let bytes = 0;
  try {
    for await (const e of entries) {
      const header: Partial<Header> & { name: string } = {
        name: e.name,
        size: e.type === "file" ? e.size : 0,
        mode: e.mode,
        uid: e.uid,
        gid: e.gid,
        mtime: e.mtime,
        type: e.type === "hardlink" ? "link" : e.type,
        linkname: e.linkname ?? "",
      };
      const body = e.body;
      if (e.type === "file" && body?.kind === "buffer") {
        await new Promise<void>((res, rej) =>
          pack.entry(header, body.data, (err) => (err ? rej(err) : res())),
        );
      } else if (e.type === "file" && body?.kind === "file") {
        await new Promise<void>((res, rej) => {
          const sink = pack.entry(header, (err) => (err ? rej(err) : res()));
          const src = createReadStream(body.absPath);
          src.on("error", (err) => {
            sink.destroy(err);
            rej(err);
          });
          src.pipe(sink as unknown as NodeJS.WritableStream);
        });
      } else {
        await new Promise<void>((res, rej) =>
          pack.entry(header, Buffer.alloc(0), (err) => (err ? rej(err) : res())),
        );
      }
      files++;
      bytes += header.size ?? 0;
    }
    pack.finalize();
  } catch (err) {
    pack.destroy(err as Error);
    await done.catch(() => {});
    throw err;
  }
  await done;
  return { files, bytes };
}

function toHeader(h: Header): EntryHeader {
  const type =
    h.type === "symlink" || h.type === "directory" || h.type === "link"
      ? h.type === "link"
        ? "hardlink"
        : h.type
      : "file";
  return {
    name: h.name.replace(/\/+$/, ""),
    type,
    size: h.type === "file" || h.type === "contiguous-file" ? h.size : 0,
    mode: h.mode ?? 0o644,
    uid: h.uid ?? 0,
    gid: h.gid ?? 0,
    mtime: h.mtime ?? new Date(0),
    linkname: h.linkname || undefined,
  };
}

export function tarFileSource(path: string): RestoreSource {
  async function* read(
    filter: (name: string) => boolean,
  ): AsyncGenerator<{ entry: EntryHeader; body: Readable }> {
    const extract = tar.extract();
    const input = createReadStream(path);
    input.on("error", (e) => extract.destroy(e));
    input.pipe(extract);
    for await (const stream of extract) {
      const entry = toHeader(stream.header);
      // Listen before handing the body out: a consumer that reads it to the end fires "end" early.
      const ended = new Promise<void>((res) => {
        stream.once("end", () => res());
        stream.once("close", () => res());
        stream.once("error", () => res());
      });
      if (filter(entry.name)) {
        yield { entry, body: stream as unknown as Readable };
      }
      // Drain whatever the consumer left so the next header can be parsed.
      stream.resume();
      await ended;
    }
  }
  return {
    async list() {
      const all: EntryHeader[] = [];
      for await (const { entry } of read(() => true)) all.push(entry);
      return all;
    },
    read,
  };
}
