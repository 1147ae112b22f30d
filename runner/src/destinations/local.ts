/**
 * Local-directory destination. Objects appear under their final name only after data and
 * directory entry are fsynced (temp file + rename), so a crash never leaves a half archive.
 */
import * as fs from "node:fs";
import { createReadStream, createWriteStream } from "node:fs";
import { mkdir, open, readdir, rename, rm, stat, unlink } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import type { Readable } from "node:stream";
import {
  DestinationError,
  type Destination,
  type ObjectInfo,
  type ObjectWriter,
  type WriterOptions,
} from "./types";

const TMP_PREFIX = ".cairn-tmp-";

export class LocalDestination implements Destination {
  readonly supportsRanges = true;
  readonly url: string;

  constructor(readonly root: string) {
    this.url = `file://${root}`;
  }

  private path(name: string): string {
    if (
      !name ||
      name.includes("/") ||
      name.includes("\\") ||
      name === "." ||
      name === ".." ||
      name.includes("\0")
    ) {
      throw new DestinationError("PROTOCOL_ERROR", this.url, `invalid object name ${JSON.stringify(name)}`);
    }
    return join(this.root, name);
  }

  async createWriter(name: string, opts?: WriterOptions): Promise<ObjectWriter> {
    const final = this.path(name);
    await mkdir(this.root, { recursive: true });
    const tmp = join(this.root, `${TMP_PREFIX}${randomBytes(6).toString("hex")}-${name}`);
    const stream = createWriteStream(tmp, {
      flags: "wx",
      flush: true,
      signal: opts?.signal,
      ...(opts?.onAcked && { fs: countingFs(opts.onAcked) }),
    });
    let done = false;
    const url = this.url;
    const root = this.root;
    const closed = new Promise<void>((resolve, reject) => {
      stream.once("close", resolve);
      stream.once("error", reject);
    });
    closed.catch(() => {});
    return {
      stream,
      async commit(): Promise<ObjectInfo> {
        if (done) throw new DestinationError("PROTOCOL_ERROR", url, "writer already finished");
        await closed;
        await rename(tmp, final);
        done = true;
        const dir = await open(root, "r");
        try {
          await dir.sync();
        } finally {
          await dir.close();
        }
        const st = await stat(final);
        return { name, size: st.size, mtime: st.mtime };
      },
      async abort(): Promise<void> {
        if (done) return;
        done = true;
        stream.destroy();
        await closed.catch(() => {});
        await rm(tmp, { force: true });
      },
    };
  }

  async createReadStream(name: string, range?: { start: number; end?: number }): Promise<Readable> {
    const p = this.path(name);
    try {
      await stat(p);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT")
        throw new DestinationError("NOT_FOUND", this.url, `${name} not found`);
      throw err;
    }
    return createReadStream(p, { start: range?.start, end: range?.end, highWaterMark: 1024 * 1024 });
  }

  async stat(name: string): Promise<ObjectInfo | null> {
    try {
      const st = await stat(this.path(name));
      return st.isFile() ? { name, size: st.size, mtime: st.mtime } : null;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw err;
    }
  }

  async list(prefix = ""): Promise<ObjectInfo[]> {
    let names: string[];
    try {
      names = await readdir(this.root);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw err;
    }
    const out: ObjectInfo[] = [];
    for (const n of names.sort()) {
      if (!n.startsWith(prefix) || n.startsWith(TMP_PREFIX)) continue;
      const info = await this.stat(n);
      if (info) out.push(info);
    }
    return out;
  }

  async delete(name: string): Promise<void> {
    try {
      await unlink(this.path(name));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== "ENOENT") throw err;
    }
  }

  async test(): Promise<void> {
    const name = `cairn-probe-${randomBytes(6).toString("hex")}`;
    try {
      const w = await this.createWriter(name);
      w.stream.end(Buffer.from("probe"));
      await w.commit();
      const s = await this.createReadStream(name);
      const chunks: Buffer[] = [];
      for await (const c of s) chunks.push(c as Buffer);
      if (Buffer.concat(chunks).toString() !== "probe")
        throw new DestinationError("INTEGRITY_MISMATCH", this.url, "probe read back differs");
    } catch (err) {
      if (err instanceof DestinationError) throw err;
      const code = (err as NodeJS.ErrnoException).code;
      throw new DestinationError(
        code === "ENOSPC" ? "NO_SPACE" : code === "EACCES" ? "AUTH_FAILED" : "PROTOCOL_ERROR",
        this.url,
        (err as Error).message,
        { cause: err },
      );
    } finally {
      await this.delete(name);
    }
  }

  async close(): Promise<void> {}
}

/** Progress: the write stream's fs calls, with each completed write's bytes reported (fsynced at close). */
function countingFs(onAcked: (bytes: number) => void) {
  return {
    ...fs,
    write(
      fd: number,
      buf: Buffer,
      off: number,
      len: number,
      pos: number | null,
      cb: (err: NodeJS.ErrnoException | null, n: number, b: Buffer) => void,
    ) {
      fs.write(fd, buf, off, len, pos, (err, n, b) => {
        if (!err) onAcked(n);
        cb(err, n, b);
      });
    },
    writev(
      fd: number,
      bufs: NodeJS.ArrayBufferView[],
      pos: number | null,
      cb: (err: NodeJS.ErrnoException | null, n: number, b: NodeJS.ArrayBufferView[]) => void,
    ) {
      fs.writev(fd, bufs, pos, (err, n, b) => {
        if (!err) onAcked(n);
        cb(err, n, b);
      });
    },
  };
}
